package scanner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Defaults of SupervisorOptions.
const (
	DefaultMinBackoff = 50 * time.Millisecond
	// DefaultMaxBackoff is below 1 s so that a replugged scanner is read
	// again within 1 s even when the device reappears just after a failed
	// attempt and the open itself takes some time.
	DefaultMaxBackoff = 500 * time.Millisecond
)

// Source is one named scanner the Supervisor keeps reading.
type Source struct {
	Name string // Config.Name; becomes Code.Source
	Open Opener
}

// SupervisorOptions tunes a Supervisor. The zero value gives the defaults.
type SupervisorOptions struct {
	// MinBackoff and MaxBackoff bound the wait before reopening a scanner
	// that failed; the wait doubles after each failure and resets once a
	// device opened. 0 means the defaults.
	MinBackoff, MaxBackoff time.Duration
	// OnStatus, when set, is called with a scanner's new status whenever it
	// changes (opened, failed, reason changed). It runs on the scanner's
	// goroutine and must return quickly (update a metric, notify health).
	OnStatus func(Status)
	// NoHotplug turns off the kernel hotplug listener. With it on (the
	// default) a uevent for a tty, hidraw, input or USB device makes every
	// down scanner retry at once instead of waiting out its backoff, so a
	// replugged scanner is read again as soon as its node exists.
	NoHotplug bool

	// Test hooks: hotplugEvents replaces the listener (each value wakes
	// the down scanners); openHotplug replaces how it is opened.
	hotplugEvents <-chan struct{}
	openHotplug   func() (*hotplugListener, error)
}

// State is whether a scanner is being read.
type State int

// Scanner states.
const (
	StateStarting State = iota // not opened yet
	StateUp                    // open and being read
	StateDown                  // failed to open or failed while reading; retried
)

// String returns "starting", "up" or "down".
func (s State) String() string {
	switch s {
	case StateStarting:
		return "starting"
	case StateUp:
		return "up"
	case StateDown:
		return "down"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Status is the health of one scanner as seen by the Supervisor.
type Status struct {
	Name     string
	State    State
	Err      error     // why it is down (last error); nil when up
	Since    time.Time // when State last changed
	Opens    uint64    // successful opens
	Failures uint64    // failed opens and failed reads
	Codes    uint64    // codes delivered to the handler
}

// Supervisor owns every configured scanner: it opens each one, reads it,
// reopens it with backoff after an error or an unplug and keeps a status
// per scanner. A device that cannot be opened is
// reported with its reason (logged once per distinct reason) and retried
// for as long as Run runs: it is never silently skipped.
type Supervisor struct {
	log     *zap.Logger
	h       Handler
	opts    SupervisorOptions
	sources []*source

	mu      sync.Mutex
	running bool

	wakeMu sync.Mutex
	wake   chan struct{} // closed and replaced at every hotplug wake-up
}

// source is the per-scanner state; its mutex guards status and open so that
// Status and Beep/Enable may be called from other goroutines.
type source struct {
	Source
	sup *Supervisor

	mu     sync.Mutex
	status Status
	open   Scanner // current device while up

	// Touched only by the reading goroutine.
	reason   string // last logged failure reason
	flapping bool   // the last open was read only briefly: log quietly
}

// NewSupervisor returns a Supervisor for sources that delivers codes to h.
// Names must be unique and non-empty; every Open must be set.
func NewSupervisor(sources []Source, h Handler, log *zap.Logger, opts SupervisorOptions) (*Supervisor, error) {
	if h == nil {
		return nil, errors.New("scanner: NewSupervisor: nil handler")
	}
	if log == nil {
		log = zap.NewNop()
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = opts.MinBackoff
	}
	if opts.openHotplug == nil {
		opts.openHotplug = openHotplug
	}
	s := &Supervisor{log: log, h: h, opts: opts, wake: make(chan struct{})}
	seen := map[string]bool{}
	for _, src := range sources {
		if src.Name == "" || src.Open == nil {
			return nil, fmt.Errorf("scanner: NewSupervisor: source %q: %w: empty name or nil opener", src.Name, ErrConfig)
		}
		if seen[src.Name] {
			return nil, fmt.Errorf("scanner: NewSupervisor: %w: name %q used twice", ErrConfig, src.Name)
		}
		seen[src.Name] = true
		s.sources = append(s.sources, &source{
			Source: src,
			sup:    s,
			status: Status{Name: src.Name, State: StateStarting, Since: time.Now()},
		})
	}
	return s, nil
}

// Run reads every scanner until ctx ends, then closes them and returns
// ctx.Err() once all of its goroutines have ended. It may be called once.
func (s *Supervisor) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("scanner: Supervisor.Run called twice")
	}
	s.running = true
	s.mu.Unlock()

	var hp sync.WaitGroup // the hotplug goroutine
	var l *hotplugListener
	switch {
	case s.opts.NoHotplug || len(s.sources) == 0:
	case s.opts.hotplugEvents != nil:
		hp.Go(func() { s.forwardHotplug(ctx, s.opts.hotplugEvents) })
	default:
		var err error
		if l, err = s.opts.openHotplug(); err != nil {
			// Not fatal: the backoff still finds a replugged scanner,
			// only up to MaxBackoff later.
			s.log.Info("no hotplug events; replugged scanners are found by retrying alone", zap.Error(err))
			l = nil
			break
		}
		hp.Go(func() { s.listenHotplug(l) })
	}

	var wg sync.WaitGroup
	for _, src := range s.sources {
		wg.Go(func() { src.run(ctx) })
	}
	wg.Wait()
	// Without scanners (the host hands codes over through the API) there
	// is nothing to read, but Run still lasts as long as ctx.
	<-ctx.Done()
	// Every source runs until ctx ends, so this is the end of Run: stop
	// the listener (Close unblocks its read) and wait for it.
	if l != nil {
		if err := l.Close(); err != nil {
			s.log.Debug("closing hotplug listener", zap.Error(err))
		}
	}
	hp.Wait()
	return ctx.Err()
}

