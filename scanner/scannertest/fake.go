package scannertest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/kioskd/kioskd/scanner"
)

// Fake is a scanner device driven by a test: Scan delivers a code to the
// Read in progress, Unplug makes it fail with scanner.ErrDisconnected, and
// SetOpenError makes the next opens fail. Its Opener hands out a fresh
// scanner.Scanner per open, like a real driver.
type Fake struct {
	name  string
	scans chan scanner.Code

	mu      sync.Mutex
	openErr error
	readErr error
	opens   int
	unplug  chan struct{} // closed by Unplug; replaced at each open
	opened  chan struct{} // closed at the next successful open
}

// NewFake returns a Fake whose codes carry source name.
func NewFake(name string) *Fake {
	return &Fake{name: name, scans: make(chan scanner.Code), opened: make(chan struct{})}
}

// SetOpenError makes opens fail with err (nil: succeed again).
func (f *Fake) SetOpenError(err error) {
	f.mu.Lock()
	f.openErr = err
	f.mu.Unlock()
}

// SetReadError makes every Read started from now on fail at once with err
// (nil: read normally), like a device that opens but is broken.
func (f *Fake) SetReadError(err error) {
	f.mu.Lock()
	f.readErr = err
	f.mu.Unlock()
}

// Opens returns how many opens succeeded.
func (f *Fake) Opens() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.opens
}

// Opened returns a channel closed at the next successful open.
func (f *Fake) Opened() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.opened
}

// Opener returns the scanner.Opener of this device.
func (f *Fake) Opener() scanner.Opener {
	return func(ctx context.Context) (scanner.Scanner, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.openErr != nil {
			return nil, scanner.NewOpenError("fake", f.name, f.openErr)
		}
		f.opens++
		f.unplug = make(chan struct{})
		close(f.opened)
		f.opened = make(chan struct{})
		return &fakeScanner{f: f, unplug: f.unplug, closed: make(chan struct{})}, nil
	}
}

// Scan hands c to the Read in progress (which then reports it to its
// handler), or fails when ctx ends first (no device open).
func (f *Fake) Scan(ctx context.Context, c scanner.Code) error {
	if c.Time.IsZero() {
		c.Time = time.Now()
	}
	select {
	case f.scans <- c:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("scannertest: scan %q: %w", c.Data, ctx.Err())
	}
}

// Unplug makes the open device's Read fail with scanner.ErrDisconnected.
func (f *Fake) Unplug() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.unplug != nil {
		close(f.unplug)
		f.unplug = nil
	}
}

type fakeScanner struct {
	f         *Fake
	unplug    chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

func (s *fakeScanner) Read(ctx context.Context, h scanner.Handler) error {
	s.f.mu.Lock()
	err := s.f.readErr
	s.f.mu.Unlock()
	if err != nil {
		return fmt.Errorf("scannertest: %s: %w", s.f.name, err)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closed:
			return scanner.ErrClosed
		case <-s.unplug:
			return fmt.Errorf("scannertest: %s: %w", s.f.name, scanner.ErrDisconnected)
		case c := <-s.f.scans:
			h.FrameStarted(s.f.name, c.Time)
			c.Source = s.f.name
			h.CodeRead(c)
		}
	}
}

func (s *fakeScanner) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}
