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

// Each wait of a sale cancels it at its deadline, with the reason, and
// nothing is charged: a customer who walks away before the amount, goods
// not handed over in time, a payment still processing at the deadline (the
// simulator keeps amounts ending in 52 processing).
func TestWaitsCancelAtTheirDeadline(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		to      payment.Timeouts
		amount  int64         // 0: no amount comes
		until   payment.State // where the sale waits
		timers  int           // the flow's timers while it waits there
		advance time.Duration
		reason  string
	}{
		{"amount", payment.Timeouts{Amount: 45 * time.Second}, 0, payment.WaitingAmount, 1, 45 * time.Second, "no amount in time"},
		{"handover", payment.Timeouts{Handover: 30 * time.Second}, 700, payment.Paid, 1, 30 * time.Second, "goods not handed over in time"},
		{"payment", payment.Timeouts{Payment: 90 * time.Second}, 1052, payment.Paying, 2, 91 * time.Second, "payment not confirmed in time"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, clock, se := timeoutsFlow(t, payment.Config{Timeouts: c.to})
			h.scan(se.Payload(t, c.name))
			h.state(payment.WaitingAmount)
			if c.amount > 0 {
				if err := h.flow.SetAmount(context.Background(), c.amount, ""); err != nil {
					t.Fatal(err)
				}
				if c.until == payment.Paid {
					h.paid(clock, payment.Paid)
				} else {
					h.state(c.until)
				}
			}
			clock.advance(c.timers, c.advance)
			e := h.state(payment.Cancelled)
			if e.Message != c.reason {
				t.Fatalf("cancelled with %q, want %q", e.Message, c.reason)
			}
			notCharged(t, se, e)
		})
	}
}

// A finished sale stays on screen for Linger, then the flow shows Idle.
func TestLingerThenIdle(t *testing.T) {
	t.Parallel()
	h, clock, se := timeoutsFlow(t, payment.Config{FixedAmount: 500, Linger: 4 * time.Second})
	h.scan(se.Payload(t, "linger"))
	h.paid(clock, payment.Completed)
	clock.advance(1, 4*time.Second)
	h.state(payment.Idle)
}
