package display

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Runner is implemented by displays that need a goroutine of their own, such
// as the web display's HTTP server. Fanout.Run runs it until ctx ends.
type Runner interface {
	Run(ctx context.Context) error
}

// Target is one display of a Fanout, with the name used in logs, metrics and
// status reports (the name from devices.yaml).
type Target struct {
	Name    string
	Display Display
}

// StatusFunc learns when a display starts or stops working: up is false with
// the error after a failed Show, true after the first good Show (at start and
// after a failure). It is called from the display's own goroutine and must
// return quickly.
type StatusFunc func(name string, up bool, err error)

// FanoutOptions tunes a Fanout; the zero value is sane.
type FanoutOptions struct {
	// Timeout bounds each Show on one display; 2s when 0.
	Timeout time.Duration
	// RetryMin and RetryMax bound the delay before a failed screen is shown
	// again (doubling from RetryMin), so a replugged display catches up
	// without waiting for the next screen; 500ms and 10s when 0.
	RetryMin, RetryMax time.Duration
	// Status, when set, is told about up/down changes.
	Status StatusFunc
}

// ErrRunning is returned by Fanout.Run when the Fanout already runs.
var ErrRunning = errors.New("display: fanout already running")

// Fanout shows every Screen on several displays at once. Each display has its
// own goroutine and a one-slot mailbox holding the latest screen not yet
// shown, so a slow or broken display only ever falls behind by skipping
// outdated screens and never delays the caller or the other displays.
type Fanout struct {
	log     *zap.Logger
	opts    FanoutOptions
	slots   []*slot
	running atomic.Bool
}

// slot is the mailbox and bookkeeping of one display.
type slot struct {
	Target
	wake chan struct{} // capacity 1: "pending has something"

	mu      sync.Mutex
	pending Screen
	has     bool

	shown, failed, skipped atomic.Uint64
	up                     atomic.Int32 // 0 unknown, 1 up, -1 down
	lastErr                atomic.Pointer[string]
}

// NewFanout returns a Fanout over targets. Call Run to start it; screens
// passed to Show before that are kept and shown when Run starts.
func NewFanout(log *zap.Logger, opts FanoutOptions, targets ...Target) *Fanout {
	if log == nil {
		log = zap.NewNop()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = 500 * time.Millisecond
	}
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = max(10*time.Second, opts.RetryMin)
	}
	f := &Fanout{log: log, opts: opts}
	for _, t := range targets {
		f.slots = append(f.slots, &slot{Target: t, wake: make(chan struct{}, 1)})
	}
	return f
}

// Show hands s to every display and returns at once: it never waits for a
// device. A screen not yet shown on a display is replaced by s.
func (f *Fanout) Show(s Screen) {
	for _, sl := range f.slots {
		sl.mu.Lock()
		sl.pending, sl.has = s, true
		sl.mu.Unlock()
		select {
		case sl.wake <- struct{}{}:
		default: // already woken; it will take the newest screen
		}
	}
}

// Run shows screens until ctx ends, then closes every display and returns
// the errors of Close, if any. It owns one goroutine per display (plus one per
// display that is a Runner) and returns only after all of them ended.
func (f *Fanout) Run(ctx context.Context) error {
	if !f.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	var wg sync.WaitGroup
	for _, sl := range f.slots {
		wg.Go(func() { f.work(ctx, sl) })
		if r, ok := sl.Display.(Runner); ok {
			wg.Go(func() {
				if err := r.Run(ctx); err != nil && ctx.Err() == nil {
					f.log.Error("display stopped", zap.String("display", sl.Name), zap.Error(err))
					f.setUp(sl, false, fmt.Errorf("display %s: run: %w", sl.Name, err))
				}
			})
		}
	}
	wg.Wait()
	var errs []error
	for _, sl := range f.slots {
		if err := sl.Display.Close(); err != nil {
			errs = append(errs, fmt.Errorf("display %s: close: %w", sl.Name, err))
		}
	}
	return errors.Join(errs...)
}

