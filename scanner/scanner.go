// Package scanner defines what a barcode scanner driver is and how the agent
// consumes it: drivers (scanner/serial, scanner/hid, scanner/usb) decode frames
// into Codes; one Supervisor owns opening, reading, reopening and duplicate
// suppression for all of them.
package scanner

import (
	"context"
	"time"
)

// Code is one decoded barcode as read from a scanner.
type Code struct {
	Data      []byte    // payload with prefixes, AIM id and terminators stripped
	Source    string    // name of the scanner in devices.yaml
	Time      time.Time // when the last byte of the frame arrived
	Symbology string    // "qr", "ean13", … when the scanner tells; empty otherwise
}

// Handler receives what scanners read. Both methods are called from the
// reading goroutine and must return quickly: a slow handler delays the scan.
type Handler interface {
	// FrameStarted reports the first byte (or report) of a new frame, so the
	// payment flow can make its connection ready while the rest is on the wire.
	FrameStarted(source string, at time.Time)
	// CodeRead reports a finished frame.
	CodeRead(Code)
}

// Scanner is an open scanner device.
type Scanner interface {
	// Read reads frames until ctx ends or the device fails, reporting each
	// frame start and finished code to h. It returns ctx.Err() when ctx ends
	// and a wrapped error (ErrClosed, an I/O error…) when the device is gone.
	Read(ctx context.Context, h Handler) error
	// Close releases the device. It is safe to call more than once.
	Close() error
}
