package payment_test

import (
	"context"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
	sp "github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

// agent is a flow on a fresh journal against a simulator, running until the
// benchmark ends.
type agent struct {
	*harness
	sim *simEnv
	// released is when the simulator handled the last release: with the
	// simulator's SuccessDelay it gives the instant the payment succeeded.
	mu       sync.Mutex
	released time.Time
}

func startAgent(tb testing.TB, scfg sim.Config, fcfg payment.Config) *agent {
	return startHeldAgent(tb, scfg, fcfg, nil)
}

// startHeldAgent is startAgent whose simulator, when hold is not nil, holds
// each release answer for hold() after handling it: the payment then
// succeeds SuccessDelay − hold after the agent hears of the release, which
// varies the delay the agent sees from sale to sale (the simulator's own is
// fixed).
func startHeldAgent(tb testing.TB, scfg sim.Config, fcfg payment.Config, hold func() time.Duration) *agent {
	tb.Helper()
	a := &agent{}
	scfg.Middleware = func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != sp.PathRelease {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			a.mu.Lock()
			a.released = time.Now()
			a.mu.Unlock()
			if hold != nil {
				time.Sleep(hold()) // a slow service: the answer is late
			}
			maps.Copy(w.Header(), rec.Header())
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
		})
	}
	a.sim = startSim(tb, scfg)
	fcfg.Linger = time.Millisecond
	a.harness = run(tb, fcfg, a.sim.Client, nil)
	a.ready()
	return a
}

// sell runs one sale of a (fixed amount or the pending one) to Idle and
// returns how long after the simulator marked it successful (SuccessDelay
// after it handled the release) the flow published "paid". It then waits
// until the flow's status budget (one request a second) has earned back
// what the sale spent, so every sale starts with a full bucket, as at a
// kiosk whose customers are more than a few seconds apart.
func (a *agent) sell(b *testing.B, successDelay time.Duration) time.Duration {
	b.Helper()
	start := time.Now()
	before := a.sim.State().Requests[sim.MethodStatus]
	a.scan(a.sim.Payload(b, "bench"))
	paid := a.state(payment.Paid, payment.Confirming)
	a.mu.Lock()
	l := paid.Time.Sub(a.released.Add(successDelay))
	a.mu.Unlock()
	a.state(payment.Idle)
	spent := a.sim.State().Requests[sim.MethodStatus] - before
	time.Sleep(max(time.Duration(spent)*time.Second-time.Since(start), 0) + 10*time.Millisecond)
	return l
}

// warmSales is how many sales teach the poller a kiosk's delay before a
// benchmark measures.
const warmSales = 5

// BenchmarkPaidToEvent measures, at a kiosk whose payments take a
// characteristic time after the release, how long the flow takes to publish
// the event that shows "paid" after the simulator marks the purchase
// successful. The poller first learns the delay from warmSales sales (not
// measured). The ±20% case holds each release answer for 0–600 ms of a
// 1.8 s SuccessDelay: the agent sees payments complete 1.2–1.8 s after it.
func BenchmarkPaidToEvent(b *testing.B) {
	cases := []struct {
		name         string
		successDelay time.Duration
		hold         time.Duration // release answers held for up to this
	}{
		{"success_after_300ms", 300 * time.Millisecond, 0},
		{"success_after_1s", time.Second, 0},
		{"success_after_2.5s", 2500 * time.Millisecond, 0},
		{"success_after_1.5s±20%", 1800 * time.Millisecond, 600 * time.Millisecond},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var hold func() time.Duration
			if c.hold > 0 {
				hold = func() time.Duration { return rand.N(c.hold) }
			}
			a := startHeldAgent(b, sim.Config{SuccessDelay: c.successDelay}, payment.Config{FixedAmount: 1000}, hold)
			for range warmSales {
				a.sell(b, c.successDelay)
			}
			var lat []time.Duration
			for b.Loop() {
				lat = append(lat, a.sell(b, c.successDelay))
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
			q := a.sim.Payload(b, "bench")
			wg.Add(1)
			go func() {
				defer wg.Done()
				a.scan(q)
				paid, err := a.nextState(payment.Paid, payment.Confirming)
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

// BenchmarkStatusRate waits in processing (the simulator keeps an amount
// ending in 52 processing) at a kiosk whose payments usually take 1 s, so
// the poller has a learned window, and reports the status requests per
// second the simulator counted over the wait. wait_120s (the payment
// timeout) takes two minutes an iteration: run it with -benchtime 1x.
func BenchmarkStatusRate(b *testing.B) {
	for _, wait := range []time.Duration{20 * time.Second, 120 * time.Second} {
		b.Run("wait_"+wait.String(), func(b *testing.B) {
			a := startAgent(b, sim.Config{SuccessDelay: time.Second}, payment.Config{Handover: payment.HandoverAuto,
				Timeouts: payment.Timeouts{Payment: time.Hour}})
			amount := func(v int64) {
				if err := a.flow.SetAmount(context.Background(), v, ""); err != nil {
					b.Fatal(err)
				}
			}
			for range warmSales {
				amount(1000)
				a.sell(b, time.Second)
			}
			var rates []float64
			for b.Loop() {
				amount(1052)
				before := a.sim.State().Requests[sim.MethodStatus]
				a.scan(a.sim.Payload(b, "bench"))
				a.state(payment.Paying)
				time.Sleep(wait)
				n := a.sim.State().Requests[sim.MethodStatus] - before
				rates = append(rates, float64(n)/wait.Seconds())
				if err := a.flow.Cancel(context.Background()); err != nil {
					b.Fatal(err)
				}
				a.state(payment.Cancelled)
				a.state(payment.Idle)
			}
			b.ReportMetric(slices.Max(rates), "status_req/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
