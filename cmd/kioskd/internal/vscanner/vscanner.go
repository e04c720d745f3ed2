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

	"golang.org/x/sys/unix"

	"github.com/kioskd/kioskd/scanner/serial/serialtest"
)

// Scanner is a pair of joined ptys. Bytes written to Input come out of Device.
type Scanner struct {
	Input  string // path a person writes payloads into (echo … > Input)
	Device string // path the serial driver opens
	// Route, when set before Run, sees each stdin line first: a line it
	// takes (returns true) is not scanned.
	Route func(line []byte) bool

	in, dev *serialtest.Pty
	writeMu sync.Mutex
}

// Open creates the two ptys, raw so payload bytes pass unchanged. The
// Scanner keeps the slave ends open itself, so the master reads never see
// EIO between two writers.
func Open() (*Scanner, error) {
	in, err := serialtest.Open()
	if err != nil {
		return nil, fmt.Errorf("vscanner: input: %w", err)
	}
	dev, err := serialtest.Open()
	if err != nil {
		in.Close()
		return nil, fmt.Errorf("vscanner: device: %w", err)
	}
	return &Scanner{Input: in.Slave.Name(), Device: dev.Slave.Name(), in: in, dev: dev}, nil
}

// Run copies what arrives on Input, and each line read from stdin (when not
// nil), to the device until ctx ends. It closes the ptys before returning.
func (s *Scanner) Run(ctx context.Context, stdin *os.File) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.copyRaw(s.in.Master)
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
	s.dev.Master.Write(p) //nolint:errcheck // a closed pty ends the demo anyway
}

// Close closes both ptys; safe to call more than once.
func (s *Scanner) Close() error { return errors.Join(s.in.Close(), s.dev.Close()) }
