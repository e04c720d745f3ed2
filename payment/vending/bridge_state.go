package vending

import (
	"time"

	"github.com/kioskd/kioskd/payment"
)

// The bridge's state machine: decide is pure, Bridge.enter carries out what
// it returns. One vend request is served at a time, as MDB has one vend at a
// time.

// phase is where the vend request being served stands.
type phase int

const (
	phaseIdle     phase = iota // no vend request
	phasePricing               // a request whose price the flow has not taken yet (a sale is still ending)
	phaseSelected              // the price is set with the flow: waiting for the payment
	phaseVending               // Dispense journaled and C,VEND written: waiting for the machine's result
)

var phaseNames = [...]string{"idle", "pricing", "selected", "vending"}

// String returns the phase's name for logs.
func (p phase) String() string { return label(phaseNames[:], p, "phase") }

// vend is the request being served and what the bridge learnt about its
// payment.
type vend struct {
	phase    phase
	req      Vend
	deadline time.Time // the last moment to approve: the machine gives up soon after
	sale     string    // the flow's sale paying for it (kassa_purchase_id), once seen
	purchase string    // the service's purchase id of that sale, once known
	amount   int64     // what that sale paid
	started  time.Time // when that sale started, i.e. its QR was scanned
}

// factKind is what happened: something the machine or the flow reported, or
// the result of one of the bridge's own calls.
type factKind int

const (
	fRequest     factKind = iota // the machine asks to approve a vend (req, deadline)
	fGone                        // the machine gave the request up, or denied it itself
	fResult                      // the machine's vend result (ok, byRule)
	fSale                        // a state event of the flow (ev, started)
	fRetry                       // time to offer a price the flow was too busy to take
	fPriced                      // SetAmount accepted the price
	fBusy                        // SetAmount refused for now: another sale is still running
	fUnpayable                   // SetAmount refused the price for good
	fApproved                    // Dispense journaled and Approve written
	fNotApproved                 // Dispense or Approve failed: C,VEND was not written
)

// fact is one input of decide.
type fact struct {
	kind     factKind
	req      Vend          // fRequest
	deadline time.Time     // fRequest
	ok       bool          // fResult: dispensed
	byRule   bool          // fResult: counted as dispensed without a report (MDB)
	ev       payment.Event // fSale
	started  time.Time     // fSale: when ev's sale started
	now      time.Time
}

// act is one call the bridge makes, in the order decide lists them.
type act int

const (
	actPrice   act = iota // Host.SetAmount(price, product)
	actDeny               // Machine.Deny: the machine gives the selection up
	actCancel             // Host.Cancel: the sale (or the price waiting for a QR) is cancelled
	actVend               // Host.Dispense, then Machine.Approve (C,VEND)
	actConfirm            // Host.Handover(true): the payment is confirmed
	actReturn             // Host.Handover(false): the payment is reversed
)

// step is what decide wants done.
type step struct {
	acts    []act
	ended   bool    // the vend request is over; outcome says how
	outcome Outcome //
	// returned: the vend's sale was paid and is being reversed, so the
	// customer is told the money comes back.
	returned bool
	why      string // for the log: why the request ends this way
}

func end(o Outcome, why string, acts ...act) step {
	return step{acts: acts, ended: true, outcome: o, why: why}
}