// Status returns the status of every scanner, in the order given to
// NewSupervisor.
func (s *Supervisor) Status() []Status {
	out := make([]Status, 0, len(s.sources))
	for _, src := range s.sources {
		src.mu.Lock()
		out = append(out, src.status)
		src.mu.Unlock()
	}
	return out
}

// Beep sounds the good-read (good=true) or error beep of the named scanner.
// It fails with ErrNotFound for an unknown name, ErrClosed when the scanner
// is not open, and errors.ErrUnsupported when it cannot beep.
func (s *Supervisor) Beep(ctx context.Context, name string, good bool) error {
	b, err := ability[Beeper](s, name, "beep")
	if err != nil {
		return err
	}
	if good {
		return b.GoodRead(ctx)
	}
	return b.BadRead(ctx)
}

// Enable switches scanning of the named scanner on or off, with the same
// errors as Beep. The setting is not remembered across a reopen.
func (s *Supervisor) Enable(ctx context.Context, name string, on bool) error {
	e, err := ability[Enabler](s, name, "enable")
	if err != nil {
		return err
	}
	return e.Enable(ctx, on)
}

// ability returns the named open scanner's optional ability T (Beeper,
// Enabler), or errors.ErrUnsupported (about what) when it has not got it.
func ability[T any](s *Supervisor, name, what string) (T, error) {
	var none T
	sc, err := s.current(name)
	if err != nil {
		return none, err
	}
	a, ok := sc.(T)
	if !ok {
		return none, fmt.Errorf("scanner %q: %s: %w", name, what, errors.ErrUnsupported)
	}
	return a, nil
}

func (s *Supervisor) current(name string) (Scanner, error) {
	for _, src := range s.sources {
		if src.Name != name {
			continue
		}
		src.mu.Lock()
		defer src.mu.Unlock()
		if src.open == nil {
			return nil, fmt.Errorf("scanner %q: %w (not open)", name, ErrClosed)
		}
		return src.open, nil
	}
	return nil, fmt.Errorf("scanner %q: %w: no such scanner", name, ErrNotFound)
}

// listenHotplug wakes the down scanners at every uevent that may bring one
// back, until l is closed. A listener that fails otherwise is given up:
// the backoff remains.
func (s *Supervisor) listenHotplug(l *hotplugListener) {
	for {
		e, ok, err := l.next()
		switch {
		case errors.Is(err, os.ErrClosed):
			return
		case errors.Is(err, unix.ENOBUFS):
			// Events were dropped; one of them may have been ours.
			s.log.Debug("hotplug events lost", zap.Error(err))
			s.wakeAll()
			continue
		case err != nil:
			s.log.Warn("hotplug listener failed; replugged scanners are found by retrying alone", zap.Error(err))
			return
		}
		if ok && e.wakes() {
			s.log.Debug("hotplug event", zap.String("action", e.Action),
				zap.String("subsystem", e.Subsystem), zap.String("devpath", e.DevPath))
			s.wakeAll()
		}
	}
}

// forwardHotplug is listenHotplug for events injected by a test.
func (s *Supervisor) forwardHotplug(ctx context.Context, events <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-events:
			if !ok {
				return
			}
			s.wakeAll()
		}
	}
}

// wakeAll makes every scanner waiting out its backoff retry now. Closing a
// channel reaches any number of waiters without knowing who they are.
func (s *Supervisor) wakeAll() {
	s.wakeMu.Lock()
	close(s.wake)
	s.wake = make(chan struct{})
	s.wakeMu.Unlock()
}

// wakeup returns the channel the next wakeAll closes. A scanner takes it
// before its open attempt, so an event during the attempt is not lost.
func (s *Supervisor) wakeup() <-chan struct{} {
	s.wakeMu.Lock()
	defer s.wakeMu.Unlock()
	return s.wake
}

