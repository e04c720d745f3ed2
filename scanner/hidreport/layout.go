package hidreport

import (
	"fmt"
	"maps"
	"slices"
)

// key is what one HID keyboard usage types on a layout. A zero rune means the
// combination types nothing. Dead keys (accents that combine with the next
// key) are marked per level.
type key struct {
	base, shift, altgr rune
	dead               uint8 // deadBase | deadShift | deadAltGr
}

const (
	deadBase uint8 = 1 << iota
	deadShift
	deadAltGr
)

// Layout maps boot keyboard usages to characters, as the host's keyboard
// layout would: a scanner in keyboard mode sends the key codes that type its
// text on the layout it was configured for.
type Layout struct {
	name string
	keys [256]key
	// kpDecimal is the character of the keypad decimal key (',' on de).
	kpDecimal rune
}

// Name returns the layout's name as written in devices.yaml.
func (l *Layout) Name() string { return l.name }

var layouts = map[string]*Layout{}

// LayoutByName returns the named layout ("us", "uk", "de", "fr"); empty
// means "us".
func LayoutByName(name string) (*Layout, error) {
	if name == "" {
		name = "us"
	}
	if l, ok := layouts[name]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("hidreport: unknown keyboard layout %q (known: %v)", name, LayoutNames())
}

// LayoutNames lists the known layouts, sorted.
func LayoutNames() []string { return slices.Sorted(maps.Keys(layouts)) }

// HID keyboard usages (HID Usage Tables, page 0x07) the decoder treats
// specially.
const (
	usageA           = 0x04
	usageZ           = 0x1d
	usage1           = 0x1e
	usageEnter       = 0x28
	usageTab         = 0x2b
	usageSpace       = 0x2c
	usageCapsLock    = 0x39
	usageKPSlash     = 0x54
	usageKPEnter     = 0x58
	usageKP1         = 0x59
	usageKP0         = 0x62
	usageKPDecimal   = 0x63
	usageErrRollOver = 0x01
)

// row sets base/shift pairs for consecutive usages starting at first.
func (l *Layout) row(first byte, pairs string) {
	rs := []rune(pairs)
	for i := 0; i+1 < len(rs); i += 2 {
		k := &l.keys[int(first)+i/2]
		k.base, k.shift = rs[i], rs[i+1]
	}
}

// set defines one usage completely.
func (l *Layout) set(u byte, base, shift, altgr rune) {
	l.keys[u] = key{base: base, shift: shift, altgr: altgr}
}

func newLayout(name string) *Layout {
	l := &Layout{name: name, kpDecimal: '.'}
	for u := usageA; u <= usageZ; u++ {
		c := rune('a' + u - usageA)
		l.keys[u] = key{base: c, shift: c - 'a' + 'A'}
	}
	l.keys[usageSpace] = key{base: ' ', shift: ' '}
	l.keys[usageTab] = key{base: '\t', shift: '\t'}
	return l
}

