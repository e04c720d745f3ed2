package hidreport

import (
	"testing"
	"unicode/utf8"

	"github.com/kioskd/kioskd/scanner/internal/hidtest"
)

// FuzzPOS feeds arbitrary bytes as a sequence of 64- or 63-byte reports in
// both formats: no panic, bounded buffer, bounded and well-formed results.
func FuzzPOS(f *testing.F) {
	for _, rs := range [][][]byte{
		hidtest.Honeywell(paymentQR(500), "]Q1", 's', true),
		hidtest.Honeywell(paymentQR(120), "", 's', false),
		hidtest.Newland(paymentQR(200), 'Q'),
	} {
		var seed []byte
		for _, r := range rs {
			seed = append(seed, r...)
		}
		f.Add(seed, uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		cfg := POSConfig{Format: POSFormat(mode & 1), IDMode: ReportIDMode((mode >> 1) % 3), MaxPayload: 512}
		size := 64
		if mode&0x80 != 0 {
			size = 63
		}
		d := NewPOS(cfg)
		for len(data) > 0 {
			n := min(size, len(data))
			res, _ := d.Feed(data[:n])
			data = data[n:]
			if len(res.Data) > cfg.MaxPayload {
				t.Fatalf("payload %d > bound", len(res.Data))
			}
			if res.Done && d.Pending() {
				t.Fatal("done but pending")
			}
			if cap(d.buf) > 2*cfg.MaxPayload+posReportLen {
				t.Fatalf("buffer capacity %d", cap(d.buf))
			}
		}
	})
}

// FuzzKeyboard feeds arbitrary bytes as 8-byte boot reports on every layout:
// no panic, valid UTF-8 out, a bounded amount of text per report and a
// bounded stroke record; Check never panics on what came out.
func FuzzKeyboard(f *testing.F) {
	for _, name := range LayoutNames() {
		var seed []byte
		for _, r := range hidtest.KeyReports(typer(name, `{"id_loyalty":"1","sign":"QUJD"}`+"\r")...) {
			seed = append(seed, r...)
		}
		f.Add(seed, uint8(0))
	}
	f.Add([]byte{4, 0, 0x62, 0, 0, 0, 0, 0, 4, 0, 0x5a, 0x61, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, layout uint8) {
		names := LayoutNames()
		k, err := NewKeyboard(names[int(layout)%len(names)])
		if err != nil {
			t.Fatal(err)
		}
		var out []byte
		for len(data) > 0 {
			n := min(8, len(data))
			before := len(out)
			out, _ = k.Feed(out, data[:n])
			data = data[n:]
			// At most 6 new keys, a pending dead key and an Alt code.
			if len(out)-before > 8*utf8.UTFMax {
				t.Fatalf("one report typed %d bytes", len(out)-before)
			}
			if len(k.cur) > maxStrokes || len(k.last) > maxStrokes {
				t.Fatal("stroke record unbounded")
			}
		}
		if !utf8.Valid(out) {
			t.Fatalf("invalid UTF-8 %q", out)
		}
		_ = k.Check(out)
	})
}
