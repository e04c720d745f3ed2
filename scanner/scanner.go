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

// Config is one scanner entry of devices.yaml. Each driver reads the fields
// that concern it and rejects bad values in its Driver function, before any
// device is opened.
type Config struct {
	Name   string // unique name, used as Code.Source and in logs/metrics
	Driver string // "serial", "hid", "usb"

	// serial
	Port         string // /dev/kiosk/scanner0, /dev/serial/by-id/…, /dev/ttyACM0
	Baud         int    // 9600 when 0
	DataBits     int    // 8 when 0
	Parity       string // "none" (default), "even", "odd"
	StopBits     int    // 1 when 0
	HostCommands string // "", "honeywell", "datalogic", "zebra-ssi"

	// framing (all drivers that produce a byte stream)
	Framing string        // "auto" (default: CR, LF, CRLF, complete JSON, gap), "cr", "lf", "crlf", "gap"
	Gap     time.Duration // inter-character gap that ends a frame; 50ms when 0

	// hid and usb
	VID, PID  uint16
	Serial    string // USB serial number; empty matches any
	Interface int    // USB interface number; -1 matches any
	Mode      string // "pos" (HID POS, page 0x8C) or "keyboard" (boot keyboard)
	Layout    string // keyboard mode: "us" (default), "uk", "de", "fr"
	Report    string // pos mode: "honeywell" (default) or "newland"
}
