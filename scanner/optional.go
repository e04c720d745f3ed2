package scanner

import "context"

// Beeper is implemented by scanners that can sound their beeper on the host's
// request, so the customer hears whether the code was accepted. A scanner
// that cannot make a sound for one of them returns an error wrapping
// errors.ErrUnsupported.
type Beeper interface {
	// GoodRead sounds the good-read beep.
	GoodRead(ctx context.Context) error
	// BadRead sounds the error beep.
	BadRead(ctx context.Context) error
}

// Enabler is implemented by scanners whose scanning the host can switch on
// and off, e.g. while a payment is in progress.
type Enabler interface {
	// Enable switches scanning on (true) or off (false).
	Enable(ctx context.Context, on bool) error
}
