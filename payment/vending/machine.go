package vending

import (
	"context"
	"errors"
	"fmt"
)

// Machine is a vending machine as its cashless payment device sees it. It is
// what the payment flow's vending host drives; package qibixx implements it.
//
// Next must be called continuously (the machine's events queue up behind it).
// Approve, Deny and Status may be called from any goroutine.
type Machine interface {
	// Next returns the next event, waiting until there is one or ctx ends.
	Next(ctx context.Context) (Event, error)
	// Approve approves vend request id for amount kopecks. amount must be
	// the request's Amount: anything else is refused with ErrAmountMismatch
	// and nothing is sent. A request that is no longer pending (cancelled,
	// replaced, already answered) is refused with ErrNotPending.
	Approve(ctx context.Context, id uint64, amount int64) error
	// Deny denies vend request id; the VMC ends the selection. A request
	// already approved cannot be denied (ErrApproved).
	Deny(ctx context.Context, id uint64) error
	// Status returns the adapter's and the reader's state.
	Status() Status
}

// Displayer is a Machine that can show a short text on the vending machine's
// own display (an MDB display request; not every VMC honours it).
type Displayer interface {
	Display(ctx context.Context, text string) error
}

// Errors a caller can test with errors.Is.
var (
	ErrAdapterMissing      = errors.New("vending: MDB adapter missing; check its cable and the vending port in devices.yaml")
	ErrAdapterNotAnswering = errors.New("vending: MDB adapter not answering; power-cycle it if this lasts")
	ErrNotConfigured       = errors.New("vending: MDB adapter not configured yet")
	ErrReaderInactive      = errors.New("vending: the vending machine has not set the reader up yet; check the MDB cable and that the machine has cashless enabled")
	ErrDisabledByVMC       = errors.New("vending: the vending machine disabled the reader (service mode, or cashless switched off in its menu)")
	ErrNotPending          = errors.New("vending: no such vend request pending")
	ErrAmountMismatch      = errors.New("vending: amount differs from the price the machine asked for")
	ErrApproved            = errors.New("vending: vend already approved")
)

// AdapterState is the state of the link to the MDB adapter.
type AdapterState int

// Adapter states.
const (
	AdapterMissing      AdapterState = iota // the port cannot be opened or went away
	AdapterConfiguring                      // open; configuration in progress
	AdapterNotAnswering                     // open, but the adapter stopped answering
	AdapterReady                            // configured and answering
)

var adapterNames = [...]string{"missing", "configuring", "not_answering", "ready"}

// String returns the state's label.
func (s AdapterState) String() string { return label(adapterNames[:], s, "AdapterState") }

// ReaderState is the cashless reader's MDB state as the VMC drives it.
type ReaderState int

// Reader states (MDB/ICP 4.2 cashless device: Inactive → Disabled → Enabled
// → Session Idle → Vend).
const (
	ReaderUnknown     ReaderState = iota // not reported since the adapter was configured
	ReaderInactive                       // reset, not yet set up by the VMC
	ReaderDisabled                       // set up, but disabled by the VMC
	ReaderEnabled                        // ready for a selection
	ReaderSessionIdle                    // a session is open
	ReaderVend                           // a vend request is pending
)

var readerNames = [...]string{"unknown", "inactive", "disabled", "enabled", "session_idle", "vend"}

// String returns the state's label.
func (s ReaderState) String() string { return label(readerNames[:], s, "ReaderState") }

// label returns names[v], or type(v) for a value out of range.
func label[T ~int](names []string, v T, typ string) string {
	if v < 0 || int(v) >= len(names) {
		return fmt.Sprintf("%s(%d)", typ, int(v))
	}
	return names[v]
}

// Status is the adapter's and the reader's state.
type Status struct {
	Adapter AdapterState
	Reader  ReaderState
	// Err is why the adapter is not ready (the open error, the refused
	// configuration key…); nil when it is.
	Err error
}

// Problem returns nil when the machine can sell, or why not, for /healthz:
// an error wrapping ErrAdapterMissing, ErrAdapterNotAnswering,
// ErrNotConfigured, ErrReaderInactive or ErrDisabledByVMC.
func (s Status) Problem() error {
	withCause := func(sentinel error) error {
		if s.Err == nil {
			return sentinel
		}
		return fmt.Errorf("%w: %w", sentinel, s.Err)
	}
	switch s.Adapter {
	case AdapterMissing:
		return withCause(ErrAdapterMissing)
	case AdapterNotAnswering:
		return withCause(ErrAdapterNotAnswering)
	case AdapterConfiguring:
		return withCause(ErrNotConfigured)
	}
	switch s.Reader {
	case ReaderUnknown, ReaderInactive:
		return ErrReaderInactive
	case ReaderDisabled:
		return ErrDisabledByVMC
	}
	return nil
}

// Product is one entry of a machine's catalogue.
type Product struct {
	Name string // shown to the customer and printed on the fiscal receipt
	// Price in kopecks; when set, a vend request for the item at another
	// price is denied (a misprogrammed machine). 0 accepts the VMC's price.
	Price int64
}

// Catalogue maps the VMC's item numbers to products.
type Catalogue map[int]Product
