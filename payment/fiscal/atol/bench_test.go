package atol_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment/fiscal/atol"
	"github.com/kioskd/kioskd/payment/fiscal/fiscalsim"
	"github.com/kioskd/kioskd/payment/fiscal/fiscalsim/simtest"
)

// BenchmarkSell measures a receipt from submission to a confirmed Result
// against the web server simulator over real HTTP (loopback), with the
// simulator's own time in its handlers for the same receipts beside it:
// the difference is the client, HTTP and the poll cadence.
//
//	ready: the task is done when first polled (electronic receipt, idle ККТ)
//	inProgress2: the task stays in progress for two polls (default cadence)
func BenchmarkSell(b *testing.B) {
	for _, bc := range []struct {
		name  string
		polls int
	}{{"ready", 0}, {"inProgress2", 2}} {
		b.Run(bc.name, func(b *testing.B) {
			srv := simtest.NewAtol(b, fiscalsim.Config{}, nil)
			c, err := atol.New(atol.Config{URL: srv.URL}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()
			var lat []time.Duration
			var ids []string
			for b.Loop() {
				if bc.polls > 0 {
					b.StopTimer()
					if err := srv.Sim.InjectFault(fiscalsim.Fault{Method: fiscalsim.AtolPost, Kind: fiscalsim.FaultPending, Polls: bc.polls}); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				r := newReceipt()
				start := time.Now()
				if _, err := c.Sell(ctx, r); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
				ids = append(ids, r.ID)
			}
			st := srv.Sim.State()
			var sim []time.Duration
			for _, id := range ids {
				task, _ := st.Task(id)
				sim = append(sim, task.ServerTime)
			}
			report(b, "", lat)
			report(b, "sim-", sim)
		})
	}
}

func report(b *testing.B, prefix string, d []time.Duration) {
	slices.Sort(d)
	at := func(p int) float64 {
		i := (len(d)*p+99)/100 - 1
		return float64(d[max(i, 0)]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(50), prefix+"p50-ms")
	b.ReportMetric(at(99), prefix+"p99-ms")
}
