package usb

import "errors"

// ErrUnsupported is returned by Settings.Opener in a build without cgo (nocgo.go); a
// cgo build never returns it.
var ErrUnsupported = errors.New("scanner/usb: this kioskd was built without USB support; build it with CGO_ENABLED=1 (and libusb-1.0-0-dev)")