// work is the goroutine of one display: it shows the newest screen, and after
// a failure shows it again with a growing delay until it succeeds or a newer
// screen arrives. A screen equal to the one the display shows already is
// not shown again: two events that map to one screen (paying, then paid
// with the same amount) must not print or flash it twice.
func (f *Fanout) work(ctx context.Context, sl *slot) {
	var (
		retry   *time.Timer
		retryC  <-chan time.Time
		delay   = f.opts.RetryMin
		failed  Screen
		pending bool // failed holds a screen still to be shown
		shown   Screen
		showing bool // shown is on the display
	)
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sl.wake:
		case <-retryC:
		}
		retryC = nil
		s, ok := sl.take()
		if !ok {
			if !pending {
				continue
			}
			s = failed
		} else if !pending && showing && s == shown {
			sl.skipped.Add(1)
			continue
		}
		showing = false
		if err := f.showOne(ctx, sl, s); err != nil {
			if ctx.Err() != nil {
				return
			}
			failed, pending = s, true
			if retry == nil {
				retry = time.NewTimer(delay)
			} else {
				retry.Reset(delay)
			}
			retryC = retry.C
			delay = min(2*delay, f.opts.RetryMax)
			continue
		}
		pending, delay = false, f.opts.RetryMin
		shown, showing = s, true
	}
}

func (sl *slot) take() (Screen, bool) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	s, ok := sl.pending, sl.has
	sl.has = false
	return s, ok
}

func (f *Fanout) showOne(ctx context.Context, sl *slot, s Screen) error {
	sctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	err := sl.Display.Show(sctx, s)
	if err != nil {
		if ctx.Err() != nil {
			return err // shutting down: not the display's fault
		}
		sl.failed.Add(1)
		err = fmt.Errorf("display %s: show %s: %w", sl.Name, s.State, err)
		f.setUp(sl, false, err)
		return err
	}
	sl.shown.Add(1)
	f.setUp(sl, true, nil)
	return nil
}

// setUp logs and reports a change of a display's health; repeated failures
// of a display already down are counted, not logged, to keep the log quiet
// while a pole display stays unplugged.
func (f *Fanout) setUp(sl *slot, up bool, err error) {
	want := int32(1)
	if !up {
		want = -1
		msg := err.Error()
		sl.lastErr.Store(&msg)
	}
	if sl.up.Swap(want) == want {
		if !up {
			f.log.Debug("display still down", zap.String("display", sl.Name), zap.Error(err))
		}
		return
	}
	if up {
		f.log.Info("display up", zap.String("display", sl.Name))
	} else {
		f.log.Warn("display down", zap.String("display", sl.Name), zap.Error(err))
	}
	if f.opts.Status != nil {
		f.opts.Status(sl.Name, up, err)
	}
}

// Stats is a snapshot of one display's counters, for metrics and health.
type Stats struct {
	Name    string
	Up      bool   // the last Show succeeded
	Known   bool   // at least one Show finished, so Up means something
	Shown   uint64 // successful Shows
	Failed  uint64 // failed Shows (errors and timeouts)
	Skipped uint64 // screens not shown because the display showed them already
	LastErr string // the last failure, "" if none
}

// Stats returns the counters of every display, in the order of the targets.
func (f *Fanout) Stats() []Stats {
	out := make([]Stats, 0, len(f.slots))
	for _, sl := range f.slots {
		st := Stats{Name: sl.Name, Shown: sl.shown.Load(), Failed: sl.failed.Load(), Skipped: sl.skipped.Load()}
		switch sl.up.Load() {
		case 1:
			st.Up, st.Known = true, true
		case -1:
			st.Known = true
		}
		if p := sl.lastErr.Load(); p != nil {
			st.LastErr = *p
		}
		out = append(out, st)
	}
	return out
}