// run is the one goroutine of a scanner: open, read, close, back off, again.
func (src *source) run(ctx context.Context) {
	log := src.sup.log.With(zap.String("scanner", src.Name))
	backoff := src.sup.opts.MinBackoff
	for ctx.Err() == nil {
		wake := src.sup.wakeup()
		sc, err := src.Open(ctx)
		if err == nil && sc == nil {
			err = fmt.Errorf("scanner %q: opener returned no scanner: %w", src.Name, ErrNotFound)
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			src.down(log, "cannot open scanner", err)
			if !src.wait(ctx, log, wake, &backoff) {
				break
			}
			continue
		}
		src.up(log, sc)
		opened := time.Now()
		err = sc.Read(ctx, handler{src})
		src.closeOpen(log, sc)
		// Events while it was up (another device) are no reason to
		// skip the backoff now.
		wake = src.sup.wakeup()
		if ctx.Err() != nil {
			break
		}
		if err == nil {
			err = fmt.Errorf("read ended without an error: %w", ErrClosed)
		}
		if time.Since(opened) >= src.stableAfter() {
			// It was being read: a new failure deserves a log line,
			// and the first reopen comes quickly because after an
			// unplug the device often reappears within moments.
			src.reason, src.flapping = "", false
			backoff = src.sup.opts.MinBackoff
		} else {
			// It opens but fails at once (a hung-up tty, a flaky
			// hub): keep backing off and keep the log quiet.
			src.flapping = true
		}
		src.down(log, "scanner read failed; reopening", err)
		if !src.wait(ctx, log, wake, &backoff) {
			break
		}
	}
	src.setStatus(func(st *Status) { st.State = StateDown; st.Err = ctx.Err(); st.Since = time.Now() })
}

// wait sleeps out *backoff, or less if wake is closed first, and sets the
// next backoff; it reports whether ctx is still live. After a wake-up the
// next backoff starts again from MinBackoff: the open may still fail
// because udev has not made the symlink or fixed the permissions yet, and
// then a quick retry (or udev's own event) catches it.
func (src *source) wait(ctx context.Context, log *zap.Logger, wake <-chan struct{}, backoff *time.Duration) bool {
	t := time.NewTimer(*backoff)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-wake:
		log.Debug("hotplug event: retrying now")
		*backoff = src.sup.opts.MinBackoff
	case <-t.C:
		*backoff = min(2**backoff, src.sup.opts.MaxBackoff)
	}
	return true
}

// stableAfter is how long a device must be read before its failure counts
// as new rather than as the same flapping.
func (src *source) stableAfter() time.Duration {
	return max(time.Second, 2*src.sup.opts.MaxBackoff)
}

func (src *source) up(log *zap.Logger, sc Scanner) {
	if src.reason != "" && !src.flapping {
		// Opened after failing to open: the next failure is news.
		src.reason = ""
	}
	src.mu.Lock()
	src.open = sc
	src.mu.Unlock()
	src.setStatus(func(st *Status) {
		st.State, st.Err, st.Since = StateUp, nil, time.Now()
		st.Opens++
	})
	if src.flapping {
		log.Debug("scanner up again")
	} else {
		log.Info("scanner up")
	}
}

// down records the failure and logs it once per distinct reason, so a
// scanner missing for hours logs one line, not one per retry.
func (src *source) down(log *zap.Logger, msg string, err error) {
	if r := err.Error(); r != src.reason {
		src.reason = r
		log.Warn(msg, zap.Error(err))
	}
	src.setStatus(func(st *Status) {
		if st.State != StateDown {
			st.Since = time.Now()
		}
		st.State, st.Err = StateDown, err
		st.Failures++
	})
}

func (src *source) closeOpen(log *zap.Logger, sc Scanner) {
	src.mu.Lock()
	src.open = nil
	src.mu.Unlock()
	if err := sc.Close(); err != nil && !errors.Is(err, ErrClosed) {
		log.Debug("closing scanner", zap.Error(err))
	}
}

// setStatus applies f and reports the new status to OnStatus.
func (src *source) setStatus(f func(*Status)) {
	src.mu.Lock()
	f(&src.status)
	st := src.status
	src.mu.Unlock()
	if cb := src.sup.opts.OnStatus; cb != nil {
		cb(st)
	}
}

// handler is what a driver sees: it stamps the source name and calls the
// real Handler directly, on the reading goroutine. Duplicate reads are the
// payment flow's to drop: it sees every source.
type handler struct{ src *source }

func (h handler) FrameStarted(_ string, at time.Time) {
	h.src.sup.h.FrameStarted(h.src.Name, at)
}

func (h handler) CodeRead(c Code) {
	src := h.src
	c.Source = src.Name
	if c.Time.IsZero() {
		c.Time = time.Now()
	}
	src.mu.Lock()
	src.status.Codes++
	src.mu.Unlock()
	src.sup.h.CodeRead(c)
}
