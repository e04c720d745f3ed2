package frame

// What a scanner sends before the payload. Every form here comes from a
// scanner set-up, not from the code's content:
//
//   - an AIM symbology identifier, "]" + code + modifier (ISO/IEC 15424;
//     every vendor's "AIM ID" option);
//   - a vendor code id, sent instead of or beside the AIM id (Honeywell
//     "Code I.D.", Newland "Code ID", Zebra "Symbol Code ID", Datalogic
//     "Label ID"). They are letters that could be data, so they are taken
//     for identifiers only right in front of a JSON object, where no data
//     can be;
//   - an ECI designator "\nnnnnn" when the scanner transmits the AIM ECI
//     protocol (QR modifiers 2, 4 and 6; Datalogic and Opticon have an
//     option for it), which also doubles every backslash of the data.

// qrCodeIDs are the vendor code ids of a QR code. They are the same ids
// scanner/hidreport reads from the HID POS report's code id byte.
var qrCodeIDs = [...]string{
	"s",   // Honeywell Code I.D.
	"Q",   // Newland Code ID
	"P01", // Zebra Symbol Code ID: QR Code, MicroQR
	"P0Q", // Zebra Symbol Code ID: GS1 QR
	"QR",  // Datalogic Label ID (its default; a label id is configurable)
}

// Bounds of the lead-in, so the Framer can hold it on its stack while it
// decides: AIM id 3, code id 3, ECI designator 7, then up to maxPad
// spaces and BOM bytes before the brace.
const (
	maxPad  = 8
	maxLead = 3 + 3 + 7 + maxPad + 1
	eciHeld = 7 // "\" and six digits
)

type leadKind int

const (
	leadUndecided leadKind = iota // more bytes are needed
	leadPlain                     // a payload that is not a JSON object
	leadJSON                      // a JSON object
)

// lead is what precedes the payload at the start of a frame.
type lead struct {
	kind leadKind
	skip int    // bytes of identifiers to strip
	aim  int    // offset of the AIM id, -1 when none
	code string // vendor code id, only before a JSON object
	eci  bool   // an ECI designator introduces the payload
}

// verdict of matching a pattern against the bytes so far.
type verdict int

const (
	noMatch verdict = iota
	needMore
	matched
)

// parseLead finds the identifiers at the start of b, the bytes of a frame
// so far (final: the frame has ended). In front of a JSON object it takes
// a vendor code id and an AIM id in either order (Newland sends
// code id + AIM id by default; Honeywell in the order configured), then an
// ECI designator; anywhere else only an AIM id is an identifier.
func parseLead(b []byte, final bool) lead {
	l, v := jsonLead(b, 0, -1, "", false)
	switch {
	case v == matched:
		l.kind = leadJSON
		return l
	case v == needMore && !final:
		return lead{kind: leadUndecided, aim: -1}
	}
	switch aimAt(b, 0) {
	case matched:
		return lead{kind: leadPlain, skip: 3, aim: 0}
	case needMore:
		if !final {
			return lead{kind: leadUndecided, aim: -1}
		}
	}
	return lead{kind: leadPlain, aim: -1}
}

// jsonLead matches b[i:] against the identifiers allowed before a JSON
// object and the object's opening brace; aim and code say which
// identifiers were taken already.
func jsonLead(b []byte, i, aim int, code string, eci bool) (lead, verdict) {
	best := noMatch
	if code == "" && !eci {
		for _, c := range qrCodeIDs {
			switch prefix(b[i:], c) {
			case matched:
				l, v := jsonLead(b, i+len(c), aim, c, false)
				if v == matched {
					return l, v
				}
				best = max(best, v)
			case needMore:
				best = needMore
			}
		}
	}
	if aim < 0 && !eci {
		switch aimAt(b, i) {
		case matched:
			l, v := jsonLead(b, i+3, i, code, false)
			if v == matched {
				return l, v
			}
			best = max(best, v)
		case needMore:
			best = needMore
		}
	}
	if !eci {
		switch eciAt(b, i) {
		case matched:
			l, v := jsonLead(b, i+eciHeld, aim, code, true)
			if v == matched {
				return l, v
			}
			best = max(best, v)
		case needMore:
			best = needMore
		}
	}
	switch brace(b[i:]) {
	case matched:
		return lead{skip: i, aim: aim, code: code, eci: eci}, matched
	case needMore:
		best = needMore
	}
	return lead{}, best
}

