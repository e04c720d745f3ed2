package payment_test

import (
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/internal/simenv"
	"github.com/kioskd/kioskd/payment/journal"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

func waitTerminal(t *testing.T, events <-chan payment.Event) payment.Event {
	t.Helper()
	tm := time.NewTimer(10 * time.Second)
	defer tm.Stop()
	for {
		select {
		case e := <-events:
			if e.Kind == payment.KindState && e.State.Terminal() {
				return e
			}
		case <-tm.C:
			t.Fatal("the sale never ended")
		}
	}
}

// A cancel the service refuses is not shown as Cancelled: the status is
// asked, and a purchase the service kept (confirmed; only a refund returns
// the money) ends Completed.
func TestRefusedCancelAsksTheStatus(t *testing.T) {
	se := simenv.Start(t, sim.Config{Dir: keyDir, SuccessDelay: 50 * time.Millisecond}, zap.NewNop())
	j, err := journal.Open(filepath.Join(t.TempDir(), "j.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	cfg := payment.Config{FixedAmount: 300, Linger: time.Millisecond}
	f, events, stop := runFlow(t, cfg, se.Client, j)
	for !f.Snapshot().Ready {
		time.Sleep(time.Millisecond)
	}
	f.Scan([]byte(se.QR(t, "vera")), "test", time.Now())
	done := waitTerminal(t, events)
	if done.State != payment.Completed {
		t.Fatalf("first sale ended %s", done.State)
	}
	stop()
	// A record left cancelling for that purchase (the service has it
	// confirmed): the restart's cancel is refused.
	rec, err := j.NewSale([]byte(se.QR(t, "vera2")), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rec.Phase, rec.PurchaseID, rec.Amount = journal.PhaseCancelling, done.PurchaseID, 300
	if err := j.PutSale(rec); err != nil {
		t.Fatal(err)
	}
	_, events, _ = runFlow(t, cfg, se.Client, j)
	if end := waitTerminal(t, events); end.State != payment.Completed {
		t.Fatalf("a refused cancel of a confirmed purchase ended %s, want completed", end.State)
	}
	if p, _ := se.Sim.State().Purchase(done.PurchaseID); !p.Confirmed || p.Reversed {
		t.Fatalf("simulator: %+v", p)
	}
}