// decide is the bridge's state machine: the next state of the vend v after
// f and what to do. It is pure, so every transition is tested without a
// machine or a service.
func decide(v vend, f fact) (vend, step) {
	switch f.kind {
	case fRequest:
		next := vend{phase: phasePricing, req: f.req, deadline: f.deadline}
		switch v.phase {
		case phasePricing:
			return next, step{acts: []act{actPrice}}
		case phaseSelected:
			// The machine ends a request before it sends the next one
			// (see Machine); should it not, the old one's sale must go.
			return next, step{acts: []act{actCancel, actPrice}, why: "a new vend request replaced the pending one"}
		}
		return next, step{acts: []act{actPrice}}
	case fGone:
		switch v.phase {
		case phasePricing:
			return vend{}, end(OutcomeCancelled, "the machine gave the selection up")
		case phaseSelected:
			return vend{}, end(OutcomeCancelled, "the machine gave the selection up", actCancel)
		}
	case fRetry:
		if v.phase == phasePricing {
			return v, step{acts: []act{actPrice}}
		}
	case fPriced:
		if v.phase == phasePricing {
			v.phase = phaseSelected
		}
	case fUnpayable:
		if v.phase == phasePricing {
			return vend{}, end(OutcomeRefused, "the flow refuses the price", actDeny)
		}
	case fSale:
		return onSale(v, f)
	case fApproved:
		if v.phase == phaseSelected {
			v.phase = phaseVending
		}
	case fNotApproved:
		if v.phase == phaseSelected {
			s := end(OutcomeRefused, "the vend could not be approved after the payment", actDeny, actReturn)
			s.returned = true
			return vend{}, s
		}
	case fResult:
		if v.phase != phaseVending {
			return v, step{why: "a vend result without an approved vend: ignored"}
		}
		switch {
		case f.ok && f.byRule:
			return vend{}, end(OutcomeVendedByRule, "no vend result: counted as dispensed (MDB)", actConfirm)
		case f.ok:
			return vend{}, end(OutcomeVended, "vend success", actConfirm)
		}
		s := end(OutcomeFailed, "vend failure: the payment is returned", actReturn)
		s.returned = true
		return vend{}, s
	}
	return v, step{}
}

// onSale is decide for a state event of the flow.
func onSale(v vend, f fact) (vend, step) {
	ev := f.ev
	switch v.phase {
	case phasePricing:
		if ev.State.Terminal() || ev.State == payment.Idle {
			return v, step{acts: []act{actPrice}} // the flow may take the price now
		}
		return v, step{}
	case phaseSelected:
		if v.sale == "" && ev.SaleID != "" && !ev.State.Terminal() && ev.Amount == v.req.Amount {
			// The first sale that shows the price after SetAmount took it:
			// the one the QR scanned before or after the selection started.
			v.sale, v.started = ev.SaleID, f.started
		}
	case phaseVending:
	default:
		return v, step{}
	}
	if ev.SaleID == "" || ev.SaleID != v.sale {
		return v, step{}
	}
	if ev.PurchaseID != "" {
		v.purchase = ev.PurchaseID
	}
	if v.phase == phaseVending {
		return v, step{} // the machine's result decides; see fResult
	}
	switch ev.State {
	case payment.Paid:
		v.amount = ev.Amount
		var s step
		switch {
		case ev.Amount != v.req.Amount:
			s = end(OutcomeRefused, "the payment is not the price the machine asked for", actDeny, actCancel)
		case !v.deadline.IsZero() && f.now.After(v.deadline):
			s = end(OutcomeRefused, "paid too late: the machine is about to give the selection up", actDeny, actCancel)
		default:
			return v, step{acts: []act{actVend}}
		}
		s.returned = true
		return vend{}, s
	case payment.Declined, payment.Cancelled, payment.Completed:
		return vend{}, end(OutcomeDeclined, "the payment ended "+ev.State.String(), actDeny)
	}
	return v, step{}
}

// Outcome is how a vend request ended, for logs and metrics.
type Outcome int

// Outcomes. Keep in sync with outcomeNames.
const (
	OutcomeVended       Outcome = iota // dispensed and reported: the payment is confirmed
	OutcomeVendedByRule                // approved, no result (reset, unplug, silence): confirmed by MDB's rule
	OutcomeFailed                      // the machine could not dispense: the payment is reversed
	OutcomeCancelled                   // the machine gave the selection up first (customer cancel, its timeout, a reset)
	OutcomeDeclined                    // the payment did not succeed: the vend is denied
	OutcomeRefused                     // the vend could not be paid as asked (price, too late, not approvable): denied
)

var outcomeNames = [...]string{"vended", "vended_by_rule", "failed", "cancelled", "declined", "refused"}

// String returns the outcome's label.
func (o Outcome) String() string { return label(outcomeNames[:], o, "Outcome") }
