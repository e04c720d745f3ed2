package payment

import (
	"fmt"
	"slices"

	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/payment/journal"
	"github.com/kioskd/kioskd/payment/smartpay"
)

// State is where the current sale stands.
type State int

// Sale states. Keep in sync with stateNames and stateEffects.
const (
	Idle          State = iota // no sale: show your QR
	Committing                 // QR scanned, commit in flight (or being retried)
	WaitingAmount              // committed, waiting for the host's amount
	Releasing                  // release in flight
	Paying                     // released, polling the status
	Checking                   // outcome not known (lost answer, outage): polling until it is
	Paid                       // service says success; waiting for the hand-over
	Dispensing                 // the host is handing the goods over (a vend approved): waiting for its result
	Confirming                 // goods handed over: kassa/status success in flight
	Cancelling                 // kassa/status cancel in flight
	Completed                  // paid and confirmed (terminal)
	Declined                   // failed, expired or refused by the service (terminal)
	Cancelled                  // cancelled and acknowledged (terminal)
)

var stateNames = [...]string{"idle", "committing", "waiting_amount", "releasing", "paying",
	"checking", "paid", "dispensing", "confirming", "cancelling", "completed", "declined", "cancelled"}

// String is the state's name as used in logs, JSON and the API.
func (s State) String() string { return nameOf(stateNames[:], s) }

// MarshalText makes states readable in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a state name, for Go hosts reading the API.
func (s *State) UnmarshalText(b []byte) error { return parseName(stateNames[:], b, "state", s) }

// nameOf is v's name in names, "unknown" when it has none.
func nameOf[T ~int](names []string, v T) string {
	if v < 0 || int(v) >= len(names) {
		return "unknown"
	}
	return names[v]
}

// parseName sets *v to the value named b in names; what says which kind
// of name was not known.
func parseName[T ~int](names []string, b []byte, what string, v *T) error {
	i := slices.Index(names, string(b))
	if i < 0 {
		return fmt.Errorf("payment: unknown %s %q", what, b)
	}
	*v = T(i)
	return nil
}

// Terminal reports whether a sale in s is over.
func (s State) Terminal() bool { return s == Completed || s == Declined || s == Cancelled }

// stateEffects is, for each state, the customer screen and the journal
// phase written on entering it (the call the state leads to).
var stateEffects = [...]struct {
	screen display.State
	phase  journal.SalePhase
}{
	Idle:          {display.Ready, journal.SaleDone},
	Committing:    {display.CodeAccepted, journal.SaleCommitting},
	WaitingAmount: {display.WaitingAmount, journal.SaleCommitted},
	Releasing:     {display.Paying, journal.SaleReleasing},
	Paying:        {display.Paying, journal.SaleReleased},
	Checking:      {display.Checking, journal.SaleReleased},
	Paid:          {display.Paid, journal.SalePaid},
	Dispensing:    {display.Paid, journal.SaleDispensing},
	Confirming:    {display.Paid, journal.SaleHandedOver}, // Confirming always follows the service's success
	Cancelling:    {display.Cancelled, journal.SaleCancelling},
	Completed:     {display.Paid, journal.SaleDone},
	Declined:      {display.Declined, journal.SaleDone},
	Cancelled:     {display.Cancelled, journal.SaleDone},
}

// Display is the customer screen for s.
func (s State) Display() display.State {
	if s < 0 || int(s) >= len(stateEffects) {
		return display.Ready
	}
	return stateEffects[s].screen
}

// phase is the journal phase written on entering s: the call s leads to.
func (s State) phase() journal.SalePhase {
	if s < 0 || int(s) >= len(stateEffects) {
		return journal.SaleDone
	}
	return stateEffects[s].phase
}

// factKind is what happened.
type factKind int

const (
	fCommitted   factKind = iota // commit answered with a purchase id
	fRejected                    // the service refused the call for good (*APIError)
	fUnknown                     // no answer, or an answer that says nothing (5xx, outage)
	fReleased                    // release accepted
	fStatus                      // a status answer (see status)
	fAmount                      // the host sent the amount
	fCancel                      // host cancel, a replacing QR, paid elsewhere
	fTimeout                     // the current state's deadline passed
	fDispense                    // the host began handing the goods over
	fHandover                    // hand-over done (ok) or failed (!ok)
	fConfirmed                   // kassa/status success accepted
	fCancelAcked                 // kassa/status cancel accepted
)

