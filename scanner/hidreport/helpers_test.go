package hidreport

import (
	"encoding/base64"
	"fmt"
	"math/rand"

	"github.com/kioskd/kioskd/scanner/internal/hidtest"
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

// kb is one key press (hidtest.Key), short for the tables of the tests.
type kb = hidtest.Key

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
