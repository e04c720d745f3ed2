package scannertest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/kioskd/kioskd/scanner"
)

// Start is one FrameStarted call seen by a Recorder.
type Start struct {
	Source string
	At     time.Time
}

// Recorder is a scanner.Handler that keeps every call. It is safe for
// concurrent use. OnCode, when set before use, is called from CodeRead (on
// the reading goroutine) after the code is recorded, e.g. to take a time.
type Recorder struct {
	OnCode func(scanner.Code)

	mu     sync.Mutex
	codes  []scanner.Code
	starts []Start
	notify chan struct{}
}

var _ scanner.Handler = (*Recorder)(nil)

// FrameStarted records a frame start.
func (r *Recorder) FrameStarted(source string, at time.Time) {
	r.mu.Lock()
	r.starts = append(r.starts, Start{source, at})
	r.wakeLocked()
	r.mu.Unlock()
}

// CodeRead records a copy of c.
func (r *Recorder) CodeRead(c scanner.Code) {
	c.Data = append([]byte(nil), c.Data...)
	r.mu.Lock()
	r.codes = append(r.codes, c)
	r.wakeLocked()
	r.mu.Unlock()
	if r.OnCode != nil {
		r.OnCode(c)
	}
}

func (r *Recorder) wakeLocked() {
	if r.notify != nil {
		close(r.notify)
		r.notify = nil
	}
}

// Codes returns the codes recorded so far.
func (r *Recorder) Codes() []scanner.Code {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]scanner.Code(nil), r.codes...)
}

// Starts returns the frame starts recorded so far.
func (r *Recorder) Starts() []Start {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Start(nil), r.starts...)
}

// WaitCodes waits until at least n codes were recorded and returns them,
// or fails when ctx ends first.
func (r *Recorder) WaitCodes(ctx context.Context, n int) ([]scanner.Code, error) {
	for {
		r.mu.Lock()
		if len(r.codes) >= n {
			c := append([]scanner.Code(nil), r.codes...)
			r.mu.Unlock()
			return c, nil
		}
		if r.notify == nil {
			r.notify = make(chan struct{})
		}
		ch, have := r.notify, len(r.codes)
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("scannertest: waiting for %d codes, have %d: %w", n, have, ctx.Err())
		}
	}
}

// Reset forgets everything recorded.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.codes, r.starts = nil, nil
	r.mu.Unlock()
}

// ReadCodes runs s.Read into a Recorder until n codes arrived or within
// passed, then cancels it. It returns the codes recorded (fewer than n
// when within passed first or Read ended on its own) and what Read
// returned: context.Canceled when the cancel ended it.
func ReadCodes(s scanner.Scanner, n int, within time.Duration) ([]scanner.Code, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var rec Recorder
	done := make(chan error, 1)
	go func() {
		done <- s.Read(ctx, &rec)
		cancel() // Read ended on its own: stop waiting
	}()
	wctx, wcancel := context.WithTimeout(ctx, within)
	_, _ = rec.WaitCodes(wctx, n) // the codes are returned either way
	wcancel()
	cancel()
	return rec.Codes(), <-done
}
