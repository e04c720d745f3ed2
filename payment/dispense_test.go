package payment_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

// paidVend takes a vending sale of amount to Paid.
func paidVend(t *testing.T, h *harness, qr string, amount int64) payment.Event {
	t.Helper()
	h.scan(qr)
	h.state(payment.WaitingAmount)
	if err := h.flow.SetAmount(context.Background(), amount, ""); err != nil {
		t.Fatal(err)
	}
	return h.state(payment.Paid)
}

// The goods being handed over (a vend approved) is journaled before the
// host is answered: a crash then confirms the payment, as MDB counts a
// reset during a vend as a success; the price must be the one paid.
func TestDispenseThenCrashConfirms(t *testing.T) {
	t.Parallel()
	se := startSim(t, sim.Config{SuccessDelay: time.Nanosecond})
	j := openJournal(t)
	cfg := payment.Config{Handover: payment.HandoverVending}
	h := run(t, cfg, se.Client, j)
	h.ready()
	ctx := context.Background()
	paid := paidVend(t, h, se.Payload(t, "vend"), 8000)
	if err := h.flow.Dispense(ctx, 7000); !errors.Is(err, payment.ErrInvalid) {
		t.Fatalf("dispense of another price: %v, want ErrInvalid", err)
	}
	if err := h.flow.Dispense(ctx, 8000); err != nil {
		t.Fatal(err)
	}
	if err := h.flow.Dispense(ctx, 8000); err != nil {
		t.Fatalf("a repeated dispense: %v", err)
	}
	if err := h.flow.Cancel(ctx); !errors.Is(err, payment.ErrWrongState) {
		t.Fatalf("cancel while dispensing: %v, want ErrWrongState", err)
	}
	h.stop() // the crash: no vend result recorded
	h = run(t, cfg, se.Client, j)
	if e := h.terminal(); e.State != payment.Completed || e.PurchaseID != paid.PurchaseID {
		t.Fatalf("recovered vend ended %s (%s)", e.State, e.PurchaseID)
	}
	if p, _ := se.State().Purchase(paid.PurchaseID); !p.Confirmed {
		t.Fatalf("simulator: %+v", p)
	}
}

// A vend that failed reverses the payment.
func TestDispenseFailedCancels(t *testing.T) {
	t.Parallel()
	se := startSim(t, sim.Config{SuccessDelay: time.Nanosecond})
	h := run(t, payment.Config{Handover: payment.HandoverVending}, se.Client, nil)
	h.ready()
	ctx := context.Background()
	paid := paidVend(t, h, se.Payload(t, "jam"), 5000)
	if err := h.flow.Dispense(ctx, 5000); err != nil {
		t.Fatal(err)
	}
	if err := h.flow.Handover(ctx, false); err != nil {
		t.Fatal(err)
	}
	h.state(payment.Cancelled)
	notCharged(t, se, paid)
}

// A vend whose result never comes is counted as dispensed (MDB).
func TestDispenseWithoutResultConfirms(t *testing.T) {
	t.Parallel()
	h, clock, se := timeoutsFlow(t, payment.Config{Handover: payment.HandoverVending, Timeouts: payment.Timeouts{Handover: 40 * time.Second}})
	h.sell(se.Payload(t, "silent"), 900, "")
	h.paid(clock, payment.Paid)
	if err := h.flow.Dispense(context.Background(), 900); err != nil {
		t.Fatal(err)
	}
	clock.advance(1, 40*time.Second)
	if e := h.terminal(); e.State != payment.Completed {
		t.Fatalf("ended %s", e.State)
	}
}
