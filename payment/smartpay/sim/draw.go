package sim

import (
	"strings"

	"github.com/kioskd/kioskd/display"
)

// DrawQR draws payload as a QR code with Unicode half blocks, two modules per
// character cell, dark on light so phones and scanners read it off a screen
// (display.QRText).
func DrawQR(payload string) (string, error) {
	lines, err := display.QRText(payload)
	if err != nil {
		return "", err
	}
	return strings.Join(lines, "\n") + "\n", nil
}
