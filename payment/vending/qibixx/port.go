package qibixx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"

	tarm "github.com/tarm/serial"
	"golang.org/x/sys/unix"

	"github.com/kioskd/kioskd/scanner"
)

const (
	// Baud is the adapter's host link speed (its USB CDC variant ignores it).
	Baud = 115200
	// readTimeout is tarm/serial's termios VTIME: a read returns as soon as
	// a byte is there, or after this with nothing, so the reader notices a
	// cancelled context within it (tarm's Close does not end a Read).
	readTimeout = 100 * time.Millisecond
	// checkEvery is how often the reader checks that the path still leads
	// to the device it opened (udev removes or re-points the symlink).
	checkEvery = time.Second
	// hungUpReads is how many reads in a row returning nothing at once mean
	// a hung-up tty.
	hungUpReads = 3
)

// errLinkLost is wrapped by the reader's error when the port went away.
var errLinkLost = errors.New("qibixx: adapter link lost")

// port is the adapter's tty, opened with tarm/serial.
type port struct {
	path string
	tp   *tarm.Port
	dev  uint64 // st_rdev of the node that was opened
}

// openPort opens path at Baud, 8N1.
func openPort(path string) (*port, error) {
	tp, err := tarm.OpenPort(&tarm.Config{Name: path, Baud: Baud, ReadTimeout: readTimeout})
	if err != nil {
		return nil, openError(path, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		tp.Close()
		return nil, openError(path, err)
	}
	return &port{path: path, tp: tp, dev: st.Rdev}, nil
}

// openError names the port and the likely fix; errors.Is still finds the
// cause (and scanner.Classify's kind).
func openError(path string, err error) error {
	var hint string
	switch scanner.Classify(err) {
	case scanner.ErrNotFound:
		hint = "; is the adapter plugged in and vending.port right?"
	case scanner.ErrPermission:
		hint = "; add the service user to the dialout group or install the udev rules"
	case scanner.ErrBusy:
		hint = "; another process holds the port (ModemManager, a second kioskd?)"
	}
	return fmt.Errorf("qibixx: open %s: %w%s", path, err, hint)
}

func (p *port) write(c Command) error {
	if _, err := p.tp.Write(c.Bytes()); err != nil {
		return fmt.Errorf("qibixx: write %s to %s: %w", c, p.path, err)
	}
	return nil
}

func (p *port) close() error { return p.tp.Close() }

// readLoop reads the port until ctx ends or the link fails, calling feed
// with what arrived and when. It returns ctx's error or one wrapping
// errLinkLost.
func (p *port) readLoop(ctx context.Context, feed func([]byte, time.Time)) error {
	buf := make([]byte, 512)
	quickZeros := 0
	nextCheck := time.Now().Add(checkEvery)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		began := time.Now()
		n, err := p.tp.Read(buf)
		now := time.Now()
		if n > 0 {
			quickZeros = 0
			feed(buf[:n], now)
		}
		switch {
		case err != nil && !errors.Is(err, io.EOF):
			return fmt.Errorf("%w: read %s: %w", errLinkLost, p.path, err)
		case n == 0 && now.Sub(began) < readTimeout/4:
			// Readable but empty at once: a hung-up tty does that forever.
			if quickZeros++; quickZeros >= hungUpReads {
				return fmt.Errorf("%w: %s hung up", errLinkLost, p.path)
			}
		}
		if now.After(nextCheck) {
			nextCheck = now.Add(checkEvery)
			if err := p.checkNode(); err != nil {
				return err
			}
		}
	}
}

// checkNode fails when the path is gone or leads to another device.
func (p *port) checkNode() error {
	var st unix.Stat_t
	switch err := unix.Stat(p.path, &st); {
	case errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("%w: %s is gone", errLinkLost, p.path)
	case err == nil && st.Rdev != p.dev:
		return fmt.Errorf("%w: %s now leads to another device", errLinkLost, p.path)
	}
	return nil
}
