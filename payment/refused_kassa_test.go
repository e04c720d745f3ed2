package payment_test

import (
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/journal"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

// A cancel the service refuses is not shown as Cancelled: the status is
// asked, and a purchase the service kept (confirmed; only a refund returns
// the money) ends Completed.
func TestRefusedCancelAsksTheStatus(t *testing.T) {
	t.Parallel()
	se := startSim(t, sim.Config{SuccessDelay: 50 * time.Millisecond})
	j := openJournal(t)
	cfg := payment.Config{FixedAmount: 300, Linger: time.Millisecond}
	h := run(t, cfg, se.Client, j)
	h.ready()
	h.scan(se.Payload(t, "vera"))
	done := h.terminal()
	if done.State != payment.Completed {
		t.Fatalf("first sale ended %s", done.State)
	}
	h.stop()
	// A record left cancelling for that purchase (the service has it
	// confirmed): the restart's cancel is refused.
	rec, err := j.NewSale([]byte(se.Payload(t, "vera2")), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rec.Phase, rec.PurchaseID, rec.Amount = journal.SaleCancelling, done.PurchaseID, 300
	if err := j.PutSale(rec); err != nil {
		t.Fatal(err)
	}
	h = run(t, cfg, se.Client, j)
	if end := h.terminal(); end.State != payment.Completed {
		t.Fatalf("a refused cancel of a confirmed purchase ended %s, want completed", end.State)
	}
	if p, _ := se.State().Purchase(done.PurchaseID); !p.Confirmed || p.Reversed {
		t.Fatalf("simulator: %+v", p)
	}
}
