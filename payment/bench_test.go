package payment_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/internal/simenv"
	"github.com/kioskd/kioskd/payment/journal"
	sp "github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

// agent is a flow on a fresh journal against a simulator, running until the
// test ends.
type agent struct {
	sim    *simenv.Env
	flow   *payment.Flow
	events <-chan payment.Event
	// released is when the simulator handled the last release: with the
	// simulator's SuccessDelay it gives the instant the payment succeeded.
	mu       sync.Mutex
	released time.Time
}

func startAgent(tb testing.TB, scfg sim.Config, fcfg payment.Config) *agent {
	tb.Helper()
	a := &agent{}
	scfg.Dir = keyDir
	scfg.Middleware = func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r)
			if r.URL.Path == sp.PathRelease {
				a.mu.Lock()
				a.released = time.Now()
				a.mu.Unlock()
			}
		})
	}
	log := zap.NewNop()
	a.sim = simenv.Start(tb, scfg, log)
	j, err := journal.Open(filepath.Join(tb.TempDir(), "j.db"))
	if err != nil {
		tb.Fatal(err)
	}
	fcfg.Linger = time.Millisecond
	f, err := payment.New(fcfg, a.sim.Client, j, log)
	if err != nil {
		tb.Fatal(err)
	}
	a.flow = f
	ch, unsub := f.Subscribe()
	a.events = ch
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done; unsub(); j.Close() })
	for !f.Snapshot().Ready { // recovery of the (empty) journal done
		time.Sleep(time.Millisecond)
	}
	return a
}

func (a *agent) wait(tb testing.TB, want ...payment.State) payment.Event {
	tb.Helper()
	e, err := a.next(want...)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// next returns the next state event in want; safe off the test goroutine.
func (a *agent) next(want ...payment.State) (payment.Event, error) {
	t := time.NewTimer(60 * time.Second)
	defer t.Stop()
	for {
		select {
		case e := <-a.events:
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

// BenchmarkPaidToEvent measures, for payments that succeed a given time
// after the release, how long the flow takes to publish the event that
// shows "paid" after the simulator marks the purchase successful.
func BenchmarkPaidToEvent(b *testing.B) {
	for _, d := range []time.Duration{time.Millisecond, 300 * time.Millisecond, time.Second, 2500 * time.Millisecond} {
		b.Run("success_after_"+d.String(), func(b *testing.B) {
			a := startAgent(b, sim.Config{SuccessDelay: d}, payment.Config{FixedAmount: 1000})
			var lat []time.Duration
			for b.Loop() {
				a.flow.Scan([]byte(a.sim.QR(b, "bench")), "bench", time.Now())
				paid := a.wait(b, payment.Paid, payment.Confirming)
				a.mu.Lock()
				success := a.released.Add(d)
				a.mu.Unlock()
				lat = append(lat, paid.Time.Sub(success))
				a.wait(b, payment.Idle)
			}
			report(b, lat)
		})
	}
}

// BenchmarkPaidToEventSpread runs 20 sales at once, each against its own
// simulator, whose payments succeed at times spread evenly from 0.2 s to
// 5 s after the release: closer to customers confirming in their app than
// one fixed delay, which the poll schedule either hits or misses.
func BenchmarkPaidToEventSpread(b *testing.B) {
	const n = 20
	var lat []time.Duration
	for b.Loop() {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range n {
			d := 200*time.Millisecond + time.Duration(i)*(4800*time.Millisecond)/(n-1)
			a := startAgent(b, sim.Config{SuccessDelay: d}, payment.Config{FixedAmount: 1000})
			q := a.sim.QR(b, "bench")
			wg.Add(1)
			go func() {
				defer wg.Done()
				a.flow.Scan([]byte(q), "bench", time.Now())
				paid, err := a.next(payment.Paid, payment.Confirming)
				if err != nil {
					b.Error(err)
					return
				}
				a.mu.Lock()
				l := paid.Time.Sub(a.released.Add(d))
				a.mu.Unlock()
				mu.Lock()
				lat = append(lat, l)
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	report(b, lat)
}

func report(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	q := func(p float64) float64 {
		return float64(lat[min(int(p*float64(len(lat))), len(lat)-1)]) / float64(time.Millisecond)
	}
	b.ReportMetric(q(0.5), "p50_ms")
	b.ReportMetric(q(0.99), "p99_ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkStatusRate waits in processing for 20 s (the simulator keeps an
// amount ending in 52 processing) and reports the status requests per
// second the flow made meanwhile.
func BenchmarkStatusRate(b *testing.B) {
	const wait = 20 * time.Second
	a := startAgent(b, sim.Config{}, payment.Config{FixedAmount: 1052,
		Timeouts: payment.Timeouts{Payment: time.Hour}})
	var rates []float64
	for b.Loop() {
		before := a.sim.Sim.State().Requests[sim.MethodStatus]
		a.flow.Scan([]byte(a.sim.QR(b, "bench")), "bench", time.Now())
		a.wait(b, payment.Paying)
		time.Sleep(wait)
		n := a.sim.Sim.State().Requests[sim.MethodStatus] - before
		rates = append(rates, float64(n)/wait.Seconds())
		if err := a.flow.Cancel(); err != nil {
			b.Fatal(err)
		}
		a.wait(b, payment.Cancelled)
		a.wait(b, payment.Idle)
	}
	b.ReportMetric(slices.Max(rates), "status_req/s")
	b.ReportMetric(0, "ns/op")
}
