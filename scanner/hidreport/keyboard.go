package hidreport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// Boot keyboard modifier bits (byte 0 of the report).
const (
	modLCtrl  = 0x01
	modLShift = 0x02
	modLAlt   = 0x04
	modRCtrl  = 0x10
	modRShift = 0x20
	modRAlt   = 0x40 // AltGr on layouts that have one
)

// maxStrokes bounds the keystrokes kept for the layout hint: a payment QR is
// at most a few hundred characters, each at most a few strokes.
const maxStrokes = 8192

// stroke is one key-down edge with the modifiers held at that moment.
type stroke struct {
	usage, mods byte
}

// Keyboard decodes boot keyboard reports into the text a host with Layout
// would have typed. Enter and keypad Enter become CR, so the output feeds the
// scanner/frame framer as if it came from a serial line. It is not safe for
// concurrent use.
type Keyboard struct {
	layout *Layout
	prev   [6]byte // keys down in the previous report
	nprev  int
	mods   byte // modifiers of the previous report
	caps   bool
	dead   rune   // pending dead accent
	alt    []byte // keypad digits typed while Alt is held (Alt codes)

	// The strokes of the current line and of the line before it, so Check
	// can decode a suspicious frame again with other layouts.
	cur, last         []stroke
	curCaps, lastCaps bool
	curFull, lastFull bool
}

// NewKeyboard returns a decoder for the named layout ("" = "us").
func NewKeyboard(layout string) (*Keyboard, error) {
	l, err := LayoutByName(layout)
	if err != nil {
		return nil, err
	}
	return &Keyboard{layout: l}, nil
}

// Layout returns the decoder's layout.
func (k *Keyboard) Layout() *Layout { return k.layout }

// CapsLock reports whether the decoder believes Caps Lock is on.
func (k *Keyboard) CapsLock() bool { return k.caps }

// Reset forgets held keys, Caps Lock and partial input, e.g. after the device
// was reopened (the scanner starts with Caps Lock off).
func (k *Keyboard) Reset() {
	*k = Keyboard{layout: k.layout, cur: k.cur[:0], last: k.last[:0]}
}

// Feed decodes one report and appends what it typed (UTF-8) to dst. A report
// needs at least the modifier byte, the reserved byte and one key code;
// longer reports than 8 bytes are read as 8. Zero-length reports are skipped.
// A phantom report (ErrorRollOver in the key slots) changes nothing.
func (k *Keyboard) Feed(dst, report []byte) ([]byte, error) {
	if len(report) == 0 {
		return dst, nil
	}
	if len(report) < 3 {
		return dst, fmt.Errorf("%w: keyboard report of %d bytes", ErrMalformed, len(report))
	}
	if len(report) > 8 {
		report = report[:8]
	}
	keys := report[2:]
	for _, u := range keys {
		if u == usageErrRollOver {
			return dst, nil
		}
	}
	mods := report[0]

	// Alt released after keypad digits: the host types the Alt code.
	if k.mods&modLAlt != 0 && mods&modLAlt == 0 && len(k.alt) > 0 {
		dst = k.emit(dst, altCode(k.alt))
		k.alt = k.alt[:0]
	}

	var now [6]byte
	n := 0
	for _, u := range keys {
		if u == 0 {
			continue
		}
		now[n] = u
		n++
		if k.wasDown(u) {
			continue // held across reports: typed once
		}
		k.record(u, mods)
		dst = k.press(dst, u, mods)
	}
	k.prev, k.nprev, k.mods = now, n, mods
	return dst, nil
}

func (k *Keyboard) wasDown(u byte) bool {
	for _, p := range k.prev[:k.nprev] {
		if p == u {
			return true
		}
	}
	return false
}

func (k *Keyboard) record(u, mods byte) {
	if len(k.cur) >= maxStrokes {
		k.curFull = true
		return
	}
	if len(k.cur) == 0 {
		k.curCaps = k.caps
	}
	k.cur = append(k.cur, stroke{usage: u, mods: mods})
}

