package qibixx_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment/vending"
	"github.com/kioskd/kioskd/payment/vending/qibixx"
	"github.com/kioskd/kioskd/payment/vending/vmcsim"
)

// BenchmarkLineToEvent measures, over a real pty, the time from the
// emulated adapter writing a vend request line (c,STATUS,VEND,…) to the
// typed VendRequest returned by Device.Next ("delivered"), and to the
// moment the device's reader had read it ("read", VendRequest.At). Each
// iteration denies the request and waits for the machine to be ready again.
func BenchmarkLineToEvent(b *testing.B) {
	r := newRig(b, rigOptions{noPump: true, opts: qibixx.Options{ProbeEvery: time.Hour}})
	r.ready()
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Minute)
	defer cancel()
	delivered := make([]time.Duration, 0, b.N)
	read := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		if err := r.m.Select(12); err != nil {
			b.Fatal(err)
		}
		var req vending.VendRequest
		for {
			ev, err := r.dev.Next(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if vr, ok := ev.(vending.VendRequest); ok {
				req = vr
				break
			}
		}
		now := time.Now()
		t0 := r.m.Snapshot().Session.RequestedAt
		delivered = append(delivered, now.Sub(t0))
		read = append(read, req.At.Sub(t0))
		if err := r.dev.Deny(ctx, req.ID); err != nil {
			b.Fatal(err)
		}
		if _, err := r.m.Wait(ctx, func(s vmcsim.Snapshot) bool {
			return s.Session.Phase == "" && s.Reader == vending.ReaderEnabled
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	report := func(d []time.Duration, name string) {
		slices.Sort(d)
		b.ReportMetric(float64(d[len(d)/2].Microseconds()), name+"-p50-µs")
		b.ReportMetric(float64(d[len(d)*99/100].Microseconds()), name+"-p99-µs")
	}
	report(delivered, "delivered")
	report(read, "read")
}
