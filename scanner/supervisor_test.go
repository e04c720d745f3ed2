package scanner_test

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kioskd/kioskd/scanner"
	"github.com/kioskd/kioskd/scanner/scannertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// runSupervisor starts sup and returns a stop function that cancels it and
// checks Run's result.
func runSupervisor(t *testing.T, sup *scanner.Supervisor) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	return func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run = %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	}
}

// supervise runs open as the scanner "front" under a Supervisor; stop ends
// it (see runSupervisor).
func supervise(t *testing.T, open scanner.Opener, h scanner.Handler, log *zap.Logger, opts scanner.SupervisorOptions) (sup *scanner.Supervisor, stop func()) {
	t.Helper()
	sup, err := scanner.NewSupervisor([]scanner.Source{{Name: "front", Open: open}}, h, log, opts)
	if err != nil {
		t.Fatal(err)
	}
	return sup, runSupervisor(t, sup)
}

// superviseOpened supervises a fake device with the default options, until
// the test ends, and returns once the device is open.
func superviseOpened(t *testing.T) (*scannertest.Fake, *scannertest.Recorder, *scanner.Supervisor) {
	t.Helper()
	dev := scannertest.NewFake("dev")
	rec := &scannertest.Recorder{}
	opened := dev.Opened()
	sup, stop := supervise(t, dev.Opener(), rec, nil, scanner.SupervisorOptions{})
	t.Cleanup(stop)
	<-opened
	return dev, rec, sup
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Every read is delivered, stamped with its scanner: dropping duplicate
// reads is the payment flow's, which sees every source.
func TestSupervisorDeliversEveryRead(t *testing.T) {
	dev, rec, sup := superviseOpened(t)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t0 := time.Now()
	scans := []struct {
		data string
		at   time.Duration
	}{
		{"A", 0},
		{"A", 300 * time.Millisecond},
		{"B", 1300 * time.Millisecond},
		{"A", 1400 * time.Millisecond},
	}
	for _, s := range scans {
		if err := dev.Scan(ctx, scanner.Code{Data: []byte(s.data), Time: t0.Add(s.at)}); err != nil {
			t.Fatal(err)
		}
	}
	codes, err := rec.WaitCodes(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	// One more scan synchronises with the reader: everything before it has
	// been handled.
	if err := dev.Scan(ctx, scanner.Code{Data: []byte("C"), Time: t0.Add(3 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	codes, _ = rec.WaitCodes(ctx, 5)
	var got []string
	for _, c := range codes {
		got = append(got, string(c.Data))
		if c.Source != "front" {
			t.Errorf("Source = %q, want front", c.Source)
		}
	}
	want := []string{"A", "A", "B", "A", "C"}
	if len(got) != len(want) {
		t.Fatalf("codes = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("codes = %q, want %q", got, want)
		}
	}
	st := sup.Status()[0]
	if st.State != scanner.StateUp || st.Codes != 5 || st.Opens != 1 {
		t.Errorf("status = %+v", st)
	}
	if starts := rec.Starts(); len(starts) != 5 || starts[0].Source != "front" {
		t.Errorf("frame starts = %+v", starts)
	}
}

func TestSupervisorReportsOpenFailureOnceAndRetries(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	dev := scannertest.NewFake("dev")
	dev.SetOpenError(syscall.EACCES)
	var mu sync.Mutex
	var seen []scanner.Status
	sup, stop := supervise(t, dev.Opener(), &scannertest.Recorder{},
		zap.New(core), scanner.SupervisorOptions{MinBackoff: 5 * time.Millisecond, MaxBackoff: 10 * time.Millisecond,
			OnStatus: func(s scanner.Status) { mu.Lock(); seen = append(seen, s); mu.Unlock() }})
	defer stop()

	waitFor(t, "several failed opens", func() bool { return sup.Status()[0].Failures >= 5 })
	st := sup.Status()[0]
	if st.State != scanner.StateDown || !errors.Is(st.Err, scanner.ErrPermission) {
		t.Fatalf("status = %+v", st)
	}
	if n := logs.FilterMessage("cannot open scanner").Len(); n != 1 {
		t.Errorf("open failure logged %d times, want once", n)
	}
	dev.SetOpenError(syscall.ENOENT) // a new reason is logged again
	waitFor(t, "not-found status", func() bool { return errors.Is(sup.Status()[0].Err, scanner.ErrNotFound) })
	opened := dev.Opened()
	dev.SetOpenError(nil)
	<-opened
	waitFor(t, "up", func() bool { return sup.Status()[0].State == scanner.StateUp })
	if n := logs.FilterMessage("cannot open scanner").Len(); n != 2 {
		t.Errorf("open failures logged %d times, want 2 (one per reason)", n)
	}
	if logs.FilterMessage("scanner up").Len() != 1 {
		t.Error("scanner up not logged")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 || seen[len(seen)-1].State != scanner.StateUp {
		t.Errorf("OnStatus did not report up: %+v", seen)
	}
}

func TestSupervisorReopensAfterUnplug(t *testing.T) {
	dev, rec, sup := superviseOpened(t)

	opened := dev.Opened()
	dev.SetOpenError(syscall.ENODEV) // unplugged: the node is gone for a while
	dev.Unplug()
	waitFor(t, "down", func() bool { return sup.Status()[0].State == scanner.StateDown })
	if err := sup.Status()[0].Err; !errors.Is(err, scanner.ErrDisconnected) && !errors.Is(err, scanner.ErrNotFound) {
		t.Errorf("down reason = %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	plugged := time.Now()
	dev.SetOpenError(nil)
	<-opened
	if d := time.Since(plugged); d > time.Second {
		t.Errorf("reopened %v after replug, want within 1s", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := dev.Scan(ctx, scanner.Code{Data: []byte("after")}); err != nil {
		t.Fatal(err)
	}
	if _, err := rec.WaitCodes(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if st := sup.Status()[0]; st.Opens != 2 || st.State != scanner.StateUp {
		t.Errorf("status = %+v", st)
	}
}

func TestSupervisorBeepAndErrors(t *testing.T) {
	if _, err := scanner.NewSupervisor([]scanner.Source{{Name: "a", Open: scannertest.NewFake("a").Opener()},
		{Name: "a", Open: scannertest.NewFake("a").Opener()}}, &scannertest.Recorder{}, nil, scanner.SupervisorOptions{}); !errors.Is(err, scanner.ErrConfig) {
		t.Errorf("duplicate names: %v", err)
	}
	dev := scannertest.NewFake("dev")
	sup, err := scanner.NewSupervisor([]scanner.Source{{Name: "front", Open: dev.Opener()}}, &scannertest.Recorder{}, nil, scanner.SupervisorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := sup.Beep(ctx, "front", true); !errors.Is(err, scanner.ErrClosed) {
		t.Errorf("beep before Run: %v", err)
	}
	opened := dev.Opened()
	stop := runSupervisor(t, sup)
	defer stop()
	<-opened
	waitFor(t, "up", func() bool { return sup.Status()[0].State == scanner.StateUp })
	if err := sup.Beep(ctx, "front", true); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("beep on fake: %v", err)
	}
	if err := sup.Enable(ctx, "back", true); !errors.Is(err, scanner.ErrNotFound) {
		t.Errorf("enable unknown: %v", err)
	}
	if err := sup.Run(ctx); err == nil {
		t.Error("second Run succeeded")
	}
}

// TestSupervisorFlappingDevice: a device that opens but fails at once is
// retried with a growing backoff and logged once, not once per retry.
func TestSupervisorFlappingDevice(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	dev := scannertest.NewFake("dev")
	dev.SetReadError(syscall.EIO)
	sup, stop := supervise(t, dev.Opener(), &scannertest.Recorder{},
		// NoHotplug: a uevent from elsewhere on the machine would add a reopen.
		zap.New(core), scanner.SupervisorOptions{MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, NoHotplug: true})
	time.Sleep(time.Second)
	stop()
	// Without backoff growth it would reopen every 10 ms (~100 times);
	// doubling to the 100 ms cap gives about 13.
	if n := dev.Opens(); n < 3 || n > 25 {
		t.Errorf("%d opens in 1 s", n)
	}
	if n := logs.FilterMessage("scanner read failed; reopening").Len(); n != 1 {
		t.Errorf("failure logged %d times, want once", n)
	}
	if n := logs.FilterMessage("scanner up").Len(); n != 1 {
		t.Errorf("up logged %d times, want once", n)
	}
	if st := sup.Status()[0]; st.Failures < 3 {
		t.Errorf("status = %+v", st)
	}
}

// attempts wraps an Opener and records when each open was tried.
type attempts struct {
	open scanner.Opener

	mu    sync.Mutex
	times []time.Time
}

func (a *attempts) Open(ctx context.Context) (scanner.Scanner, error) {
	a.mu.Lock()
	a.times = append(a.times, time.Now())
	a.mu.Unlock()
	return a.open(ctx)
}

func (a *attempts) since(t time.Time) []time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	var d []time.Duration
	for _, at := range a.times {
		if !at.Before(t) {
			d = append(d, at.Sub(t))
		}
	}
	return d
}

func (a *attempts) count() int { return len(a.since(time.Time{})) }

// TestSupervisorHotplugRetriesAtOnce: a down scanner waiting out a 5 s
// backoff is opened as soon as a hotplug event comes, and every down
// scanner is woken by the same event.
func TestSupervisorHotplugRetriesAtOnce(t *testing.T) {
	devs := []*scannertest.Fake{scannertest.NewFake("a"), scannertest.NewFake("b")}
	var srcs []scanner.Source
	var tries []*attempts
	for i, d := range devs {
		d.SetOpenError(syscall.ENOENT)
		a := &attempts{open: d.Opener()}
		tries = append(tries, a)
		srcs = append(srcs, scanner.Source{Name: []string{"front", "side"}[i], Open: a.Open})
	}
	events := make(chan struct{})
	sup, err := scanner.NewSupervisor(srcs, &scannertest.Recorder{}, nil,
		scanner.WithHotplugEvents(scanner.SupervisorOptions{MinBackoff: 5 * time.Second, MaxBackoff: 5 * time.Second}, events))
	if err != nil {
		t.Fatal(err)
	}
	stop := runSupervisor(t, sup)
	defer stop()
	waitFor(t, "first failed opens", func() bool { return tries[0].count() == 1 && tries[1].count() == 1 })

	var opened []<-chan struct{}
	for _, d := range devs {
		opened = append(opened, d.Opened())
		d.SetOpenError(nil) // plugged back
	}
	plugged := time.Now()
	events <- struct{}{}
	for i, ch := range opened {
		select {
		case <-ch:
		case <-time.After(time.Second):
			t.Fatalf("scanner %d not reopened within 1 s of the event (backoff is 5 s)", i)
		}
	}
	if d := time.Since(plugged); d > 500*time.Millisecond {
		t.Errorf("reopened %v after the event, want at once", d)
	}
	waitFor(t, "up", func() bool {
		return sup.Status()[0].State == scanner.StateUp && sup.Status()[1].State == scanner.StateUp
	})
}

// TestSupervisorHotplugShortRetry: a wake-up whose open still fails (udev
// not done yet) is followed by retries from MinBackoff, not by the long
// backoff reached before.
func TestSupervisorHotplugShortRetry(t *testing.T) {
	dev := scannertest.NewFake("dev")
	dev.SetOpenError(syscall.EACCES)
	a := &attempts{open: dev.Opener()}
	events := make(chan struct{})
	_, stop := supervise(t, a.Open, &scannertest.Recorder{}, nil,
		scanner.WithHotplugEvents(scanner.SupervisorOptions{MinBackoff: 20 * time.Millisecond, MaxBackoff: 2 * time.Second}, events))
	defer stop()
	// Tries at 0, 20, 60, 140, 300, 620, 1260 ms: the next wait is 1.28 s.
	waitFor(t, "7 failed opens", func() bool { return a.count() >= 7 })
	t0 := time.Now()
	events <- struct{}{}
	time.Sleep(400 * time.Millisecond)
	// Expected: at once, then after 20 and 40 ms more (~0, 20, 60 ms).
	if d := a.since(t0); len(d) < 3 || d[0] > 100*time.Millisecond || d[2] > 300*time.Millisecond {
		t.Errorf("opens after the event at %v, want 3 within 300 ms starting at once", d)
	}
}

// TestSupervisorNoHotplug: with NoHotplug, events do not shorten the backoff.
func TestSupervisorNoHotplug(t *testing.T) {
	dev := scannertest.NewFake("dev")
	dev.SetOpenError(syscall.ENOENT)
	a := &attempts{open: dev.Opener()}
	events := make(chan struct{}, 1)
	_, stop := supervise(t, a.Open, &scannertest.Recorder{}, nil,
		scanner.WithHotplugEvents(scanner.SupervisorOptions{MinBackoff: 5 * time.Second, MaxBackoff: 5 * time.Second, NoHotplug: true}, events))
	defer stop()
	waitFor(t, "first failed open", func() bool { return a.count() == 1 })
	events <- struct{}{}
	time.Sleep(200 * time.Millisecond)
	if n := a.count(); n != 1 {
		t.Errorf("%d opens, want 1: the event was not to be heard", n)
	}
}

// TestSupervisorHotplugUnavailable: a uevent socket that cannot be opened
// is logged once at info and the scanner is still found by the backoff.
func TestSupervisorHotplugUnavailable(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	dev := scannertest.NewFake("dev")
	dev.SetOpenError(syscall.ENOENT)
	sup, stop := supervise(t, dev.Opener(), &scannertest.Recorder{}, zap.New(core),
		scanner.WithoutUeventSocket(scanner.SupervisorOptions{MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}))
	defer stop()
	waitFor(t, "down", func() bool { return sup.Status()[0].Failures >= 3 })
	opened := dev.Opened()
	dev.SetOpenError(nil)
	<-opened
	l := logs.FilterMessage("no hotplug events; replugged scanners are found by retrying alone")
	if l.Len() != 1 {
		t.Fatalf("fallback logged %d times, want once", l.Len())
	}
	if e := l.All()[0]; e.Level != zapcore.InfoLevel || e.ContextMap()["error"] != scanner.ErrNoUeventSocket.Error() {
		t.Errorf("fallback log = %v %v", e.Level, e.ContextMap())
	}
}

// TestSupervisorWithoutScanners: a kiosk whose host hands codes over
// through the API has no scanner; Run still lasts until ctx ends, like
// every other part of the agent, and returns its error.
func TestSupervisorWithoutScanners(t *testing.T) {
	sup, err := scanner.NewSupervisor(nil, &scannertest.Recorder{}, nil, scanner.SupervisorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stop := runSupervisor(t, sup) // stop checks Run's context.Canceled
	if len(sup.Status()) != 0 {
		t.Errorf("status %+v", sup.Status())
	}
	stop()
}
