package display

import (
	"testing"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// The vending screens keep the promises of Short, and the product is the
// title with the state's title under it.
func TestVendingTexts(t *testing.T) {
	for _, st := range []State{Selected, VendFailed} {
		for _, l := range []Lang{Russian, English} {
			tx := Short(Screen{State: st, Lang: l, Amount: 1234567})
			for _, line := range []string{tx.Title, tx.Detail, tx.Amount} {
				if n := utf8.RuneCountInString(line); n > 20 {
					t.Errorf("%s/%s: %q is %d columns, want <= 20", st, l, line, n)
				}
				for _, r := range line {
					if _, ok := charmap.CodePage866.EncodeRune(r); !ok {
						t.Errorf("%s/%s: %q has %q, not in CP866", st, l, line, r)
					}
				}
			}
			if lt := Long(Screen{State: st, Lang: l}); lt.Title == "" || lt.Detail == "" || ToneOf(st) == ToneWarning {
				t.Errorf("%s/%s: long text %+v, tone %v", st, l, lt, ToneOf(st))
			}
		}
	}
	got := Long(Screen{State: Selected, Product: " Кофе американо ", Amount: 12000})
	if want := (Text{"Кофе американо", "Покажите QR-код для оплаты", "120,00\u00a0₽"}); got != want {
		t.Errorf("selected = %+v, want %+v", got, want)
	}
	if got := Short(Screen{State: VendFailed, Amount: 8000, Lang: English}); got != (Text{"Vend failed", "Payment returned", "RUB 80.00"}) {
		t.Errorf("vend failed en = %+v", got)
	}
}
