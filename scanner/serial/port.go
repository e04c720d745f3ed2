package serial

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	tarm "github.com/tarm/serial"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/kioskd/kioskd/scanner"
	"github.com/kioskd/kioskd/scanner/frame"
)

const (
	// readTimeout bounds a read that finds no data after all. tarm/serial
	// turns it into termios VTIME, whose unit and minimum is 100 ms. Reads
	// only start once poll(2) reported input, so it is rarely reached.
	readTimeout = 100 * time.Millisecond
	// checkEvery is how often an idle port checks that its device node
	// still exists and is the device that was opened (udev may re-point a
	// symlink without the old device ever reporting an error).
	checkEvery = time.Second
	// hungUpReads is how many reads in a row returning nothing at once
	// mean the tty was hung up (device removed).
	hungUpReads = 3
)

// Port is an open serial scanner. Read must run on one goroutine; GoodRead,
// BadRead, Enable and Close may be called from any goroutine.
type Port struct {
	s      Settings
	log    *zap.Logger
	port   *tarm.Port
	watch  *os.File // second, non-blocking descriptor: TIOCEXCL and readiness
	rc     syscall.RawConn
	dev    uint64 // st_rdev of the opened device
	framer *frame.Framer
	ssi    ssiFilter

	reading   atomic.Bool
	closed    chan struct{}
	closeOnce sync.Once
	closeErr  error
	writeMu   sync.Mutex
}

var (
	_ scanner.Scanner = (*Port)(nil)
	_ scanner.Beeper  = (*Port)(nil)
	_ scanner.Enabler = (*Port)(nil)
)

// Open opens the port of s. Errors wrap *scanner.OpenError, so
// errors.Is(err, scanner.ErrPermission) and the like work.
func Open(ctx context.Context, s Settings, log *zap.Logger) (*Port, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	openErr := func(err error) error { return scanner.NewOpenError(DriverName, s.Port.Path, err) }
	tp, err := tarm.OpenPort(&tarm.Config{
		Name: s.Port.Path, Baud: s.Baud, ReadTimeout: readTimeout,
		Size: byte(s.DataBits), Parity: tarm.Parity(s.Parity), StopBits: tarm.StopBits(s.StopBits),
	})
	if err != nil {
		return nil, openErr(err)
	}
	// tarm/serial hides its descriptor; a second, non-blocking one on the
	// same tty lets us mark it exclusive (a second opener gets EBUSY, root
	// excepted), tell whether the node still leads to the device we read,
	// and wait for input in Go's netpoller instead of waking every VTIME.
	excl, err := unix.Open(s.Port.Path, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		tp.Close()
		return nil, openErr(&os.PathError{Op: "open", Path: s.Port.Path, Err: err})
	}
	var st unix.Stat_t
	if err := unix.Fstat(excl, &st); err != nil {
		tp.Close()
		unix.Close(excl)
		return nil, openErr(&os.PathError{Op: "fstat", Path: s.Port.Path, Err: err})
	}
	if err := unix.IoctlSetInt(excl, unix.TIOCEXCL, 0); err != nil {
		// Not fatal: some drivers refuse it; we only lose busy detection.
		log.Debug("serial: TIOCEXCL refused", zap.String("port", s.Port.Path), zap.Error(err))
	}
	watch := os.NewFile(uintptr(excl), s.Port.Path) // pollable: the fd is non-blocking
	rc, err := watch.SyscallConn()
	if err != nil {
		tp.Close()
		watch.Close()
		return nil, openErr(err)
	}
	fc := s.Frame
	fc.Log = log
	p := &Port{
		s: s, log: log, port: tp, watch: watch, rc: rc, dev: st.Rdev,
		framer: frame.New(fc),
		closed: make(chan struct{}),
	}
	log.Debug("serial port open", zap.String("port", s.Port.Path), zap.Int("baud", s.Baud))
	return p, nil
}

// Settings returns the settings the port was opened with.
func (p *Port) Settings() Settings { return p.s }

// FrameStats returns the framer's counters (oversize, incomplete frames).
// It must be called from the goroutine that runs Read, or after Read ended.
func (p *Port) FrameStats() frame.Stats { return p.framer.Stats() }

