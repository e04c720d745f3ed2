package vmcsim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// link is the adapter's tty: a pty whose slave is reached through a symlink,
// the way udev names a USB serial device. The emulator holds the master and
// keeps the slave open itself, so kioskd closing and reopening the port
// never hangs the pty up; only unplug does.
type link struct {
	path   string
	master *os.File // non-blocking, so that Close ends the reader's Read
	slave  *os.File
	quit   chan struct{} // closed by unplug: the reader stops delivering
	done   chan struct{} // closed when the reader goroutine ended
}

// openLink makes a pty in raw mode and points path at it.
func openLink(path string) (*link, error) {
	pm, ps, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("vmcsim: pty: %w", err)
	}
	fail := func(err error) (*link, error) {
		pm.Close()
		ps.Close()
		return nil, fmt.Errorf("vmcsim: pty %s: %w", ps.Name(), err)
	}
	// Raw 8N1 from the start, as the adapter's tty is: lines written
	// before kioskd opens the port must be neither echoed nor cooked.
	raw := unix.Termios{Cflag: unix.CS8 | unix.CREAD | unix.CLOCAL | unix.B115200, Ispeed: unix.B115200, Ospeed: unix.B115200}
	raw.Cc[unix.VMIN] = 1
	if err := unix.IoctlSetTermios(int(ps.Fd()), unix.TCSETS, &raw); err != nil {
		return fail(err)
	}
	// creack/pty's master blocks in read(2), where Close cannot reach it;
	// a non-blocking duplicate waits in the netpoller instead.
	fd, err := unix.Dup(int(pm.Fd()))
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		return fail(err)
	}
	pm.Close()
	master := os.NewFile(uintptr(fd), "ptmx")
	tmp := path + ".new"
	os.Remove(tmp)
	if err := os.Symlink(ps.Name(), tmp); err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		master.Close()
		ps.Close()
		return nil, fmt.Errorf("vmcsim: link %s: %w", path, err)
	}
	return &link{path: path, master: master, slave: ps, quit: make(chan struct{}), done: make(chan struct{})}, nil
}

// read delivers each line kioskd writes (without "\r\n") until the link is
// closed or ctx ends. Over-long lines are dropped.
func (l *link) read(ctx context.Context, lines chan<- string) {
	defer close(l.done)
	r := bufio.NewReaderSize(l.master, 512)
	for {
		b, err := r.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
			continue
		case err != nil:
			return
		}
		s := string(b[:len(b)-1])
		if n := len(s); n > 0 && s[n-1] == '\r' {
			s = s[:n-1]
		}
		select {
		case lines <- s:
		case <-l.quit:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (l *link) write(s string) error {
	_, err := l.master.WriteString(s)
	return err
}

// unplug removes the symlink (if it still leads to this pty), closes both
// ends, so that kioskd's reads fail with EIO, and waits for the reader.
func (l *link) unplug() {
	if target, err := os.Readlink(l.path); err == nil && target == l.slave.Name() {
		os.Remove(l.path)
	}
	close(l.quit)
	l.master.Close()
	l.slave.Close()
	<-l.done
}
