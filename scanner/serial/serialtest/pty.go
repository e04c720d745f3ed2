package serialtest

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// Pty is a pseudo-terminal pair standing in for a serial device.
type Pty struct {
	// Master is the device's own end. It is non-blocking, so Close ends a
	// pending Read and read deadlines work; do not call its Fd, which would
	// make it blocking again.
	Master *os.File
	// Slave is the end a driver opens (by Slave.Name() or a Link). The Pty
	// keeps it open itself, so a driver closing and reopening the port
	// never hangs the pty up; only Close does.
	Slave *os.File

	mu     sync.Mutex
	links  []string
	closed bool
}

// Open opens a pty whose line is raw from the start (MakeRaw): bytes
// written before a driver applies its own settings are neither echoed nor
// cooked (ICRNL would turn a scanner's CR into LF).
func Open() (*Pty, error) {
	pm, ps, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("serialtest: open pty: %w", err)
	}
	fail := func(err error) (*Pty, error) {
		pm.Close()
		ps.Close()
		return nil, fmt.Errorf("serialtest: pty %s: %w", ps.Name(), err)
	}
	if err := MakeRaw(int(ps.Fd())); err != nil {
		return fail(err)
	}
	// creack/pty's master blocks in read(2), where Close cannot reach it;
	// a non-blocking duplicate waits in Go's netpoller instead.
	fd, err := unix.Dup(int(pm.Fd()))
	if err != nil {
		return fail(err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return fail(err)
	}
	pm.Close()
	return &Pty{Master: os.NewFile(uintptr(fd), "ptmx"), Slave: ps}, nil
}

// TB is what New needs of a *testing.T or *testing.B (the package does
// not import testing: it is linked into the simulators and the demo).
type TB interface {
	Helper()
	Fatal(args ...any)
	Cleanup(func())
}

// New opens a Pty for a test, points link at it unless link is empty, and
// closes it at the test's cleanup. It fails the test on error.
func New(t TB, link string) *Pty {
	t.Helper()
	p, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if link != "" {
		if err := p.Link(link); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// MakeRaw puts the tty fd in raw 8-bit mode (as cfmakeraw(3) does), local
// (no modem control) with reads that return as soon as a byte is there.
func MakeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("raw mode: %w", err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("raw mode: %w", err)
	}
	return nil
}

// Link points path at the slave, atomically (a new link renamed over
// path), as udev re-points a symlink when a device is plugged in.
func (p *Pty) Link(path string) error {
	tmp := path + ".new"
	os.Remove(tmp)
	if err := os.Symlink(p.Slave.Name(), tmp); err != nil {
		return fmt.Errorf("serialtest: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("serialtest: %w", err)
	}
	p.mu.Lock()
	p.links = append(p.links, path)
	p.mu.Unlock()
	return nil
}

// Close unplugs the device: it removes the links that still point at this
// pty, as udev does, then closes both ends, so a driver's reads fail with
// EIO and the /dev/pts node goes away once the driver closes it too. The
// links go first: a link left pointing at a freed /dev/pts/N would, once
// another process (a test running in parallel) is given pty N, lead a
// reopening driver to that pty, where it would steal its bytes (root
// ignores TIOCEXCL). Close may be called more than once.
func (p *Pty) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	for _, l := range p.links {
		if target, err := os.Readlink(l); err == nil && target == p.Slave.Name() {
			os.Remove(l)
		}
	}
	return errors.Join(p.Master.Close(), p.Slave.Close())
}
