package payment

import (
	"errors"
	"fmt"
)

// Errors of host operations; each adapter (the local API, the vending
// bridge) maps them to its own answers.
var (
	// ErrWrongState: the operation does not fit the current sale's state.
	ErrWrongState = errors.New("payment: not allowed in the current state")
	// ErrInvalid: a parameter is out of range.
	ErrInvalid = errors.New("payment: invalid request")
	// ErrNotRunning: the flow has not started, is still recovering the
	// journal's open records, or has stopped. Ask again later.
	ErrNotRunning = errors.New("payment: flow not running")
	// ErrTimeout: the operation was accepted but its outcome was not known
	// within the caller's deadline (e.g. a hand-over not yet journaled).
	// Ask the state before repeating it.
	ErrTimeout = errors.New("payment: no outcome in time")
	// ErrNotFound: no refund or purchase with that id.
	ErrNotFound = errors.New("payment: not found")
)

// ServiceError is a refusal by the service (its verdict is final), with
// the service's code and message.
type ServiceError struct {
	Code    int
	Message string
	Err     error // the client's error; nil for a refusal read back from the journal
}

// Error describes the refusal.
func (e *ServiceError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("payment: service refused: %v", e.Err)
	}
	return fmt.Sprintf("payment: service refused: code %d: %s", e.Code, e.Message)
}

// Unwrap returns the client's error.
func (e *ServiceError) Unwrap() error { return e.Err }
