package hidreport

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/kioskd/kioskd/scanner/internal/hidtest"
)

const (
	sh    = modLShift
	rsh   = modRShift
	altgr = modRAlt
)

// The key codes below are written by hand from HARDWARE.md and the layouts'
// keyboard charts, independent of the decoder's tables.
func TestKeyboardLayouts(t *testing.T) {
	tests := []struct {
		layout string
		keys   []kb
		want   string
	}{
		{"us", []kb{{sh, 0x2f}, {sh, 0x34}, {0, 0x04}, {sh, 0x34}, {sh, 0x33}, {0, 0x1e}, {sh, 0x30}, {0, 0x28}}, "{\"a\":1}\r"},
		{"us", []kb{{rsh, 0x1f}, {0, 0x2e}, {sh, 0x2e}, {0, 0x2d}, {sh, 0x2d}, {0, 0x38}, {sh, 0x38}, {0, 0x36}, {sh, 0x36}}, "@=+-_/?,<"},
		{"", []kb{{sh, 0x1c}, {0, 0x1d}}, "Yz"},
		{"uk", []kb{{sh, 0x1f}, {sh, 0x34}, {0, 0x34}, {sh, 0x20}, {0, 0x32}, {sh, 0x32}, {0, 0x64}}, "\"@'£#~\\"},
		{"uk", []kb{{sh, 0x2f}, {sh, 0x1f}, {0, 0x04}, {sh, 0x1f}, {sh, 0x33}, {0, 0x1e}, {sh, 0x30}, {0, 0x58}}, "{\"a\":1}\r"},
		{"de", []kb{{0, 0x1c}, {0, 0x1d}, {sh, 0x1c}, {sh, 0x1d}}, "zyZY"},
		{"de", []kb{{altgr, 0x24}, {sh, 0x1f}, {0, 0x04}, {sh, 0x1f}, {sh, 0x37}, {0, 0x1e}, {altgr, 0x27}, {0, 0x28}}, "{\"a\":1}\r"},
		{"de", []kb{{altgr, 0x14}, {altgr, 0x25}, {altgr, 0x26}, {sh, 0x24}, {0, 0x24}, {sh, 0x27}, {0, 0x38}, {sh, 0x38}, {0, 0x30}, {sh, 0x30}, {0, 0x2d}, {sh, 0x2d}}, "@[]/7=-_+*ß?"},
		{"de", []kb{{modLCtrl | modLAlt, 0x24}, {modLCtrl | modLAlt, 0x14}}, "{@"}, // Ctrl+Alt as AltGr
		{"de", []kb{{0, 0x35}, {0, 0x2c}, {0, 0x2e}, {0, 0x08}, {sh, 0x2e}, {0, 0x04}, {0, 0x35}, {0, 0x05}}, "^éà^b"},
		{"fr", []kb{{0, 0x14}, {0, 0x04}, {0, 0x1a}, {0, 0x1d}, {0, 0x33}, {0, 0x10}, {sh, 0x10}}, "aqzwm,?"},
		{"fr", []kb{{altgr, 0x21}, {0, 0x20}, {0, 0x14}, {0, 0x20}, {0, 0x37}, {sh, 0x1e}, {altgr, 0x2e}, {0, 0x28}}, "{\"a\":1}\r"},
		{"fr", []kb{{0, 0x1e}, {0, 0x1f}, {sh, 0x1f}, {0, 0x21}, {0, 0x22}, {0, 0x23}, {0, 0x25}, {altgr, 0x27}, {altgr, 0x22}, {altgr, 0x2d}, {0, 0x36}, {sh, 0x36}, {sh, 0x37}}, "&é2'(-_@[];./"},
		{"fr", []kb{{0, 0x2f}, {0, 0x08}, {sh, 0x2f}, {0, 0x0c}}, "êï"},
		{"us", []kb{{0, 0x59}, {0, 0x62}, {0, 0x63}, {0, 0x55}, {0, 0x58}}, "10.*\r"}, // keypad
		{"de", []kb{{0, 0x63}}, ","},
		{"us", []kb{{modLCtrl, 0x30}, {modRCtrl, 0x04}}, "\x1d\x01"},    // Ctrl+] = GS
		{"us", []kb{{0, 0x2b}, {0, 0x2c}, {0, 0x29}, {0, 0x2a}}, "\t "}, // Esc, Backspace type nothing
	}
	for _, tc := range tests {
		got, _, err := feedAll(tc.layout, hidtest.KeyReports(tc.keys...))
		if err != nil {
			t.Fatalf("%s: %v", tc.layout, err)
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.layout, got, tc.want)
		}
	}
}