// fact is the input of decide: what happened plus what the sale already knows.
type fact struct {
	kind       factKind
	status     smartpay.PurchaseStatus // fStatus
	ok         bool                    // fHandover
	haveAmount bool                    // the amount is known
	cancel     bool                    // a cancel is pending (asked during a call)
	auto       bool                    // hand-over mode auto
	recovering bool                    // the sale was found open at start: nobody waits for it
	refused    State                   // Confirming or Cancelling: the service refused that kassa/status
}

// decide is the state machine: the next state of a sale in cur after f.
// It is pure so every transition can be tested without a service.
func decide(cur State, f fact) State {
	switch cur {
	case Committing:
		switch f.kind {
		case fCommitted:
			if f.cancel || f.recovering {
				return Cancelling // committed but will never be released
			}
			if f.haveAmount {
				return Releasing
			}
			return WaitingAmount
		case fRejected:
			return Declined
		}
		return Committing // unknown: repeat with the same kassa id; a cancel waits for the answer
	case WaitingAmount:
		switch f.kind {
		case fAmount:
			if f.cancel {
				// A cancel (host, replacing QR, paid elsewhere) queued
				// behind the amount: the release must not go out.
				return Cancelling
			}
			return Releasing
		case fCancel, fTimeout:
			return Cancelling
		}
	case Releasing:
		switch f.kind {
		case fStatus: // the release answered with a final status
			return decide(Paying, f)
		case fReleased:
			if f.cancel {
				return Cancelling
			}
			return Paying
		case fRejected:
			return Cancelling
		case fUnknown:
			return Checking
		}
	case Paying, Checking:
		if f.refused != Idle {
			return afterRefusedKassa(f)
		}
		switch f.kind {
		case fStatus:
			switch f.status {
			case smartpay.Success:
				if f.cancel || f.recovering {
					return Cancelling // no hand-over recorded: the customer must not pay
				}
				if f.auto {
					return Confirming
				}
				return Paid
			case smartpay.Failed, smartpay.Expired:
				return Declined
			case smartpay.Cancelled:
				return Cancelled
			case smartpay.Committed:
				if f.cancel || f.recovering {
					return Cancelling
				}
				return Releasing // the release never arrived: send it again
			}
			if f.cancel {
				return Cancelling
			}
			return Paying
		case fUnknown:
			return Checking
		case fCancel, fTimeout:
			return Cancelling
		}
	case Paid:
		switch f.kind {
		case fDispense:
			return Dispensing
		case fHandover:
			if f.ok {
				return Confirming
			}
			return Cancelling
		case fCancel, fTimeout:
			return Cancelling
		}
	case Dispensing:
		switch f.kind {
		case fHandover:
			if f.ok {
				return Confirming
			}
			return Cancelling // the machine could not dispense: the payment is reversed
		case fTimeout:
			// No result from the machine: MDB counts a vend approved and
			// not failed as a success (the product may well be out).
			return Confirming
		}
	case Confirming:
		switch f.kind {
		case fConfirmed:
			return Completed
		case fRejected:
			// The refusal does not say how the purchase ended: ask.
			return Checking
		}
	case Cancelling:
		switch f.kind {
		case fCancelAcked:
			return Cancelled
		case fRejected:
			// Refused: the purchase may have ended (cancelled, expired)
			// or be confirmed (only a refund returns the money): ask.
			return Checking
		}
	}
	return cur
}

// afterRefusedKassa is decide in Checking after the service refused a
// kassa/status: only the purchase's final status ends the sale. There is no
// deadline and no cancel to make (the call was refused), and a success is
// the service keeping the money: a cancel is refused only once confirmed,
// a confirm only when the purchase is not (or no longer) payable.
func afterRefusedKassa(f fact) State {
	switch f.kind {
	case fStatus:
	case fRejected: // the status refused too: the service does not know the purchase
		if f.refused == Cancelling {
			return Cancelled // nothing to undo
		}
		return Declined
	default:
		return Checking
	}
	switch f.status {
	case smartpay.Success:
		return Completed
	case smartpay.Failed, smartpay.Expired:
		return Declined
	case smartpay.Cancelled:
		return Cancelled
	}
	return Checking
}
