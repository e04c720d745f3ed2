package hidreport

import "testing"

// BenchmarkPOSReport measures decoding one report of a 500-byte QR spread
// over 9 Honeywell reports; ns/op is per report.
func BenchmarkPOSReport(b *testing.B) {
	rs := honeywellReports(paymentQR(500), "]Q1", 's', true)
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
			rs := keyReports(typer(name, string(paymentQR(500))+"\r")...)
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