func TestKeyboardEdges(t *testing.T) {
	r := func(mods byte, keys ...byte) []byte {
		out := make([]byte, 8)
		out[0] = mods
		copy(out[2:], keys)
		return out
	}
	tests := []struct {
		name    string
		reports [][]byte
		want    string
	}{
		{"held key types once", [][]byte{r(0, 0x04), r(0, 0x04), r(0, 0x04), r(0)}, "a"},
		{"same key twice needs a release", [][]byte{r(0, 0x04), r(0), r(0, 0x04), r(0)}, "aa"},
		{"rollover keeps order", [][]byte{r(0, 0x04), r(0, 0x04, 0x05), r(0, 0x05), r(0, 0x05, 0x06), r(0)}, "abc"},
		{"two new keys in one report", [][]byte{r(0, 0x0b, 0x0c), r(0)}, "hi"},
		{"phantom rollover report ignored", [][]byte{r(0, 0x04), r(0, 1, 1, 1, 1, 1, 1), r(0, 0x04, 0x05), r(0)}, "ab"},
		{"shift applies at key-down", [][]byte{r(sh, 0x04), r(0, 0x04), r(0)}, "A"},
		{"short report", [][]byte{{0, 0, 0x04}, {0, 0, 0}}, "a"},
		{"report with id byte cut to 8", [][]byte{append(r(0, 0x04), 9, 9), r(0)}, "a"},
		{"zero-length reads skipped", [][]byte{{}, r(0, 0x04), {}, r(0)}, "a"},
		{"alt code, Windows-1252", [][]byte{r(modLAlt), r(modLAlt, 0x62), r(modLAlt), r(modLAlt, 0x5a), r(modLAlt), r(modLAlt, 0x5a), r(modLAlt), r(modLAlt, 0x60), r(modLAlt), r(0)}, "ä"},
		{"alt code, cp437", [][]byte{r(modLAlt, 0x59), r(modLAlt), r(modLAlt, 0x5b), r(modLAlt), r(modLAlt, 0x5a), r(modLAlt), r(0)}, "ä"},
		{"alt code, GS", [][]byte{r(modLAlt, 0x62), r(modLAlt), r(modLAlt, 0x5a), r(modLAlt), r(modLAlt, 0x61), r(modLAlt), r(0)}, "\x1d"},
	}
	for _, tc := range tests {
		got, _, err := feedAll("us", tc.reports)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	if _, _, err := feedAll("us", [][]byte{{0, 0}}); !errors.Is(err, ErrMalformed) {
		t.Errorf("2-byte report: %v", err)
	}
}

func TestKeyboardCapsLock(t *testing.T) {
	tests := []struct {
		layout string
		keys   []kb
		want   string
	}{
		{"us", []kb{{0, 0x39}, {0, 0x04}, {sh, 0x05}, {0, 0x1e}, {sh, 0x1e}, {0, 0x2f}, {0, 0x39}, {0, 0x06}}, "Ab1![c"},
		{"de", []kb{{0, 0x39}, {0, 0x1c}, {0, 0x33}, {0, 0x2d}, {0, 0x24}}, "ZÖß7"},     // umlauts are letters, ß has no capital here, digits unaffected
		{"fr", []kb{{0, 0x39}, {0, 0x14}, {0, 0x1f}, {0, 0x1e}, {altgr, 0x21}}, "Aé&{"}, // letters only: the digit row keeps its level
	}
	for _, tc := range tests {
		got, _, err := feedAll(tc.layout, hidtest.KeyReports(tc.keys...))
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q (%v), want %q", tc.layout, got, err, tc.want)
		}
	}
	// Caps Lock held across reports toggles once.
	got, k, _ := feedAll("us", [][]byte{{0, 0, 0x39}, {0, 0, 0x39}, {0, 0, 0x39}, {0, 0, 0}, {0, 0, 0x04}, {0, 0, 0}})
	if got != "A" || !k.CapsLock() {
		t.Errorf("held Caps Lock: %q caps=%v", got, k.CapsLock())
	}
	k.Reset()
	if k.CapsLock() {
		t.Error("Reset kept Caps Lock")
	}
}