// press handles one key-down edge.
func (k *Keyboard) press(dst []byte, u, mods byte) []byte {
	switch {
	case u == usageCapsLock:
		k.caps = !k.caps
		return dst
	case u == usageEnter || u == usageKPEnter:
		dst = k.flushDead(dst)
		k.cur, k.last = k.last[:0], k.cur
		k.lastCaps, k.lastFull = k.curCaps, k.curFull
		k.curFull = false
		return append(dst, '\r')
	case u >= usageKPSlash && u <= usageKPDecimal:
		c := keypadRune(u, k.layout)
		if mods&modLAlt != 0 && c >= '0' && c <= '9' {
			if len(k.alt) < 4 {
				k.alt = append(k.alt, byte(c))
			}
			return dst
		}
		return k.emit(dst, c)
	}
	c, dead := k.layout.typed(u, mods, k.caps)
	if c == 0 {
		return dst
	}
	if mods&(modLCtrl|modRCtrl) != 0 && !altGr(mods) {
		if up := unicode.ToUpper(c); up >= '@' && up <= '_' {
			return k.emit(dst, up-'@') // Ctrl+] types GS, as GS1 codes need
		}
		return dst
	}
	if dead {
		if k.dead != 0 {
			dst = k.flushDead(dst)
		}
		k.dead = c
		return dst
	}
	return k.emit(dst, c)
}

// emit appends c, combining a pending dead accent first.
func (k *Keyboard) emit(dst []byte, c rune) []byte {
	if k.dead != 0 {
		d := k.dead
		k.dead = 0
		if c == ' ' {
			return utf8.AppendRune(dst, d)
		}
		if r, ok := compose(d, c); ok {
			return utf8.AppendRune(dst, r)
		}
		dst = utf8.AppendRune(dst, d)
	}
	return utf8.AppendRune(dst, c)
}

func (k *Keyboard) flushDead(dst []byte) []byte {
	if k.dead == 0 {
		return dst
	}
	d := k.dead
	k.dead = 0
	return utf8.AppendRune(dst, d)
}

func altGr(mods byte) bool {
	// Windows treats Ctrl+Alt as AltGr, and scanners emulating a layout
	// that needs AltGr often send it that way.
	return mods&modRAlt != 0 || (mods&(modLCtrl|modRCtrl) != 0 && mods&modLAlt != 0)
}

// typed returns the character usage u types with mods and Caps Lock, and
// whether it is a dead accent.
func (l *Layout) typed(u, mods byte, caps bool) (rune, bool) {
	kd := l.keys[u]
	shift := mods&(modLShift|modRShift) != 0
	if altGr(mods) && kd.altgr != 0 {
		return kd.altgr, kd.dead&deadAltGr != 0
	}
	// Caps Lock inverts Shift for letters only.
	if caps && unicode.IsLetter(kd.base) && kd.shift == unicode.ToUpper(kd.base) {
		shift = !shift
	}
	if shift && kd.shift != 0 {
		return kd.shift, kd.dead&deadShift != 0
	}
	if shift {
		return 0, false
	}
	return kd.base, kd.dead&deadBase != 0
}

func keypadRune(u byte, l *Layout) rune {
	switch {
	case u >= usageKP1 && u < usageKP0:
		return rune('1' + u - usageKP1)
	case u == usageKP0:
		return '0'
	case u == usageKPDecimal:
		return l.kpDecimal
	}
	return rune("/*-+"[u-usageKPSlash])
}

// altCode is the character of a Windows Alt code: with a leading 0 the
// number is a Windows-1252 code, otherwise a code page 437 one; control
// characters stay what they are (scanners type GS as Alt+029).
func altCode(digits []byte) rune {
	v := 0
	for _, d := range digits {
		v = v*10 + int(d-'0')
	}
	v %= 256
	switch {
	case v < 0x80:
		return rune(v)
	case digits[0] == '0':
		return charmap.Windows1252.DecodeByte(byte(v))
	default:
		return charmap.CodePage437.DecodeByte(byte(v))
	}
}

