package vending

import (
	"fmt"
	"time"
)

// Event is something the vending machine (or its adapter) did. The concrete
// types are listed below; switch on them.
type Event interface {
	// When is when the adapter's line that caused the event was read, or
	// when the device noticed the condition (a lost link).
	When() time.Time
	isEvent()
}

// Vend identifies one vend: the product the customer selected and the price
// the VMC asked for it.
type Vend struct {
	// ID is unique for the Machine's lifetime: Approve and Deny name the
	// request they answer, so an answer to a request that was meanwhile
	// cancelled or replaced is refused instead of applied to the next one.
	ID      uint64
	Amount  int64  // kopecks, exactly the price the VMC asked for
	Item    int    // the VMC's item (selection) number, 0–65535
	Product string // the catalogue's name for Item, "" when not catalogued
}

// VendRequest: the customer selected a product and the VMC asks the cashless
// device to approve its price. It waits for Approve or Deny for at most its
// own vend timeout.
type VendRequest struct {
	Vend
	At time.Time
}

// VendSuccess: the VMC reports that the approved product was dispensed.
//
// ByVMCReset is set when there was no success report but the VMC reset the
// reader between Vend Approved and the result: MDB counts that as a success
// (MDB/ICP 4.2, cashless device, §7). It is the only inferred result.
type VendSuccess struct {
	Vend
	ByVMCReset bool
	At         time.Time
}

// VendFailure: the VMC reports that the approved product was not dispensed;
// the money must be given back.
type VendFailure struct {
	Vend
	Reason string // the adapter's words, e.g. "VEND 3"
	At     time.Time
}

// VendResultUnknown: the vend was approved but its result can no longer be
// learnt from the machine (the adapter was unplugged, reset, stopped
// answering, or the session ended without a result). Nothing is guessed: the
// caller decides (and journals) what to do.
type VendResultUnknown struct {
	Vend
	Cause Cause
	At    time.Time
}

// SessionCancelled: a vend request ended before it was approved or denied
// (the customer cancelled on the machine, the VMC's vend timeout ran out, the
// VMC reset or disabled the reader, or the link to the adapter was lost).
type SessionCancelled struct {
	Vend
	Cause Cause
	At    time.Time
}

// VendDenied: the device denied a vend request by itself, without asking the
// caller, because it could not be paid correctly (a price that is no whole
// number of the machine's money units, or one that differs from the
// catalogue's). It is reported so that it shows in logs and metrics.
type VendDenied struct {
	Vend
	Cause  Cause
	Detail string
	At     time.Time
}

// Reset: the reader was reset. After ResetByAdapter the adapter was
// configured anew; any vend in progress already ended with an event.
type Reset struct {
	By ResetBy
	At time.Time
}

// StatusChanged: the adapter's or the reader's state changed.
type StatusChanged struct {
	Status Status
	At     time.Time
}

// AdapterError: the adapter reported an error that is not a vend result
// (e.g. a command refused in the current state). It is logged and passed on;
// it never changes the state of a vend.
type AdapterError struct {
	Text string
	At   time.Time
}

// When implements Event.
func (e VendRequest) When() time.Time { return e.At }

// When implements Event.
func (e VendSuccess) When() time.Time { return e.At }

// When implements Event.
func (e VendFailure) When() time.Time { return e.At }

// When implements Event.
func (e VendResultUnknown) When() time.Time { return e.At }

// When implements Event.
func (e SessionCancelled) When() time.Time { return e.At }

// When implements Event.
func (e VendDenied) When() time.Time { return e.At }

// When implements Event.
func (e Reset) When() time.Time { return e.At }

// When implements Event.
func (e StatusChanged) When() time.Time { return e.At }

// When implements Event.
func (e AdapterError) When() time.Time { return e.At }

func (VendRequest) isEvent()       {}
func (VendSuccess) isEvent()       {}
func (VendFailure) isEvent()       {}
func (VendResultUnknown) isEvent() {}
func (SessionCancelled) isEvent()  {}
func (VendDenied) isEvent()        {}
func (Reset) isEvent()             {}
func (StatusChanged) isEvent()     {}
func (AdapterError) isEvent()      {}

// Cause says why a vend ended without a result or was refused. Its String
// is a stable label for logs and metrics.
type Cause int

// Causes. Keep in sync with causeNames.
const (
	// CauseVMC: the VMC ended the session. The adapter's lines do not tell
	// a customer's cancel from the VMC's own vend timeout.
	CauseVMC              Cause = iota
	CauseVMCReset               // the VMC reset the reader
	CauseDisabled               // the VMC disabled the reader
	CauseLinkLost               // the adapter's port went away (unplug, hang-up)
	CauseNotAnswering           // the adapter stopped answering
	CauseSuperseded             // a new vend request came before this one ended
	CauseNoResult               // the session ended after approval without a result
	CauseNotRepresentable       // the price is no whole number of money units
	CausePriceMismatch          // the price differs from the catalogue's
)

var causeNames = [...]string{"vmc", "vmc_reset", "disabled", "link_lost", "not_answering",
	"superseded", "no_result", "not_representable", "price_mismatch"}

// String returns the cause's label.
func (c Cause) String() string { return label(causeNames[:], c, "Cause") }

// ResetBy says who reset the reader.
type ResetBy int

// Reset sources.
const (
	ResetByVMC     ResetBy = iota // the VMC reset the reader (MDB RESET)
	ResetByAdapter                // the adapter rebooted or was replugged and was configured again
)

// String returns "vmc" or "adapter".
func (r ResetBy) String() string {
	switch r {
	case ResetByVMC:
		return "vmc"
	case ResetByAdapter:
		return "adapter"
	}
	return fmt.Sprintf("ResetBy(%d)", int(r))
}
