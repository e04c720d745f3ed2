package payment_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/journal"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// guard bounds every wait of a test for something that must happen: it is
// a failure, never a pause (nothing waits it out when things work).
const guard = 20 * time.Second

// harness is a flow running on a journal until stop or the test's end.
type harness struct {
	tb     testing.TB
	flow   *payment.Flow
	events <-chan payment.Event
	j      *journal.Journal
	runErr chan error // Run's result, once it returned
	stop   func()
}

// openJournal opens a fresh journal, closed when the test ends.
func openJournal(tb testing.TB) *journal.Journal { return openJournalIn(tb, tb.TempDir()) }

// openJournalIn opens a journal in dir (a disk a test makes fail), closed
// when the test ends.
func openJournalIn(tb testing.TB, dir string) *journal.Journal {
	tb.Helper()
	j, err := journal.Open(filepath.Join(dir, "journal.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { j.Close() })
	return j
}

// run starts a flow over svc. A nil j is a fresh journal in a temporary
// directory, closed after the flow stops.
func run(tb testing.TB, cfg payment.Config, svc payment.Service, j *journal.Journal) *harness {
	tb.Helper()
	if j == nil {
		j = openJournal(tb) // closed after stop: cleanups run last-in first-out
	}
	f, err := payment.New(cfg, svc, j, testLog(tb))
	if err != nil {
		tb.Fatal(err)
	}
	events, unsub := f.Subscribe()
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{tb: tb, flow: f, events: events, j: j, runErr: make(chan error, 1)}
	go func() { h.runErr <- f.Run(ctx) }()
	stopped := false
	h.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-h.runErr
		unsub()
	}
	tb.Cleanup(h.stop)
	return h
}

// ready waits until the flow has recovered its journal.
func (h *harness) ready() {
	h.tb.Helper()
	select {
	case <-h.flow.Ready():
	case <-time.After(guard):
		h.tb.Fatal("the flow never became ready")
	}
}

// next returns the next event ok accepts.
func (h *harness) next(what string, ok func(payment.Event) bool) payment.Event {
	h.tb.Helper()
	t := time.NewTimer(guard)
	defer t.Stop()
	for {
		select {
		case e := <-h.events:
			if ok(e) {
				return e
			}
		case <-t.C:
			h.tb.Fatalf("no %s", what)
		}
	}
}

// state returns the next state event in want; a sale ending elsewhere
// fails the test.
func (h *harness) state(want ...payment.State) payment.Event {
	h.tb.Helper()
	e, err := h.nextState(want...)
	if err != nil {
		h.tb.Fatal(err)
	}
	return e
}

// nextState is state for use off the test's goroutine.
func (h *harness) nextState(want ...payment.State) (payment.Event, error) {
	t := time.NewTimer(guard)
	defer t.Stop()
	for {
		select {
		case e := <-h.events:
			if e.Kind != payment.KindState {
				continue
			}
			if slices.Contains(want, e.State) {
				return e, nil
			}
			if e.State.Terminal() && !slices.Contains(want, payment.Idle) {
				return e, fmt.Errorf("sale ended %s (%s) waiting for %v", e.State, e.Message, want)
			}
		case <-t.C:
			return payment.Event{}, fmt.Errorf("no %v", want)
		}
	}
}

// terminal returns the event that ends the current sale.
func (h *harness) terminal() payment.Event {
	h.tb.Helper()
	return h.next("end of the sale", func(e payment.Event) bool { return e.Kind == payment.KindState && e.State.Terminal() })
}

// scan injects a payload as a scanner would.
func (h *harness) scan(code string) { h.flow.Scan(context.Background(), []byte(code), "test") }

// sell scans code, waits until the sale waits for its amount and sets it
// (for item; "" is the default item).
func (h *harness) sell(code string, amount int64, item string) {
	h.tb.Helper()
	h.scan(code)
	h.state(payment.WaitingAmount)
	if err := h.flow.SetAmount(context.Background(), amount, item); err != nil {
		h.tb.Fatal(err)
	}
}

// fakeClock is a fake clock for the flow's timers, with the count of
// timers the flow keeps at rest (the compaction ticker): waits add to it.
type fakeClock struct {
	*clockwork.FakeClock
	tb testing.TB
}

const restingTimers = 1 // the housekeeping ticker

func newFakeClock(tb testing.TB) fakeClock {
	return fakeClock{clockwork.NewFakeClock(), tb}
}

// advance moves the clock by d once the flow waits on n timers beside the
// resting ones.
func (c fakeClock) advance(n int, d time.Duration) {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if err := c.BlockUntilContext(ctx, restingTimers+n); err != nil {
		c.tb.Fatalf("the flow never waited on %d timers", n)
	}
	c.Advance(d)
}

// testLog logs warnings and errors into the test's output.
func testLog(tb testing.TB) *zap.Logger {
	return zaptest.NewLogger(tb, zaptest.Level(zap.WarnLevel))
}

// autoAdvance moves the clock by step whenever the flow waits on more than
// resting timers, until the test ends: for tests whose waits only pace
// retries and polls (nothing waits for the host).
func (c fakeClock) autoAdvance(resting int, step time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c.BlockUntilContext(ctx, resting+1) == nil {
			c.Advance(step)
		}
	}()
	c.tb.Cleanup(func() { cancel(); <-done })
}
