package fiscal

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Provider issues fiscal receipts. Implementations are safe for concurrent
// use and idempotent on Receipt.ID: a repeated call with the same ID
// returns the document already made (or waits for the one in progress),
// never a second one. Errors are *Error; branch on their Kind.
type Provider interface {
	// Sell registers a sale (приход) paid electronically.
	Sell(ctx context.Context, r Receipt) (Result, error)
	// SellReturn registers the return of a sale (возврат прихода).
	SellReturn(ctx context.Context, r Receipt) (Result, error)
	// Check asks the backend whether it can take receipts now (kioskd
	// check, /healthz). It makes no fiscal document.
	Check(ctx context.Context) (Status, error)
}

// Shifts is implemented by providers whose ККТ needs its shift opened and
// closed by us (the ATOL web server); a cloud kassa keeps its own.
type Shifts interface {
	// Shift reports the shift's state.
	Shift(ctx context.Context) (Shift, error)
	// OpenShift opens a shift (a fiscal document, отчёт об открытии смены).
	OpenShift(ctx context.Context) (Shift, error)
	// CloseShift closes the shift (Z report).
	CloseShift(ctx context.Context) (Shift, error)
}

// Issue registers r as op through p. When p manages shifts and the ККТ
// refuses because the shift is older than 24 h, Issue closes and opens the
// shift once and tries again with the same Receipt.ID: the refused
// attempt made no document, so the receipt is neither lost nor doubled.
func Issue(ctx context.Context, p Provider, op Operation, r Receipt) (Result, error) {
	call := p.Sell
	switch op {
	case Sell:
	case SellReturn:
		call = p.SellReturn
	default:
		return Result{}, fmt.Errorf("fiscal: issue %s: unknown operation", op)
	}
	res, err := call(ctx, r)
	s, ok := p.(Shifts)
	if !ok || !errors.Is(err, ErrShiftExpired) {
		return res, err
	}
	if _, rerr := RenewShift(ctx, s); rerr != nil {
		return Result{}, fmt.Errorf("fiscal: renew the expired shift before receipt %s: %w", r.ID, rerr)
	}
	return call(ctx, r)
}

// RenewShift closes the shift if it is open or expired and opens a new one.
func RenewShift(ctx context.Context, s Shifts) (Shift, error) {
	cur, err := s.Shift(ctx)
	if err != nil {
		return Shift{}, err
	}
	if cur.State != ShiftIsClosed {
		if _, err := s.CloseShift(ctx); err != nil {
			return Shift{}, err
		}
	}
	return s.OpenShift(ctx)
}

// ShiftAction is what a shift needs now.
type ShiftAction uint8

// Shift actions, as ShiftDue decides them.
const (
	ShiftKeep    ShiftAction = iota // open with time to spare: nothing to do
	ShiftOpenNew                    // closed: open one
	ShiftRenew                      // expired, or ending within the margin: close and open
)

// String names the action for logs.
func (a ShiftAction) String() string {
	switch a {
	case ShiftOpenNew:
		return "open"
	case ShiftRenew:
		return "renew"
	}
	return "keep"
}

// ShiftDue decides, from the shift's state and the time, what to do so
// that no receipt meets an expired shift: renew a shift that is expired or
// ends within margin, open a closed one. A shift whose end is unknown is
// kept until the ККТ says it expired.
func ShiftDue(s Shift, now time.Time, margin time.Duration) ShiftAction {
	switch s.State {
	case ShiftIsClosed:
		return ShiftOpenNew
	case ShiftIsExpired:
		return ShiftRenew
	}
	if !s.Expires.IsZero() && !now.Before(s.Expires.Add(-margin)) {
		return ShiftRenew
	}
	return ShiftKeep
}

// KeepShift asks the shift's state and does what ShiftDue decides; run it
// on a timer (and before the first sale) with a margin of an hour or so.
func KeepShift(ctx context.Context, s Shifts, now time.Time, margin time.Duration) (Shift, ShiftAction, error) {
	cur, err := s.Shift(ctx)
	if err != nil {
		return Shift{}, ShiftKeep, err
	}
	act := ShiftDue(cur, now, margin)
	switch act {
	case ShiftOpenNew:
		cur, err = s.OpenShift(ctx)
	case ShiftRenew:
		if _, err = s.CloseShift(ctx); err == nil {
			cur, err = s.OpenShift(ctx)
		}
	}
	return cur, act, err
}

// Timing is how a backend calls its provider and waits for a receipt. A
// zero field gets the backend's default.
type Timing struct {
	CallTimeout time.Duration // one HTTP call
	Wait        time.Duration // how long a call waits for its receipt before Pending
	PollFirst   time.Duration // the first pause between polls; each next is 1.5 times longer…
	PollMax     time.Duration // …up to this
	MaxAttempts int           // attempt ids one receipt may use
}

// Or returns t with its zero fields taken from defaults, and PollMax at
// least PollFirst.
func (t Timing) Or(defaults Timing) Timing {
	if t.CallTimeout <= 0 {
		t.CallTimeout = defaults.CallTimeout
	}
	if t.Wait <= 0 {
		t.Wait = defaults.Wait
	}
	if t.PollFirst <= 0 {
		t.PollFirst = defaults.PollFirst
	}
	if t.PollMax <= 0 {
		t.PollMax = defaults.PollMax
	}
	t.PollMax = max(t.PollMax, t.PollFirst)
	if t.MaxAttempts <= 0 {
		t.MaxAttempts = defaults.MaxAttempts
	}
	return t
}
