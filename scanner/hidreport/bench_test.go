package hidreport

import (
	"testing"
	"time"

	"github.com/kioskd/kioskd/scanner"
	"github.com/kioskd/kioskd/scanner/internal/hidtest"
)

// BenchmarkPOSReport measures decoding one report of a 500-byte QR spread
// over 9 Honeywell reports; ns/op is per report.
func BenchmarkPOSReport(b *testing.B) {
	rs := hidtest.Honeywell(paymentQR(500), "]Q1", 's', true)
	d := NewPOS(POSConfig{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := d.Feed(rs[i%len(rs)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKeyboardReport measures decoding one boot keyboard report while a
// 500-byte QR is typed (press and release reports); ns/op is per report.
func BenchmarkKeyboardReport(b *testing.B) {
	for _, name := range []string{"us", "de"} {
		b.Run(name, func(b *testing.B) {
			rs := hidtest.KeyReports(typer(name, string(paymentQR(500))+"\r")...)
			k, _ := NewKeyboard(name)
			out := make([]byte, 0, 1024)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				r := rs[i%len(rs)]
				if i%len(rs) == 0 {
					out = out[:0]
				}
				var err error
				if out, err = k.Feed(out, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// countHandler counts what a Session delivers.
type countHandler struct{ starts, codes int }

func (c *countHandler) FrameStarted(string, time.Time) { c.starts++ }
func (c *countHandler) CodeRead(scanner.Code)          { c.codes++ }

// BenchmarkSessionFrame measures a whole 500-byte payment QR from its first
// report to the delivered Code (decoder, framer in keyboard mode, JSON and
// layout check); ns/op is per QR, and ns/report is reported too.
func BenchmarkSessionFrame(b *testing.B) {
	qr := paymentQR(500)
	for _, tc := range []struct {
		name    string
		set     Settings
		reports [][]byte
	}{
		{"pos", Settings{Name: "b"}, hidtest.Honeywell(qr, "]Q1", 's', true)},
		{"keyboard-us", Settings{Name: "b", Mode: KeyboardMode, Layout: "us"}, hidtest.KeyReports(typer("us", string(qr)+"\r")...)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := NewSession(tc.set, nil)
			var h countHandler
			at := time.Unix(0, 0)
			b.ReportAllocs()
			for b.Loop() {
				for _, r := range tc.reports {
					s.Report(r, at, &h)
				}
			}
			if h.codes == 0 {
				b.Fatal("no code delivered")
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(tc.reports)), "ns/report")
		})
	}
}
