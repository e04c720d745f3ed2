//go:build !cgo

package usb

import (
	"go.uber.org/zap"

	"github.com/kioskd/kioskd/scanner"
	"github.com/kioskd/kioskd/scanner/hidreport"
)

func init() { scanner.Register("usb", New) }

// New is the "usb" scanner.Driver of a build without cgo: it validates cfg
// and then refuses, so the configuration error is still shown first.
func New(cfg scanner.Config, _ *zap.Logger) (scanner.Opener, error) {
	if _, err := hidreport.ParseConfig(cfg); err != nil {
		return nil, err
	}
	return nil, ErrUnsupported
}