// Read reads frames until ctx ends, the port is closed or the device is
// gone. See scanner.Scanner.
//
// It waits for input in the netpoller (no wake-ups while idle, exact gap
// deadlines, immediate return on cancel or Close) and then reads it with
// tarm/serial, which returns at once because data is there.
func (p *Port) Read(ctx context.Context, h scanner.Handler) error {
	if !p.reading.CompareAndSwap(false, true) {
		return errors.New("scanner/serial: Read called twice")
	}
	// Cancelling ctx expires the wait; the ctx check after each
	// SetReadDeadline below closes the race with a later deadline.
	stop := context.AfterFunc(ctx, func() { p.watch.SetReadDeadline(time.Now()) })
	defer stop()
	sink := sink{name: p.s.Name, h: h}
	buf := make([]byte, 1024)
	nextCheck := time.Now().Add(checkEvery)
	quickZeros := 0
	for {
		deadline := nextCheck
		if d, ok := p.framer.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		if err := p.watch.SetReadDeadline(deadline); err != nil {
			return p.readError(err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		err := p.waitReadable()
		now := time.Now()
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			if err := ctx.Err(); err != nil {
				return err
			}
			p.framer.Expire(now, sink)
			if !now.Before(nextCheck) {
				nextCheck = now.Add(checkEvery)
				if err := p.checkNode(); err != nil {
					return err
				}
			}
			continue
		case err != nil:
			return p.readError(err)
		}

		began := time.Now()
		n, err := p.port.Read(buf)
		now = time.Now()
		if n > 0 {
			quickZeros = 0
			data := buf[:n]
			if p.s.Host == ZebraSSI {
				data = p.ssi.filter(data)
			}
			p.framer.Feed(data, now, sink)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return p.readError(err)
		}
		if n == 0 {
			// Readable but empty: a hung-up tty (device removed) reads
			// nothing, at once, forever.
			if now.Sub(began) < readTimeout/4 {
				quickZeros++
			}
			if quickZeros >= hungUpReads {
				return fmt.Errorf("scanner/serial %s: reads return nothing at once (line hung up): %w", p.s.Port.Path, scanner.ErrDisconnected)
			}
			if err := p.checkNode(); err != nil {
				return err
			}
		}
		p.framer.Expire(now, sink)
	}
}

// waitReadable blocks in the netpoller until the tty has input or an error
// or hang-up to report, or the read deadline passes. poll(2) with a zero
// timeout decides, without consuming anything, because input read through
// tarm's descriptor must not be taken from this one.
func (p *Port) waitReadable() error {
	var perr error
	err := p.rc.Read(func(fd uintptr) bool {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		if err != nil {
			// Let the read decide rather than wait for an edge that
			// may already have passed.
			if !errors.Is(err, unix.EINTR) {
				perr = err
			}
			return true
		}
		return n > 0
	})
	if err != nil {
		return err
	}
	return perr
}

// readError classifies an error from read: a closed port is ErrClosed, the
// errors a removed USB device or a closed pty master give are ErrDisconnected.
func (p *Port) readError(err error) error {
	closed := false
	select {
	case <-p.closed:
		closed = true // the netpoller says "use of closed file", not os.ErrClosed
	default:
	}
	switch {
	case closed, errors.Is(err, os.ErrClosed):
		return fmt.Errorf("scanner/serial %s: %w", p.s.Port.Path, scanner.ErrClosed)
	case errors.Is(err, syscall.EIO), errors.Is(err, syscall.ENXIO), errors.Is(err, syscall.ENODEV):
		return fmt.Errorf("scanner/serial %s: read: %w: %w", p.s.Port.Path, scanner.ErrDisconnected, err)
	}
	return fmt.Errorf("scanner/serial %s: read: %w", p.s.Port.Path, err)
}

// checkNode fails with ErrDisconnected when the path no longer exists or
// leads to another device than the one we opened: udev removed the device
// or re-pointed the symlink to a replugged one.
func (p *Port) checkNode() error {
	var st unix.Stat_t
	err := unix.Stat(p.s.Port.Path, &st)
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ENODEV), errors.Is(err, syscall.ENXIO):
		return fmt.Errorf("scanner/serial %s: device node gone: %w", p.s.Port.Path, scanner.ErrDisconnected)
	case err != nil:
		return nil // e.g. a transient EACCES on the symlink's directory; the read tells
	case st.Rdev != p.dev:
		return fmt.Errorf("scanner/serial %s: path now leads to another device: %w", p.s.Port.Path, scanner.ErrDisconnected)
	}
	return nil
}

// Close releases the port; it is safe to call more than once. A Read in
// progress returns at once.
func (p *Port) Close() error {
	p.closeOnce.Do(func() {
		close(p.closed)
		// Drop the exclusive flag first: on a tty that outlives this open
		// (a pty, a driver that keeps its tty) it would otherwise lock
		// out our own reopen with EBUSY.
		p.rc.Control(func(fd uintptr) { unix.IoctlSetInt(int(fd), unix.TIOCNXCL, 0) })
		p.closeErr = errors.Join(p.watch.Close(), p.port.Close())
	})
	return p.closeErr
}

// GoodRead sounds the good-read beep (scanner.Beeper).
func (p *Port) GoodRead(ctx context.Context) error { return p.send(ctx, opGoodBeep) }

// BadRead sounds the error beep (scanner.Beeper); only Zebra SSI has one.
func (p *Port) BadRead(ctx context.Context) error { return p.send(ctx, opBadBeep) }

// Enable switches scanning on or off (scanner.Enabler). For Honeywell this
// is the trigger on/off command.
func (p *Port) Enable(ctx context.Context, on bool) error {
	if on {
		return p.send(ctx, opEnable)
	}
	return p.send(ctx, opDisable)
}

// send writes one host command. tarm/serial has no write deadline, so ctx
// is only checked before: a command is a few bytes and leaves at once
// without flow control.
func (p *Port) send(ctx context.Context, o op) error {
	cmd, err := p.s.Host.command(o)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	select {
	case <-p.closed:
		return fmt.Errorf("scanner/serial %s: %w", p.s.Port.Path, scanner.ErrClosed)
	default:
	}
	if _, err := p.port.Write(cmd); err != nil {
		if errors.Is(err, os.ErrClosed) {
			return fmt.Errorf("scanner/serial %s: %w", p.s.Port.Path, scanner.ErrClosed)
		}
		return fmt.Errorf("scanner/serial %s: host command: %w", p.s.Port.Path, err)
	}
	return nil
}

// sink turns frames into scanner.Codes for the handler.
type sink struct {
	name string
	h    scanner.Handler
}

func (s sink) FrameStarted(at time.Time) { s.h.FrameStarted(s.name, at) }

func (s sink) FrameDone(f frame.Frame) {
	s.h.CodeRead(scanner.Code{
		Data:      append([]byte(nil), f.Data...),
		Source:    s.name,
		Time:      f.End,
		Symbology: f.Symbology,
	})
}
