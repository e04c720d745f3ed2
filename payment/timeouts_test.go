package payment_test

import (
	"context"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

// The waits of a sale end at their deadlines on the flow's clock: these
// tests move a fake clock instead of waiting them out. Service calls stay
// real (the simulator over mTLS).

// timeoutsFlow runs a flow with a fake clock against a simulator whose
// payments succeed at once.
func timeoutsFlow(t *testing.T, cfg payment.Config) (*harness, fakeClock, *simEnv) {
	clock := newFakeClock(t)
	se := startSim(t, sim.Config{SuccessDelay: time.Nanosecond})
	cfg.Clock = clock
	h := run(t, cfg, se.Client, nil)
	h.ready()
	return h, clock, se
}

// paid takes a released sale to Paid (or on, in auto mode): one status
// check, which the fake clock makes due.
func (h *harness) paid(clock fakeClock, want ...payment.State) payment.Event {
	h.tb.Helper()
	e := h.state(append([]payment.State{payment.Paying}, want...)...)
	if e.State == payment.Paying {
		clock.advance(2, time.Second) // the poll and the payment deadline wait
		e = h.state(want...)
	}
	return e
}

// notCharged checks that the purchase the sale made is not charged.
func notCharged(t *testing.T, se *simEnv, e payment.Event) {
	t.Helper()
	p, ok := se.State().Purchase(e.PurchaseID)
	if !ok {
		t.Fatalf("purchase %q not at the service", e.PurchaseID)
	}
	if p.Status == smartpay.Success && !p.Reversed {
		t.Fatalf("purchase charged: %+v", p)
	}
}

// A customer who walks away before the amount: the commit is cancelled.
func TestAmountTimeoutCancels(t *testing.T) {
	h, clock, se := timeoutsFlow(t, payment.Config{Timeouts: payment.Timeouts{Amount: 45 * time.Second}})
	h.scan(se.Payload(t, "walker"))
	h.state(payment.WaitingAmount)
	clock.advance(1, 45*time.Second)
	e := h.state(payment.Cancelled)
	if e.Message != "no amount in time" {
		t.Fatalf("cancelled with %q", e.Message)
	}
	notCharged(t, se, e)
}

// Goods not handed over in time: the payment is cancelled (reversed).
func TestHandoverTimeoutCancels(t *testing.T) {
	h, clock, se := timeoutsFlow(t, payment.Config{Timeouts: payment.Timeouts{Handover: 30 * time.Second}})
	h.scan(se.Payload(t, "nohand"))
	h.state(payment.WaitingAmount)
	if err := h.flow.SetAmount(context.Background(), 700, ""); err != nil {
		t.Fatal(err)
	}
	h.paid(clock, payment.Paid)
	clock.advance(1, 30*time.Second)
	e := h.state(payment.Cancelled)
	if e.Message != "goods not handed over in time" {
		t.Fatalf("cancelled with %q", e.Message)
	}
	notCharged(t, se, e)
}

// A payment still processing at the payment deadline is cancelled.
func TestPaymentTimeoutCancels(t *testing.T) {
	h, clock, se := timeoutsFlow(t, payment.Config{Timeouts: payment.Timeouts{Payment: 90 * time.Second}})
	h.scan(se.Payload(t, "slow"))
	h.state(payment.WaitingAmount)
	if err := h.flow.SetAmount(context.Background(), 1052, ""); err != nil { // the simulator keeps *52 processing
		t.Fatal(err)
	}
	h.state(payment.Paying)
	clock.advance(2, 91*time.Second)
	e := h.state(payment.Cancelled)
	if e.Message != "payment not confirmed in time" {
		t.Fatalf("cancelled with %q", e.Message)
	}
	notCharged(t, se, e)
}

// A finished sale stays on screen for Linger, then the flow shows Idle.
func TestLingerThenIdle(t *testing.T) {
	h, clock, se := timeoutsFlow(t, payment.Config{FixedAmount: 500, Linger: 4 * time.Second})
	h.scan(se.Payload(t, "linger"))
	h.paid(clock, payment.Completed)
	clock.advance(1, 4*time.Second)
	h.state(payment.Idle)
}
