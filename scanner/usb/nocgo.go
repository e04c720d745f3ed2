//go:build !cgo

package usb

import (
	"go.uber.org/zap"

	"github.com/kioskd/kioskd/scanner"
)

// Opener refuses in a build without cgo: libusb is a C library.
func (s Settings) Opener(string, *zap.Logger) (scanner.Opener, error) {
	return nil, ErrUnsupported
}
