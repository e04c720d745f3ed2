package display

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// hang guards a test against a deadlock; it is not a performance bound.
const hang = 10 * time.Second

// recorder is a display that passes every screen to a channel.
type recorder struct {
	got    chan Screen
	closed atomic.Bool
}

func newRecorder() *recorder { return &recorder{got: make(chan Screen, 1000)} }

func (r *recorder) Show(_ context.Context, s Screen) error { r.got <- s; return nil }
func (r *recorder) Close() error                           { r.closed.Store(true); return nil }

// stuck never finishes a Show before its context ends, like a display whose
// driver hangs in a write.
type stuck struct{ calls atomic.Int32 }

func (s *stuck) Show(ctx context.Context, _ Screen) error {
	s.calls.Add(1)
	<-ctx.Done()
	return ctx.Err()
}
func (s *stuck) Close() error { return nil }

func start(t *testing.T, f *Fanout) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	return func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(hang):
			t.Fatal("Run did not return after cancel")
		}
	}
}

func waitFor(t *testing.T, ch <-chan Screen, want Screen) {
	t.Helper()
	timeout := time.After(hang)
	for {
		select {
		case s := <-ch:
			if s == want {
				return
			}
		case <-timeout:
			t.Fatalf("screen %+v never shown", want)
		}
	}
}

func TestFanoutSlowDisplayDelaysNobody(t *testing.T) {
	slow, fast := &stuck{}, newRecorder()
	f := NewFanout(zaptest.NewLogger(t), FanoutOptions{Timeout: time.Hour},
		Target{"slow", slow}, Target{"fast", fast})
	stop := start(t, f)
	defer stop()
	// Show must return at once while "slow" hangs: were it blocking, this
	// loop would never end and the test would time out.
	for i := range 100 {
		f.Show(Screen{State: Paying, Amount: int64(i)})
	}
	waitFor(t, fast.got, Screen{State: Paying, Amount: 99})
	// A hung display is not piled up with calls: it has at most the one
	// it hangs in (its goroutine may not even have started it yet).
	if n := slow.calls.Load(); n > 1 {
		t.Errorf("slow display got %d calls while hanging, want at most 1", n)
	}
}

// gate is a display whose Show waits until the test lets it go.
type gate struct {
	entered chan Screen
	release chan struct{}
}

func (g *gate) Show(ctx context.Context, s Screen) error {
	g.entered <- s
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
func (g *gate) Close() error { return nil }

func TestFanoutLatestScreenWins(t *testing.T) {
	g := &gate{entered: make(chan Screen, 10), release: make(chan struct{})}
	f := NewFanout(zaptest.NewLogger(t), FanoutOptions{Timeout: time.Hour}, Target{"g", g})
	stop := start(t, f)
	defer stop()

	first := Screen{State: CodeAccepted}
	f.Show(first)
	if s := <-g.entered; s != first {
		t.Fatalf("first shown = %+v", s)
	}
	// While the display is busy, three screens arrive; only the newest
	// may be shown next.
	f.Show(Screen{State: WaitingAmount})
	f.Show(Screen{State: Paying, Amount: 100})
	last := Screen{State: Paid, Amount: 100}
	f.Show(last)
	g.release <- struct{}{}
	if s := <-g.entered; s != last {
		t.Fatalf("after the busy display freed up it showed %+v, want %+v", s, last)
	}
	g.release <- struct{}{}
	select {
	case s := <-g.entered:
		t.Fatalf("outdated screen %+v shown", s)
	case <-time.After(50 * time.Millisecond):
	}
}

// flaky times out on its first Show and works afterwards, like a display
// that was unplugged and came back.
type flaky struct {
	calls atomic.Int32
	got   chan Screen
}

func (f *flaky) Show(ctx context.Context, s Screen) error {
	if f.calls.Add(1) == 1 {
		<-ctx.Done()
		return ctx.Err()
	}
	f.got <- s
	return nil
}
func (f *flaky) Close() error { return nil }

func TestFanoutDeadlineStatusAndRetry(t *testing.T) {
	type event struct {
		name string
		up   bool
		err  error
	}
	events := make(chan event, 10)
	d := &flaky{got: make(chan Screen, 10)}
	f := NewFanout(zaptest.NewLogger(t), FanoutOptions{
		Timeout:  20 * time.Millisecond,
		RetryMin: time.Millisecond,
		Status:   func(name string, up bool, err error) { events <- event{name, up, err} },
	}, Target{"pole", d})
	stop := start(t, f)
	defer stop()

	want := Screen{State: Paid, Amount: 4200}
	f.Show(want)
	// The first Show runs into its deadline: the display is reported down.
	ev := <-events
	if ev.up || ev.name != "pole" || !errors.Is(ev.err, context.DeadlineExceeded) {
		t.Fatalf("first event = %+v, want pole down with a deadline error", ev)
	}
	// Without any new Show, the retry brings the same screen to the display.
	waitFor(t, d.got, want)
	if ev := <-events; !ev.up || ev.err != nil {
		t.Fatalf("second event = %+v, want pole up", ev)
	}
	st := f.Stats()
	if len(st) != 1 || !st[0].Up || !st[0].Known || st[0].Shown != 1 || st[0].Failed != 1 || st[0].LastErr == "" {
		t.Errorf("stats = %+v", st)
	}
}

// runner is a display with a goroutine of its own, like the web server.
type runner struct {
	recorder
	ran sync.WaitGroup
}

func (r *runner) Run(ctx context.Context) error {
	defer r.ran.Done()
	<-ctx.Done()
	return nil
}

func TestFanoutRunsRunnersAndCloses(t *testing.T) {
	r := &runner{recorder: *newRecorder()}
	r.ran.Add(1)
	f := NewFanout(nil, FanoutOptions{}, Target{"web", r})
	f.Show(Screen{State: Ready}) // before Run: kept and shown when Run starts
	stop := start(t, f)
	waitFor(t, r.got, Screen{State: Ready})
	if err := f.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
	stop()
	r.ran.Wait()
	if !r.closed.Load() {
		t.Error("display not closed when Run returned")
	}
}
