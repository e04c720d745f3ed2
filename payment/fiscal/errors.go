package fiscal

import (
	"errors"
	"fmt"
	"strings"
)

// Kind is the one verdict a backend gives on a failed call; callers branch
// on it, not on HTTP statuses or backend codes.
type Kind uint8

// Kinds of failure.
const (
	// Unreachable: no usable answer (connection refused, timeout, 5xx). The
	// receipt may or may not exist: call again with the same Receipt.ID.
	Unreachable Kind = iota + 1
	// Pending: the backend took the receipt but has not finished it within
	// the wait (or its result is unknown until the ККТ is back). Call again
	// with the same Receipt.ID later; give up only by the caller's policy.
	Pending
	// Refused: the ККТ or the cloud said no, with its Code and Text (an FN
	// fault, a validation error, bad credentials). No document was made.
	// Calling again with the same ID tries anew under the next attempt id;
	// it helps only once the cause is fixed.
	Refused
	// Malformed: an answer we do not understand, or a confirmation without
	// a fiscal field we need (the fiscal sign…). Never forward its data;
	// log it and call again later with the same Receipt.ID.
	Malformed
	// ShiftExpired: the ККТ's shift is older than 24 h. Close and open it
	// (RenewShift), then call again with the same Receipt.ID.
	ShiftExpired
)

// Sentinels for errors.Is, one per Kind.
var (
	ErrUnreachable  = errors.New("fiscal: provider unreachable")
	ErrPending      = errors.New("fiscal: receipt not complete yet")
	ErrRefused      = errors.New("fiscal: refused by the kassa")
	ErrMalformed    = errors.New("fiscal: malformed answer")
	ErrShiftExpired = errors.New("fiscal: shift expired")
)

func (k Kind) sentinel() error {
	switch k {
	case Unreachable:
		return ErrUnreachable
	case Pending:
		return ErrPending
	case Refused:
		return ErrRefused
	case Malformed:
		return ErrMalformed
	case ShiftExpired:
		return ErrShiftExpired
	}
	return nil
}

// String names the kind for logs and metrics labels.
func (k Kind) String() string {
	switch k {
	case Unreachable:
		return "unreachable"
	case Pending:
		return "pending"
	case Refused:
		return "refused"
	case Malformed:
		return "malformed"
	case ShiftExpired:
		return "shift_expired"
	}
	return "unknown"
}

// Error is every failure a backend returns.
type Error struct {
	Kind     Kind
	Provider string // the backend package: "atol", "atolonline"
	Op       string // "sell", "sellReturn", "openShift", "getToken"…
	ID       string // the attempt id the call was about, if any
	Code     int    // the ККТ's or the cloud's error code (Refused, ShiftExpired)
	Text     string // their text, or what was wrong with the answer and the fix
	FN       bool   // the fault is in the fiscal storage (ФН) itself
	Err      error  // the underlying cause, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Provider)
	b.WriteString(": ")
	b.WriteString(e.Op)
	if e.ID != "" {
		b.WriteString(" ")
		b.WriteString(e.ID)
	}
	b.WriteString(": ")
	b.WriteString(e.Kind.String())
	if e.Code != 0 {
		fmt.Fprintf(&b, " (code %d)", e.Code)
	}
	if e.Text != "" {
		b.WriteString(": ")
		b.WriteString(e.Text)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is matches the sentinel of the error's kind.
func (e *Error) Is(target error) bool { return target != nil && target == e.Kind.sentinel() }

// KindOf returns the Kind carried by err, or 0 when err is nil or not from
// a backend.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// Definite reports whether err says for sure that no document was made
// (Refused, ShiftExpired): only then may a later call move to the next
// attempt id.
func Definite(err error) bool {
	k := KindOf(err)
	return k == Refused || k == ShiftExpired
}
