//go:build !cgo

package usb

import (
	"errors"
	"testing"

	"github.com/kioskd/kioskd/scanner"
)

func TestWithoutCgo(t *testing.T) {
	_, err := New(scanner.Config{Name: "x", Driver: "usb", VID: 1, PID: 2, Interface: -1}, nil)
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("err %v", err)
	}
	_, err = New(scanner.Config{Name: "x", Driver: "usb", PID: 2, Interface: -1}, nil)
	if !errors.Is(err, scanner.ErrConfig) {
		t.Fatalf("config error first: %v", err)
	}
}
