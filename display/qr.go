package display

import (
	"fmt"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// QRText draws text as a QR code in Unicode half blocks, two modules per
// character row, light modules as full blocks, so that on a terminal's dark
// background the code is dark on light, quiet zone included, as phones
// read it off a screen. Recovery level L keeps a receipt's QR string
// (about 70 bytes: version 4, 33 modules) within 41 columns.
func QRText(text string) ([]string, error) {
	q, err := qrcode.New(text, qrcode.Low)
	if err != nil {
		return nil, fmt.Errorf("display: QR code: %w", err)
	}
	bm := q.Bitmap() // includes the quiet zone; true = dark
	lines := make([]string, 0, (len(bm)+1)/2)
	var b strings.Builder
	for y := 0; y < len(bm); y += 2 {
		b.Reset()
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
		lines = append(lines, b.String())
	}
	return lines, nil
}

// QRPNG draws text as a QR code PNG of size×size pixels (quiet zone
// included), at recovery level M: a phone camera reads it off a kiosk
// screen at an angle.
func QRPNG(text string, size int) ([]byte, error) {
	png, err := qrcode.Encode(text, qrcode.Medium, size)
	if err != nil {
		return nil, fmt.Errorf("display: QR code: %w", err)
	}
	return png, nil
}
