package frame

import (
	"bytes"
	"testing"
	"time"
)

// FuzzFramer checks, on any input, that the Framer never panics, never
// returns an empty, oversize or control-character frame, never grows its
// buffer, and finds the same frames however the input is split into reads.
func FuzzFramer(f *testing.F) {
	f.Add([]byte("]Q1"+qr+"\r\n"), uint8(0), uint8(1))
	f.Add([]byte("abc\r\ndef\n{\"a\":\"}\\\"\"}\r"), uint8(0), uint8(3))
	f.Add([]byte("a\rb\r\nc"), uint8(3), uint8(2))
	// Scanner set-ups around a JSON payload: code ids, ECI, suffixes, BOM.
	f.Add([]byte("Q]Q1"+qr+"QR\r\n"), uint8(0), uint8(2))
	f.Add([]byte("]Q2\\000026{\"a\":\"\\\\\\\"}\"}\r"), uint8(0), uint8(4))
	f.Add([]byte("\\000026{\"a\":1}P01{\"b\":2}END\r"), uint8(0), uint8(3))
	f.Add([]byte("\xEF\xBB\xBF {\r\n\"a\": 1\r\n}\r\n"), uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, mode, split uint8) {
		cfg := Config{Mode: Mode(mode % 5), MaxSize: 64}
		whole := New(cfg)
		rw := &recorder{}
		whole.Feed(data, t0, rw)
		whole.Expire(t0.Add(time.Hour), rw)

		parts := New(cfg)
		rp := &recorder{}
		step := int(split%16) + 1
		for i := 0; i < len(data); i += step {
			parts.Feed(data[i:min(i+step, len(data))], t0, rp)
		}
		parts.Expire(t0.Add(time.Hour), rp)

		if len(rw.frames) != len(rp.frames) || len(rw.starts) != len(rp.starts) {
			t.Fatalf("split changed the result: %q vs %q", rw.data(), rp.data())
		}
		for i, fr := range rw.frames {
			if !bytes.Equal(fr.Data, rp.frames[i].Data) || fr.By != rp.frames[i].By || fr.AIM != rp.frames[i].AIM {
				t.Fatalf("frame %d differs: %+v vs %+v", i, fr, rp.frames[i])
			}
			if len(fr.Data) == 0 || len(fr.Data) > cfg.MaxSize {
				t.Fatalf("frame %d has %d bytes", i, len(fr.Data))
			}
			for _, b := range fr.Data {
				if isControl(b) {
					t.Fatalf("frame %d keeps control byte %#x", i, b)
				}
			}
		}
		if len(rw.starts) < len(rw.frames) {
			t.Fatalf("%d frames but %d starts", len(rw.frames), len(rw.starts))
		}
		if cap(whole.buf) != cfg.MaxSize || cap(parts.buf) != cfg.MaxSize {
			t.Fatalf("buffer grew to %d/%d", cap(whole.buf), cap(parts.buf))
		}
		if _, ok := whole.Deadline(); ok {
			t.Fatal("frame still open after the gap")
		}
	})
}
