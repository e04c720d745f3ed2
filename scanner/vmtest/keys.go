package vmtest

import "fmt"

// KeyStroke is one key press on a US keyboard: a QEMU qcode and whether Shift
// is held for it.
type KeyStroke struct {
	QCode string
	Shift bool
}

// usShifted maps the shifted US-layout characters to their unshifted key.
var usShifted = map[rune]string{
	'{': "bracket_left", '}': "bracket_right", '"': "apostrophe", ':': "semicolon",
	'+': "equal", '_': "minus", '?': "slash", '<': "comma", '>': "dot", '!': "1",
	'@': "2", '#': "3", '$': "4", '%': "5", '^': "6", '&': "7", '*': "8", '(': "9",
	')': "0", '|': "backslash", '~': "grave_accent",
}

var usPlain = map[rune]string{
	'[': "bracket_left", ']': "bracket_right", '\'': "apostrophe", ';': "semicolon",
	'=': "equal", '-': "minus", '/': "slash", ',': "comma", '.': "dot", ' ': "spc",
	'\\': "backslash", '`': "grave_accent", '\r': "ret", '\n': "ret", '\t': "tab",
}

// USKeyStrokes turns text into the key strokes a US-layout keyboard-wedge
// scanner would send: Shift for capitals and for { } " : and friends.
func USKeyStrokes(text string) ([]KeyStroke, error) {
	out := make([]KeyStroke, 0, len(text))
	for i, r := range text {
		switch {
		case r >= 'a' && r <= 'z':
			out = append(out, KeyStroke{QCode: string(r)})
		case r >= 'A' && r <= 'Z':
			out = append(out, KeyStroke{QCode: string(r - 'A' + 'a'), Shift: true})
		case r >= '0' && r <= '9':
			out = append(out, KeyStroke{QCode: string(r)})
		default:
			if q, ok := usPlain[r]; ok {
				out = append(out, KeyStroke{QCode: q})
			} else if q, ok := usShifted[r]; ok {
				out = append(out, KeyStroke{QCode: q, Shift: true})
			} else {
				return nil, fmt.Errorf("vmtest: character %q at %d has no US key", r, i)
			}
		}
	}
	return out, nil
}

// InputEventGroups turns strokes into QMP input-send-event "events" lists,
// one per stroke. Shift stays down across consecutive shifted strokes, as a
// scanner's firmware does, and is released at the end.
func InputEventGroups(ks []KeyStroke) [][]any {
	key := func(q string, down bool) any {
		return map[string]any{"type": "key", "data": map[string]any{
			"down": down, "key": map[string]any{"type": "qcode", "data": q}}}
	}
	var out [][]any
	shift := false
	for _, k := range ks {
		var ev []any
		if k.Shift != shift {
			ev = append(ev, key("shift", k.Shift))
			shift = k.Shift
		}
		out = append(out, append(ev, key(k.QCode, true), key(k.QCode, false)))
	}
	if shift {
		out = append(out, []any{key("shift", false)})
	}
	return out
}