// LayoutHint says a scan looks like JSON typed with the wrong keyboard layout
// or with Caps Lock on. The driver logs it; the payment flow rejects the scan
// as any other bad code.
type LayoutHint struct {
	Layout   string   // configured layout
	CapsLock bool     // Caps Lock was on or toggled while the code was typed
	Fits     []string // layouts that decode the same keystrokes to valid JSON
}

// Error implements error.
func (h *LayoutHint) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "hidreport: scan is not valid JSON: wrong keyboard layout? (configured %q", h.Layout)
	if h.CapsLock {
		b.WriteString(", Caps Lock on")
	}
	b.WriteString(")")
	if len(h.Fits) > 0 {
		fmt.Fprintf(&b, "; the keystrokes are valid JSON with: %s", strings.Join(h.Fits, ", "))
	}
	return b.String()
}

// Check inspects a finished frame that came out of this decoder (through the
// framer). It returns a *LayoutHint when the frame is not valid JSON and
// either starts with '{' or its keystrokes are valid JSON on another layout
// (a us scanner read as de starts with 'Ü'); Fits then names those layouts.
// It returns nil for valid JSON and for other codes (EAN, …).
func (k *Keyboard) Check(frame []byte) *LayoutHint {
	t := bytes.TrimSpace(frame)
	if len(t) == 0 || json.Valid(t) {
		return nil
	}
	h := &LayoutHint{Layout: k.layout.name, CapsLock: k.caps}
	if strokes, caps, ok := k.strokesOf(t); ok {
		h.CapsLock = h.CapsLock || caps || slices.ContainsFunc(strokes, func(s stroke) bool { return s.usage == usageCapsLock })
		for _, name := range LayoutNames() {
			l := layouts[name]
			// Caps Lock only changes letters, never JSON's punctuation, so
			// only other layouts can make the keystrokes valid JSON.
			if l == k.layout {
				continue
			}
			if alt := bytes.TrimSpace(decodeStrokes(l, strokes, caps)); len(alt) > 0 && alt[0] == '{' && json.Valid(alt) {
				h.Fits = append(h.Fits, name)
			}
		}
	}
	if t[0] != '{' && len(h.Fits) == 0 {
		return nil
	}
	return h
}

// FrameDone tells the decoder that the framer ended a frame (by its suffix,
// a complete JSON object or the gap), so the keystrokes recorded for Check
// start afresh with the next frame. Call it after Check.
func (k *Keyboard) FrameDone() {
	k.cur, k.last = k.cur[:0], k.last[:0]
	k.curFull, k.lastFull = false, false
}

// strokesOf finds the recorded line that typed frame.
func (k *Keyboard) strokesOf(frame []byte) ([]stroke, bool, bool) {
	for _, c := range []struct {
		s    []stroke
		caps bool
		full bool
	}{{k.last, k.lastCaps, k.lastFull}, {k.cur, k.curCaps, k.curFull}} {
		if c.full || len(c.s) == 0 {
			continue
		}
		if bytes.Contains(decodeStrokes(k.layout, c.s, c.caps), frame) {
			return c.s, c.caps, true
		}
	}
	return nil, false, false
}

// decodeStrokes replays key-down edges on a fresh decoder.
func decodeStrokes(l *Layout, strokes []stroke, caps bool) []byte {
	d := &Keyboard{layout: l, caps: caps}
	var out []byte
	var rep [8]byte
	for _, s := range strokes {
		if s.usage == usageEnter || s.usage == usageKPEnter {
			continue
		}
		rep[0], rep[2] = s.mods, s.usage
		out, _ = d.Feed(out, rep[:])
		rep[2] = 0
		out, _ = d.Feed(out, rep[:])
	}
	out, _ = d.Feed(out, make([]byte, 8))
	return d.flushDead(out)
}
