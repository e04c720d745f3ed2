package vfd

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/display/displaytest"
)

// goldenScreens are the screens every command set is checked with: every
// state, amounts, a service message too long for a line.
func goldenScreens(l display.Lang) []display.Screen {
	var ss []display.Screen
	for st := display.Ready; st <= display.Starting; st++ {
		ss = append(ss, display.Screen{State: st, Amount: 12345, Lang: l})
	}
	msg := "Недостаточно средств на счёте покупателя"
	if l == display.English {
		msg = "Insufficient funds on the customer's account"
	}
	return append(ss,
		display.Screen{State: display.Declined, Amount: 12345, Message: msg, Lang: l},
		display.Screen{State: display.Paying, Amount: 9876543210, Lang: l},
	)
}

// TestGolden compares the bytes of every screen, for every command set and
// both languages, with testdata/<set>_<lang>.golden (hex dumps with the
// laid-out text as a header, so a diff is readable). Run with -update after
// an intended change and review the diff.
func TestGolden(t *testing.T) {
	for set := range commandSets {
		for _, l := range []display.Lang{display.Russian, display.English} {
			t.Run(set+"_"+string(l), func(t *testing.T) {
				var out, wire bytes.Buffer
				r, err := NewRenderer(&wire, Options{CommandSet: set})
				if err != nil {
					t.Fatal(err)
				}
				for i, s := range goldenScreens(l) {
					wire.Reset()
					if err := r.Show(context.Background(), s); err != nil {
						t.Fatal(err)
					}
					lines := Layout(s)
					fmt.Fprintf(&out, "# %d %s amount=%d message=%q\n# |%s|\n# |%s|\n%s\n",
						i, s.State, s.Amount, s.Message, lines[0], lines[1], hex.Dump(wire.Bytes()))
				}
				path := filepath.Join("testdata", set+"_"+string(l)+".golden")
				if want := displaytest.Golden(t, path, out.Bytes()); !bytes.Equal(out.Bytes(), want) {
					t.Errorf("%s differs from the output:\n%s", path, out.Bytes())
				}
			})
		}
	}
}
