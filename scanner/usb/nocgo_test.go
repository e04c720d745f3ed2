//go:build !cgo

package usb

import (
	"errors"
	"testing"

	"github.com/kioskd/kioskd/scanner/hidreport"
)

// Without cgo the settings still decode (so configuration problems show
// first); only opening refuses.
func TestWithoutCgo(t *testing.T) {
	if _, err := (Settings{hidreport.Defaults}).Opener("x", nil); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("err %v", err)
	}
}
