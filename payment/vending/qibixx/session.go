package qibixx

import (
	"fmt"
	"time"

	"github.com/kioskd/kioskd/payment/vending"
)

// phase is where the vend in progress stands.
type phase int

const (
	phaseNone      phase = iota // no vend request pending
	phaseRequested              // the VMC asked; waiting for Approve or Deny
	phaseApproved               // C,VEND sent; waiting for the VMC's result
)

var phaseNames = [...]string{"none", "requested", "approved"}

// String returns the phase's name for logs.
func (p phase) String() string { return phaseNames[p] }

// session is the state of the vend in progress. It changes only through
// decide.
type session struct {
	phase  phase
	vend   vending.Vend // the request, while phase != phaseNone
	lastID uint64
}

// factKind is what happened.
type factKind int

const (
	factRequest    factKind = iota // the VMC asked for a vend (fact.vend: Amount, Item, Product)
	factBadRequest                 // the VMC asked for a vend that cannot be paid (cause, text)
	factSuccess                    // c,VEND,SUCCESS
	factFailure                    // c,ERR,VEND 3 (text)
	factReader                     // a status line (reader)
	factApprove                    // Approve(vend.ID, vend.Amount); text is the formatted amount
	factDeny                       // Deny(vend.ID)
	factLost                       // the adapter's link was lost or stopped answering (cause)
)

// fact is one input to decide.
type fact struct {
	kind   factKind
	vend   vending.Vend
	reader vending.ReaderState
	cause  vending.Cause
	text   string
	at     time.Time
}

// actions is what decide wants done.
type actions struct {
	events []vending.Event // to deliver, in order
	send   Command         // to write to the adapter, "" for none
	err    error           // the refusal to return from Approve or Deny
	note   string          // a protocol oddity, logged once per distinct note
}

// decide is the vend state machine: a pure function of the current session
// and one fact. The Device applies the actions (writes the command first,
// and keeps the new session only if that worked).
func decide(s session, f fact) (session, actions) {
	var a actions
	switch f.kind {
	case factRequest:
		if s.phase == phaseRequested && s.vend.Amount == f.vend.Amount && s.vend.Item == f.vend.Item {
			a.note = "the same vend request repeated: kept the pending one"
			return s, a
		}
		s, a = endForRequest(s, f.at)
		s.lastID++
		v := f.vend
		v.ID = s.lastID
		s.phase, s.vend = phaseRequested, v
		a.events = append(a.events, vending.VendRequest{Vend: v, At: f.at})
	case factBadRequest:
		s, a = endForRequest(s, f.at)
		s.lastID++
		v := f.vend
		v.ID = s.lastID
		a.events = append(a.events, vending.VendDenied{Vend: v, Cause: f.cause, Detail: f.text, At: f.at})
		a.send = CmdStop()
	case factSuccess:
		if s.phase != phaseApproved {
			a.note = "c,VEND,SUCCESS without an approved vend: ignored"
			return s, a
		}
		a.events = append(a.events, vending.VendSuccess{Vend: s.vend, At: f.at})
		s.phase = phaseNone
	case factFailure:
		if s.phase != phaseApproved {
			a.note = "a vend failure without an approved vend: ignored"
			return s, a
		}
		a.events = append(a.events, vending.VendFailure{Vend: s.vend, Reason: f.text, At: f.at})
		s.phase = phaseNone
	case factReader:
		return readerChanged(s, f)
	case factApprove:
		switch a.err = s.answerable(f.vend.ID); {
		case a.err != nil:
		case f.vend.Amount != s.vend.Amount:
			a.err = fmt.Errorf("%w: request %d asks %d kopecks, approval of %d refused",
				vending.ErrAmountMismatch, f.vend.ID, s.vend.Amount, f.vend.Amount)
		default:
			cmd, err := CmdVend(f.text)
			if err != nil {
				a.err = err
				break
			}
			a.send = cmd
			s.phase = phaseApproved
		}
	case factDeny:
		if a.err = s.answerable(f.vend.ID); a.err == nil {
			a.send = CmdStop()
			s.phase = phaseNone
		}
	case factLost:
		return endWith(s, f.cause, f.cause, f.at)
	}
	return s, a
}

// answerable says whether request id may be approved or denied now: it
// must be the pending request, not yet approved.
func (s session) answerable(id uint64) error {
	switch {
	case s.phase == phaseNone || s.vend.ID != id:
		return fmt.Errorf("%w: request %d", vending.ErrNotPending, id)
	case s.phase == phaseApproved:
		return fmt.Errorf("%w: request %d", vending.ErrApproved, id)
	}
	return nil
}

// endForRequest ends the vend in progress because the VMC asked for a new
// one: MDB has one vend at a time, so a request missed the previous end.
func endForRequest(s session, at time.Time) (session, actions) {
	s, a := endWith(s, vending.CauseSuperseded, vending.CauseSuperseded, at)
	if len(a.events) > 0 {
		a.note = "a vend request came while another vend was in progress"
	}
	return s, a
}

// endWith ends the vend in progress: a pending request is cancelled with
// cancel, an approved one ends with its result unknown because of unknown.
func endWith(s session, cancel, unknown vending.Cause, at time.Time) (session, actions) {
	var a actions
	switch s.phase {
	case phaseRequested:
		a.events = append(a.events, vending.SessionCancelled{Vend: s.vend, Cause: cancel, At: at})
	case phaseApproved:
		a.events = append(a.events, vending.VendResultUnknown{Vend: s.vend, Cause: unknown, At: at})
	}
	s.phase = phaseNone
	return s, a
}

// readerChanged applies a status line. Leaving the Vend state ends a pending
// request (the VMC gave up: customer cancel or its vend timeout; the
// adapter's lines do not say which). After approval the only result taken
// from a status line is MDB's rule that a reset between Vend Approved and
// the result counts as a success.
func readerChanged(s session, f fact) (session, actions) {
	switch f.reader {
	case vending.ReaderInactive:
		if s.phase == phaseApproved {
			ev := vending.VendSuccess{Vend: s.vend, ByVMCReset: true, At: f.at}
			s.phase = phaseNone
			return s, actions{events: []vending.Event{ev},
				note: "the VMC reset the reader between Vend Approved and the result: a success by MDB's rule"}
		}
		return endWith(s, vending.CauseVMCReset, vending.CauseVMCReset, f.at)
	case vending.ReaderDisabled:
		return endWith(s, vending.CauseDisabled, vending.CauseDisabled, f.at)
	case vending.ReaderEnabled, vending.ReaderSessionIdle:
		s2, a := endWith(s, vending.CauseVMC, vending.CauseNoResult, f.at)
		if s.phase == phaseApproved {
			a.note = "the session ended after Vend Approved without a vend result"
		}
		return s2, a
	}
	return s, actions{}
}