// A 500-byte payment QR typed on each layout (a scanner configured for that
// layout) and decoded with it, in the two report styles scanners use.
func TestKeyboardPaymentQRRoundTrip(t *testing.T) {
	qr := string(paymentQR(500)) + "\r"
	for _, name := range LayoutNames() {
		keys := typer(name, qr)
		got, k, err := feedAll(name, hidtest.KeyReports(keys...))
		if err != nil || got != qr {
			t.Fatalf("%s: got %q (%v)", name, got, err)
		}
		if h := k.Check([]byte(qr[:500])); h != nil {
			t.Errorf("%s: valid JSON flagged: %v", name, h)
		}
		// Fast scanners press the next key before releasing the last one.
		var reports [][]byte
		var prev, prevprev byte
		for _, kk := range keys {
			switch kk.Usage() {
			case prev: // the same key again needs a release
				reports = append(reports, []byte{kk.Mods(), 0, 0, 0, 0, 0, 0, 0})
				prev = 0
			case prevprev: // release it before pressing it again
				reports = append(reports, []byte{kk.Mods(), 0, prev, 0, 0, 0, 0, 0})
			}
			reports = append(reports, []byte{kk.Mods(), 0, prev, kk.Usage(), 0, 0, 0, 0})
			prevprev, prev = prev, kk.Usage()
		}
		reports = append(reports, make([]byte, 8))
		got, _, err = feedAll(name, reports)
		if err != nil || got != qr {
			t.Fatalf("%s rollover: got %q (%v)", name, got, err)
		}
	}
}

func TestKeyboardWrongLayoutHint(t *testing.T) {
	qr := string(paymentQR(400))
	tests := []struct {
		typedOn, decodedAs string
		wantFit            string
	}{
		{"de", "us", "de"},
		{"fr", "us", "fr"},
		{"us", "fr", "us"},
		{"us", "de", "us"},
	}
	for _, tc := range tests {
		got, k, err := feedAll(tc.decodedAs, hidtest.KeyReports(typer(tc.typedOn, qr+"\r")...))
		if err != nil {
			t.Fatal(err)
		}
		frame := []byte(strings.TrimSuffix(got, "\r"))
		if json.Valid(frame) {
			t.Fatalf("%s as %s decoded to valid JSON", tc.typedOn, tc.decodedAs)
		}
		h := k.Check(frame)
		if h == nil {
			t.Fatalf("%s as %s: no hint for %q", tc.typedOn, tc.decodedAs, got[:10])
		}
		if h.Layout != tc.decodedAs || !slices.Contains(h.Fits, tc.wantFit) {
			t.Errorf("%s as %s: hint %+v", tc.typedOn, tc.decodedAs, h)
		}
		var target *LayoutHint
		if !errors.As(error(h), &target) || !strings.Contains(h.Error(), "wrong keyboard layout?") {
			t.Errorf("hint text: %v", h)
		}
	}
	// A frame that was not typed by this decoder still gets the hint, without
	// suggestions.
	k, _ := NewKeyboard("us")
	if h := k.Check([]byte(`{"a":`)); h == nil || len(h.Fits) != 0 {
		t.Errorf("foreign frame: %+v", h)
	}
	if h := k.Check([]byte("4006381333931")); h != nil {
		t.Errorf("EAN flagged: %v", h)
	}
}

// Caps Lock garbles only letters, so the hint still finds the layout and
// says Caps Lock was involved.
func TestKeyboardCapsLockHint(t *testing.T) {
	keys := append([]kb{{0, 0x39}}, typer("uk", `{"a":"B"}`)...)
	got, k, _ := feedAll("us", hidtest.KeyReports(keys...))
	if got != `{@A@:@b@}` {
		t.Fatalf("got %q", got)
	}
	h := k.Check([]byte(got))
	if h == nil || !h.CapsLock || !slices.Equal(h.Fits, []string{"uk"}) {
		t.Fatalf("hint %+v", h)
	}
	if !strings.Contains(h.Error(), "Caps Lock on") {
		t.Errorf("hint text %q", h.Error())
	}
}

func TestUnknownLayout(t *testing.T) {
	if _, err := NewKeyboard("dvorak"); err == nil || !strings.Contains(err.Error(), "us") {
		t.Fatalf("err %v", err)
	}
}
