package hidreport

import (
	"encoding/base64"
	"fmt"
	"math/rand"
)

// paymentQR returns a payment QR payload of exactly n bytes (n ≥ 80): the
// seed's JSON shape with base64 fields of pseudo-random bytes.
func paymentQR(n int) []byte {
	rng := rand.New(rand.NewSource(int64(n)))
	raw := make([]byte, n)
	rng.Read(raw)
	enc := base64.StdEncoding.EncodeToString(raw)
	head := `{"id_loyalty":"7712345","encrypted":"`
	mid := `","sign":"`
	tail := `"}`
	free := n - len(head) - len(mid) - len(tail)
	e, s := enc[:free*2/3], enc[len(enc)-(free-free*2/3):]
	out := []byte(head + e + mid + s + tail)
	if len(out) != n {
		panic(fmt.Sprintf("paymentQR: %d bytes, want %d", len(out), n))
	}
	return out
}

// posReports cuts payload into 56-byte chunks and lays each out in a 64-byte
// report by fill: id 0x02 and count at bytes 0 and 1, "more follows" at 63.
func posReports(payload []byte, fill func(r, chunk []byte)) [][]byte {
	var out [][]byte
	for off := 0; ; off += 56 {
		chunk := payload[off:min(off+56, len(payload))]
		r := make([]byte, 64)
		r[0], r[1] = 0x02, byte(len(chunk))
		fill(r, chunk)
		if off+56 < len(payload) {
			r[63] = 0x01
		}
		out = append(out, r)
		if off+56 >= len(payload) {
			return out
		}
	}
}

// honeywellReports lays payload out in Honeywell HID POS reports as
// HARDWARE.md describes them: AIM at 2–4 (zeros when aim is ""), 56 data
// bytes, code id at 61; withID false drops the report id byte.
func honeywellReports(payload []byte, aim string, codeID byte, withID bool) [][]byte {
	out := posReports(payload, func(r, chunk []byte) {
		copy(r[2:5], aim)
		copy(r[5:61], chunk)
		r[61] = codeID
	})
	if !withID {
		for i, r := range out {
			out[i] = r[1:]
		}
	}
	return out
}

// newlandReports lays payload out in Newland reports: no AIM field, data at
// 2–57, code id at 62.
func newlandReports(payload []byte, codeID byte) [][]byte {
	return posReports(payload, func(r, chunk []byte) {
		copy(r[2:58], chunk)
		r[62] = codeID
	})
}

// kb is one key press for keyboard tests: modifiers and usage.
type kb struct{ mods, usage byte }

// keyReports turns presses into boot keyboard reports, each press followed
// by an all-keys-up report, as most scanners send them.
func keyReports(keys ...kb) [][]byte {
	var out [][]byte
	for _, k := range keys {
		out = append(out, []byte{k.mods, 0, k.usage, 0, 0, 0, 0, 0})
		out = append(out, []byte{k.mods, 0, 0, 0, 0, 0, 0, 0})
	}
	return append(out, make([]byte, 8))
}

// feedAll runs reports through a fresh decoder and returns the text.
func feedAll(layout string, reports [][]byte) (string, *Keyboard, error) {
	k, err := NewKeyboard(layout)
	if err != nil {
		return "", nil, err
	}
	var out []byte
	for _, r := range reports {
		out, err = k.Feed(out, r)
		if err != nil {
			return string(out), k, err
		}
	}
	return string(out), k, nil
}

// typer plays a scanner configured for a layout: for each character it finds
// the key and modifiers that type it. It searches the layout table, so it is
// used for round trips of long payloads; the per-layout tests below use
// hand-written key codes from HARDWARE.md instead.
func typer(layoutName string, s string) []kb {
	l, err := LayoutByName(layoutName)
	if err != nil {
		panic(err)
	}
	var keys []kb
	for _, c := range s {
		found := false
		for u := 0; u < 256 && !found; u++ {
			kd := l.keys[u]
			switch {
			case c == '\r':
				keys, found = append(keys, kb{0, usageEnter}), true
			case kd.base == c && kd.dead&deadBase == 0:
				keys, found = append(keys, kb{0, byte(u)}), true
			case kd.shift == c && kd.dead&deadShift == 0:
				keys, found = append(keys, kb{modLShift, byte(u)}), true
			case kd.altgr == c && kd.dead&deadAltGr == 0:
				keys, found = append(keys, kb{modRAlt, byte(u)}), true
			}
		}
		if !found {
			panic(fmt.Sprintf("typer: %q has no key on %s", c, layoutName))
		}
	}
	return keys
}