// brace matches up to maxPad bytes of spaces and UTF-8 BOMs (a
// generator's, left in the payload for the QR parser) and then "{".
func brace(b []byte) verdict {
	for i := 0; i < len(b); {
		switch {
		case b[i] == '{':
			return matched
		case b[i] == ' ' && i < maxPad:
			i++
		case b[i] == 0xEF && i+3 <= maxPad:
			if v := prefix(b[i:], "\xEF\xBB\xBF"); v != matched {
				return v
			}
			i += 3
		default:
			return noMatch
		}
	}
	return needMore
}

// prefix matches b against p: b starts with p, or b is a start of p.
func prefix(b []byte, p string) verdict {
	if len(b) >= len(p) {
		if string(b[:len(p)]) == p {
			return matched
		}
		return noMatch
	}
	if string(b) == p[:len(b)] {
		return needMore
	}
	return noMatch
}

// aimAt matches an AIM id, "]" + letter + letter or digit, at b[i:].
func aimAt(b []byte, i int) verdict {
	b = b[i:]
	switch {
	case len(b) == 0:
		return needMore
	case b[0] != ']':
		return noMatch
	case len(b) == 1:
		return needMore
	case !isLetter(b[1]):
		return noMatch
	case len(b) == 2:
		return needMore
	case isLetter(b[2]) || isDigit(b[2]):
		return matched
	}
	return noMatch
}

// eciAt matches an ECI designator, "\" and six digits, at b[i:].
func eciAt(b []byte, i int) verdict {
	b = b[i:]
	for j := range eciHeld {
		switch {
		case j == len(b):
			return needMore
		case j == 0 && b[j] != '\\', j > 0 && !isDigit(b[j]):
			return noMatch
		}
	}
	return matched
}

// eciModifier reports whether an AIM id says its data follows the ECI
// protocol: QR Code modifiers 2, 4 and 6 (ISO/IEC 18004 via the AIM tables
// of Honeywell and Zebra manuals).
func eciModifier(code, modifier byte) bool {
	return code == 'Q' && (modifier == '2' || modifier == '4' || modifier == '6')
}

// eciDecoder undoes the AIM ECI protocol on a byte stream: "\\" is one
// backslash of the data and "\nnnnnn" an ECI designator, which is dropped
// (the payloads we read are UTF-8 or ASCII either way). Anything else after
// a backslash is kept as sent.
type eciDecoder struct {
	held [eciHeld]byte
	n    int
}

// feed decodes c, appending what it yields to out.
func (d *eciDecoder) feed(c byte, out []byte) []byte {
	switch {
	case d.n == 0 && c == '\\':
		d.held[0], d.n = c, 1
	case d.n == 0:
		out = append(out, c)
	case d.n == 1 && c == '\\':
		out = append(out, c)
		d.n = 0
	case isDigit(c):
		d.held[d.n] = c
		d.n++
		if d.n == eciHeld {
			d.n = 0 // a whole designator
		}
	default:
		out = d.flush(out)
		return d.feed(c, out)
	}
	return out
}

// flush returns a partial escape as it was sent.
func (d *eciDecoder) flush(out []byte) []byte {
	out = append(out, d.held[:d.n]...)
	d.n = 0
	return out
}

// UndoECI is the Framer's ECI decoding for a payload that arrived whole
// with its AIM id apart (a HID POS report): when aim announces the ECI
// protocol, or a designator comes right before a JSON object, the escapes
// are undone in place and the shorter payload returned. Otherwise data is
// returned as it is.
func UndoECI(aim string, data []byte) []byte {
	lead := eciAt(data, 0) == matched && brace(data[eciHeld:]) == matched
	if !lead && (len(aim) != 3 || !eciModifier(aim[1], aim[2])) {
		return data
	}
	var d eciDecoder
	out := data[:0] // never longer than what it has read
	for _, c := range data {
		out = d.feed(c, out)
	}
	return d.flush(out)
}
