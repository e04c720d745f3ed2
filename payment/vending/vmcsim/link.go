package vmcsim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/kioskd/kioskd/scanner/serial/serialtest"
)

// link is the adapter's tty: a pty whose slave is reached through a symlink,
// the way udev names a USB serial device (serialtest.Pty keeps the slave
// open, so kioskd closing and reopening the port never hangs the pty up;
// only unplug does), or an existing tty.
type link struct {
	end  *os.File        // the adapter's end: the pty's non-blocking master, or the tty
	pty  *serialtest.Pty // nil on a tty
	quit chan struct{}   // closed by unplug: the reader stops delivering
	done chan struct{}   // closed when the reader goroutine ended
}

// openLink makes a raw pty and points path at it.
func openLink(path string) (*link, error) {
	p, err := serialtest.Open()
	if err != nil {
		return nil, fmt.Errorf("vmcsim: %w", err)
	}
	if err := p.Link(path); err != nil {
		p.Close()
		return nil, fmt.Errorf("vmcsim: %w", err)
	}
	return &link{end: p.Master, pty: p, quit: make(chan struct{}), done: make(chan struct{})}, nil
}

// openTTY opens an existing tty in raw mode as the adapter's end: the
// gadget end of a USB serial gadget (/dev/ttyGS0), whose host end kioskd
// opens as a real CDC-ACM device.
func openTTY(path string) (*link, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("vmcsim: %w", err)
	}
	if err := serialtest.MakeRaw(fd); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vmcsim: %s: %w", path, err)
	}
	return &link{end: os.NewFile(uintptr(fd), path), quit: make(chan struct{}), done: make(chan struct{})}, nil
}

// read delivers each line kioskd writes (without "\r\n") until the link is
// closed or ctx ends. Over-long lines are dropped.
func (l *link) read(ctx context.Context, lines chan<- string) {
	defer close(l.done)
	r := bufio.NewReaderSize(l.end, 512)
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
	_, err := l.end.WriteString(s)
	return err
}

// unplug removes the symlink (if it still leads to this pty), closes both
// ends, so that kioskd's reads fail with EIO, and waits for the reader. On
// a tty it only closes the adapter's end.
func (l *link) unplug() {
	close(l.quit)
	if l.pty != nil {
		l.pty.Close()
	} else {
		l.end.Close()
	}
	<-l.done
}