func init() {
	// us: the HID usage names are the US layout.
	us := newLayout("us")
	us.row(usage1, "1!2@3#4$5%6^7&8*9(0)")
	us.row(0x2d, "-_=+[{]}\\|\\|;:'\"`~,<.>/?")
	us.set(0x64, '\\', '|', 0)
	layouts["us"] = us

	// uk (GB): " and @ swap places, £ on Shift+3, # ~ on the ISO key.
	uk := newLayout("uk")
	uk.row(usage1, "1!2\"3£4$5%6^7&8*9(0)")
	uk.row(0x2d, "-_=+[{]}#~#~;:'@`¬,<.>/?")
	uk.set(0x64, '\\', '|', 0)
	uk.keys[0x21].altgr = '€'
	uk.keys[0x35].altgr = '¦'
	layouts["uk"] = uk

	// de: QWERTZ; braces and brackets on AltGr+7/8/9/0, @ on AltGr+Q.
	de := newLayout("de")
	de.keys[0x1c] = key{base: 'z', shift: 'Z'}
	de.keys[0x1d] = key{base: 'y', shift: 'Y'}
	de.row(usage1, "1!2\"3§4$5%6&7/8(9)0=")
	de.keys[0x1f].altgr = '²'
	de.keys[0x20].altgr = '³'
	de.keys[0x24].altgr = '{'
	de.keys[0x25].altgr = '['
	de.keys[0x26].altgr = ']'
	de.keys[0x27].altgr = '}'
	de.set(0x2d, 'ß', '?', '\\')
	de.keys[0x2e] = key{base: '´', shift: '`', dead: deadBase | deadShift}
	de.set(0x2f, 'ü', 'Ü', 0)
	de.set(0x30, '+', '*', '~')
	de.set(0x31, '#', '\'', 0)
	de.set(0x32, '#', '\'', 0)
	de.set(0x33, 'ö', 'Ö', 0)
	de.set(0x34, 'ä', 'Ä', 0)
	de.keys[0x35] = key{base: '^', shift: '°', dead: deadBase}
	de.set(0x36, ',', ';', 0)
	de.set(0x37, '.', ':', 0)
	de.set(0x38, '-', '_', 0)
	de.set(0x64, '<', '>', '|')
	de.keys[0x14].altgr = '@'
	de.keys[0x08].altgr = '€'
	de.keys[0x10].altgr = 'µ'
	de.kpDecimal = ','
	layouts["de"] = de

	// fr: AZERTY; digits need Shift; { [ | ` \ ^ @ ] } on AltGr of the top row.
	fr := newLayout("fr")
	fr.keys[0x04] = key{base: 'q', shift: 'Q'}
	fr.keys[0x14] = key{base: 'a', shift: 'A'}
	fr.keys[0x1a] = key{base: 'z', shift: 'Z'}
	fr.keys[0x1d] = key{base: 'w', shift: 'W'}
	fr.keys[0x33] = key{base: 'm', shift: 'M'}
	fr.set(0x10, ',', '?', 0)
	fr.set(0x1e, '&', '1', 0)
	fr.keys[0x1f] = key{base: 'é', shift: '2', altgr: '~', dead: deadAltGr}
	fr.set(0x20, '"', '3', '#')
	fr.set(0x21, '\'', '4', '{')
	fr.set(0x22, '(', '5', '[')
	fr.set(0x23, '-', '6', '|')
	fr.keys[0x24] = key{base: 'è', shift: '7', altgr: '`', dead: deadAltGr}
	fr.set(0x25, '_', '8', '\\')
	fr.set(0x26, 'ç', '9', '^')
	fr.set(0x27, 'à', '0', '@')
	fr.set(0x2d, ')', '°', ']')
	fr.set(0x2e, '=', '+', '}')
	fr.keys[0x2f] = key{base: '^', shift: '¨', dead: deadBase | deadShift}
	fr.set(0x30, '$', '£', '¤')
	fr.set(0x31, '*', 'µ', 0)
	fr.set(0x32, '*', 'µ', 0)
	fr.set(0x34, 'ù', '%', 0)
	fr.set(0x35, '²', 0, 0)
	fr.set(0x36, ';', '.', 0)
	fr.set(0x37, ':', '/', 0)
	fr.set(0x38, '!', '§', 0)
	fr.set(0x64, '<', '>', 0)
	fr.keys[0x08].altgr = '€'
	layouts["fr"] = fr
}

// compose combines a dead accent with the next character; ok is false when
// the pair does not compose, and the host then types both.
func compose(dead, c rune) (rune, bool) {
	if r, ok := composeTable[[2]rune{dead, c}]; ok {
		return r, true
	}
	return 0, false
}

var composeTable = func() map[[2]rune]rune {
	m := map[[2]rune]rune{}
	add := func(dead rune, from, to string) {
		f, t := []rune(from), []rune(to)
		for i := range f {
			m[[2]rune{dead, f[i]}] = t[i]
		}
	}
	add('´', "aeiouyAEIOUY", "áéíóúýÁÉÍÓÚÝ")
	add('`', "aeiouAEIOU", "àèìòùÀÈÌÒÙ")
	add('^', "aeiouAEIOU", "âêîôûÂÊÎÔÛ")
	add('¨', "aeiouyAEIOU", "äëïöüÿÄËÏÖÜ")
	add('~', "anoANO", "ãñõÃÑÕ")
	return m
}()
