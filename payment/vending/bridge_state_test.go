package vending

import (
	"slices"
	"testing"
	"time"

	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/payment"
)

// Every transition of the bridge's state machine, without a machine or a
// service: what happened, where the vend stands then, what is done, and how
// the request ended.
func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	req := Vend{ID: 7, Amount: 8000, Item: 11, Product: "Вода"}
	pricing := vend{phase: phasePricing, req: req, deadline: t0.Add(59 * time.Second)}
	selected := pricing
	selected.phase = phaseSelected
	bound := selected
	bound.sale, bound.started = "s1", t0
	paid := bound
	paid.amount = 8000
	vending := paid
	vending.phase = phaseVending
	sale := func(id string, st payment.State, amount int64) fact {
		return fact{kind: fSale, ev: payment.Event{Kind: payment.KindState, SaleID: id, State: st, Amount: amount}, started: t0, now: t0.Add(10 * time.Second)}
	}
	late := sale("s1", payment.Paid, 8000)
	late.now = t0.Add(70 * time.Second)

	for _, c := range []struct {
		name     string
		from     vend
		f        fact
		phase    phase
		acts     []act
		outcome  Outcome // when ended
		ended    bool
		returned bool
	}{
		{"request", vend{}, fact{kind: fRequest, req: req}, phasePricing, []act{actPrice}, 0, false, false},
		{"request replaces a selection", bound, fact{kind: fRequest, req: Vend{ID: 8, Amount: 100}}, phasePricing, []act{actCancel, actPrice}, 0, false, false},
		{"priced", pricing, fact{kind: fPriced}, phaseSelected, nil, 0, false, false},
		{"busy: retried later", pricing, fact{kind: fBusy}, phasePricing, nil, 0, false, false},
		{"retry", pricing, fact{kind: fRetry}, phasePricing, []act{actPrice}, 0, false, false},
		{"a sale ended: retry now", pricing, sale("s0", payment.Cancelled, 5000), phasePricing, []act{actPrice}, 0, false, false},
		{"a sale goes on: wait", pricing, sale("s0", payment.Cancelling, 5000), phasePricing, nil, 0, false, false},
		{"unpayable", pricing, fact{kind: fUnpayable}, phaseIdle, []act{actDeny}, OutcomeRefused, true, false},
		{"gone while pricing", pricing, fact{kind: fGone}, phaseIdle, nil, OutcomeCancelled, true, false},
		{"gone while selected", bound, fact{kind: fGone}, phaseIdle, []act{actCancel}, OutcomeCancelled, true, false},
		{"another sale's event", bound, sale("s9", payment.Paid, 8000), phaseSelected, nil, 0, false, false},
		{"paid the price", bound, sale("s1", payment.Paid, 8000), phaseSelected, []act{actVend}, 0, false, false},
		{"paid, bound at once", selected, sale("s1", payment.Paid, 8000), phaseSelected, []act{actVend}, 0, false, false},
		{"paid another amount", bound, sale("s1", payment.Paid, 9000), phaseIdle, []act{actDeny, actCancel}, OutcomeRefused, true, true},
		{"paid too late", bound, late, phaseIdle, []act{actDeny, actCancel}, OutcomeRefused, true, true},
		{"declined", bound, sale("s1", payment.Declined, 8000), phaseIdle, []act{actDeny}, OutcomeDeclined, true, false},
		{"cancelled by the flow", bound, sale("s1", payment.Cancelled, 8000), phaseIdle, []act{actDeny}, OutcomeDeclined, true, false},
		{"approved", paid, fact{kind: fApproved}, phaseVending, nil, 0, false, false},
		{"not approved", paid, fact{kind: fNotApproved}, phaseIdle, []act{actDeny, actReturn}, OutcomeRefused, true, true},
		{"vend success", vending, fact{kind: fResult, ok: true}, phaseIdle, []act{actConfirm}, OutcomeVended, true, false},
		{"reset after approval", vending, fact{kind: fResult, ok: true, byRule: true}, phaseIdle, []act{actConfirm}, OutcomeVendedByRule, true, false},
		{"vend failure", vending, fact{kind: fResult}, phaseIdle, []act{actReturn}, OutcomeFailed, true, true},
		{"the flow confirmed on its own: the machine decides", vending, sale("s1", payment.Completed, 8000), phaseVending, nil, 0, false, false},
		{"a result with nothing approved", bound, fact{kind: fResult, ok: true}, phaseSelected, nil, 0, false, false},
		{"a result while idle", vend{}, fact{kind: fResult}, phaseIdle, nil, 0, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			next, s := decide(c.from, c.f)
			if next.phase != c.phase || !slices.Equal(s.acts, c.acts) || s.ended != c.ended || s.returned != c.returned ||
				(c.ended && s.outcome != c.outcome) {
				t.Errorf("decide = %v %v ended=%v %v returned=%v; want %v %v ended=%v %v returned=%v",
					next.phase, s.acts, s.ended, s.outcome, s.returned, c.phase, c.acts, c.ended, c.outcome, c.returned)
			}
		})
	}

	// The sale that takes the price is the first to show it.
	next, _ := decide(selected, sale("s0", payment.Committing, 0))
	if next.sale != "" {
		t.Errorf("bound to a sale without the price: %+v", next)
	}
	next, _ = decide(selected, sale("s2", payment.Releasing, 8000))
	if next.sale != "s2" || next.started != t0 {
		t.Errorf("not bound to the sale with the price: %+v", next)
	}
	if next, _ = decide(selected, sale("s3", payment.Cancelled, 8000)); next.sale != "" {
		t.Errorf("bound to an ended sale: %+v", next)
	}
}

// The vending screens: the selection with its product and price (also when
// the last sale's screen ends while it waits), a payment returned because
// nothing was dispensed; every other event as the flow shows it.
func TestScreen(t *testing.T) {
	b := NewBridge(nil, nil, nil, BridgeOptions{})
	b.selected, b.returned = &Vend{Amount: 8000, Product: "Вода"}, "s1"
	selected := display.Screen{State: display.Selected, Amount: 8000, Product: "Вода"}
	state := func(id string, st payment.State) payment.Event {
		return payment.Event{Kind: payment.KindState, SaleID: id, State: st, Amount: 8000}
	}
	for _, c := range []struct {
		ev   payment.Event
		want display.Screen
	}{
		{payment.Event{Kind: payment.KindAmount, Amount: 8000}, selected},
		{state("", payment.Idle), selected},
		{payment.Event{Kind: payment.KindAmount}, display.Screen{State: display.Ready}},
		{state("s1", payment.Cancelled), display.Screen{State: display.VendFailed, Amount: 8000}},
		{state("s2", payment.Cancelled), display.Screen{State: display.Cancelled, Amount: 8000}},
		{state("s2", payment.Paying), display.Screen{State: display.Paying, Amount: 8000}},
	} {
		if got, ok := b.Screen(c.ev); !ok || got != c.want {
			t.Errorf("%v %v: %+v %v, want %+v", c.ev.Kind, c.ev.State, got, ok, c.want)
		}
	}
	b.selected = nil
	if got, _ := b.Screen(state("", payment.Idle)); got.State != display.Ready {
		t.Errorf("idle without a selection: %+v", got)
	}
}
