// Package vscanner is the demo's virtual serial scanner: two pseudo-terminals
// joined back to back, as `socat pty pty` would. People (and tests) write QR
// payloads into the Input path; the real serial driver reads them from the
// Device path, so the demo exercises the same code as a kiosk's scanner.
package vscanner

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// Scanner is a pair of joined ptys. Bytes written to Input come out of Device.
type Scanner struct {
	Input  string // path a person writes payloads into (echo … > Input)
	Device string // path the serial driver opens
	// Route, when set before Run, sees each stdin line first: a line it
	// takes (returns true) is not scanned.
	Route func(line []byte) bool

	inMaster, inSlave   *os.File
	devMaster, devSlave *os.File
	writeMu             sync.Mutex
}

// Open creates the two ptys. The Scanner keeps the slave ends open itself, so
// the master reads never see EIO between two writers.
func Open() (*Scanner, error) {
	inM, inS, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("vscanner: open input pty: %w", err)
	}
	devM, devS, err := pty.Open()
	if err != nil {
		inM.Close()
		inS.Close()
		return nil, fmt.Errorf("vscanner: open device pty: %w", err)
	}
	for _, f := range []*os.File{inS, devS} {
		if err := makeRaw(f); err != nil {
			inM.Close()
			inS.Close()
			devM.Close()
			devS.Close()
			return nil, fmt.Errorf("vscanner: raw mode: %w", err)
		}
	}
	return &Scanner{Input: inS.Name(), Device: devS.Name(),
		inMaster: inM, inSlave: inS, devMaster: devM, devSlave: devS}, nil
}

// makeRaw turns off echo and line editing so payload bytes pass unchanged.
func makeRaw(f *os.File) error {
	t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	return unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, t)
}

// Run copies what arrives on Input, and each line read from stdin (when not
// nil), to the device until ctx ends. It closes the ptys before returning.
func (s *Scanner) Run(ctx context.Context, stdin *os.File) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.copyRaw(s.inMaster)
	}()
	var lines *os.File
	if stdin != nil {
		var err error
		if lines, err = pollable(stdin); err != nil {
			s.Close()
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.copyLines(lines)
		}()
	}
	<-ctx.Done()
	err := s.Close()
	if lines != nil {
		lines.Close() // unblocks copyLines
	}
	wg.Wait()
	if err != nil {
		return err
	}
	return ctx.Err()
}

// pollable returns a non-blocking duplicate of f whose Read is unblocked by
// Close, so the stdin reader ends with the context instead of with the process.
func pollable(f *os.File) (*os.File, error) {
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		return nil, fmt.Errorf("vscanner: dup stdin: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vscanner: stdin non-blocking: %w", err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

func (s *Scanner) copyRaw(r io.Reader) {
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			s.write(buf[:n])
		}
		if err != nil {
			return // the pty was closed: Run is ending
		}
	}
}

// copyLines sends each line typed or pasted on stdin, ended with CR as a
// scanner would end it.
func (s *Scanner) copyLines(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		if s.Route != nil && s.Route(sc.Bytes()) {
			continue
		}
		s.write(append(sc.Bytes(), '\r'))
	}
}

func (s *Scanner) write(p []byte) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.devMaster.Write(p) //nolint:errcheck // a closed pty ends the demo anyway
}

// Close closes all four ends; safe to call more than once.
func (s *Scanner) Close() error {
	var errs []error
	for _, f := range []*os.File{s.inMaster, s.inSlave, s.devMaster, s.devSlave} {
		if err := f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
