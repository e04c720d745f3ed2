package payment_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/journal"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

var keyDir string

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "kioskd-payment-keys")
	if err != nil {
		panic(err)
	}
	keyDir = d
	if _, err := sim.New(sim.Config{Dir: d}, zap.NewNop()); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(d)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// runFlow runs a flow over svc and j until stop is called (or the test
// ends); it returns the flow's events.
func runFlow(t *testing.T, cfg payment.Config, svc payment.Service, j *journal.Journal) (*payment.Flow, <-chan payment.Event, func()) {
	t.Helper()
	f, err := payment.New(cfg, svc, j, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	events, unsub := f.Subscribe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.Run(ctx) }()
	stop := func() { cancel(); <-done; unsub() }
	t.Cleanup(stop)
	return f, events, stop
}
