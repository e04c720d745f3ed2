package sim

import (
	"fmt"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// DrawQR draws payload as a QR code with Unicode half blocks, two modules per
// character cell, dark on light so phones and scanners read it off a screen.
func DrawQR(payload string) (string, error) {
	q, err := qrcode.New(payload, qrcode.Low)
	if err != nil {
		return "", fmt.Errorf("sim: draw QR: %w", err)
	}
	bm := q.Bitmap() // includes the quiet zone; true = dark
	var b strings.Builder
	for y := 0; y < len(bm); y += 2 {
		for x := range bm[y] {
			top := bm[y][x]
			bottom := y+1 < len(bm) && bm[y+1][x]
			switch {
			case top && bottom:
				b.WriteString(" ")
			case top:
				b.WriteString("▄")
			case bottom:
				b.WriteString("▀")
			default:
				b.WriteString("█")
			}
		}
		b.WriteString("\n")
	}
	return b.String(), nil
}
