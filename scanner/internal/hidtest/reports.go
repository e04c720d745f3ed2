package hidtest

// POSReports cuts payload into 56-byte chunks and lays each out in a
// 64-byte report by fill: report id 0x02 and the chunk's length at bytes 0
// and 1, "more follows" at byte 63.
func POSReports(payload []byte, fill func(r, chunk []byte)) [][]byte {
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

// Honeywell lays payload out in Honeywell HID POS reports as HARDWARE.md
// describes them: AIM at 2–4 (zeros when aim is ""), 56 data bytes, code
// id at 61; withID false drops the report id byte.
func Honeywell(payload []byte, aim string, codeID byte, withID bool) [][]byte {
	out := POSReports(payload, func(r, chunk []byte) {
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

// Newland lays payload out in Newland reports: no AIM field, data at 2–57,
// code id at 62.
func Newland(payload []byte, codeID byte) [][]byte {
	return POSReports(payload, func(r, chunk []byte) {
		copy(r[2:58], chunk)
		r[62] = codeID
	})
}

// WithZLPs follows each report with a zero-length packet (nil), as a full
// 64-byte interrupt transfer is on the wire.
func WithZLPs(reports [][]byte) [][]byte {
	var out [][]byte
	for _, r := range reports {
		out = append(out, r, nil)
	}
	return out
}

// Key is one key press of a keyboard-mode scanner: the modifier byte, then
// the usage (an array, so tables of presses stay short).
type Key [2]byte

// Mods is the press's modifier byte.
func (k Key) Mods() byte { return k[0] }

// Usage is the key's usage.
func (k Key) Usage() byte { return k[1] }

// KeyReports turns presses into boot keyboard reports, each press followed
// by a report with the keys up (the modifiers still held), as most
// scanners send them, and a last report with everything up.
func KeyReports(keys ...Key) [][]byte {
	var out [][]byte
	for _, k := range keys {
		out = append(out, []byte{k.Mods(), 0, k.Usage(), 0, 0, 0, 0, 0})
		out = append(out, []byte{k.Mods(), 0, 0, 0, 0, 0, 0, 0})
	}
	return append(out, make([]byte, 8))
}

// Keys are presses of usages without modifiers.
func Keys(usages ...byte) []Key {
	keys := make([]Key, len(usages))
	for i, u := range usages {
		keys[i] = Key{0, u}
	}
	return keys
}
