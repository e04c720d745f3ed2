package display

import (
	"math"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

func TestFormatAmount(t *testing.T) {
	cases := []struct {
		kop         int64
		ru, ruShort string
		en          string
	}{
		{12345, "123,45\u00a0₽", "123,45 руб.", "RUB 123.45"},
		{5, "0,05\u00a0₽", "0,05 руб.", "RUB 0.05"},
		{100, "1,00\u00a0₽", "1,00 руб.", "RUB 1.00"},
		{123456789, "1\u00a0234\u00a0567,89\u00a0₽", "1 234 567,89 руб.", "RUB 1,234,567.89"},
		{-12345, "-123,45\u00a0₽", "-123,45 руб.", "RUB -123.45"},
		{math.MinInt64, "-92\u00a0233\u00a0720\u00a0368\u00a0547\u00a0758,08\u00a0₽",
			"-92 233 720 368 547 758,08 руб.", "RUB -92,233,720,368,547,758.08"},
	}
	for _, c := range cases {
		if got := FormatAmount(c.kop, Russian); got != c.ru {
			t.Errorf("FormatAmount(%d, ru) = %q, want %q", c.kop, got, c.ru)
		}
		if got := FormatAmount(c.kop, ""); got != c.ru {
			t.Errorf("FormatAmount(%d, \"\") = %q, want Russian %q", c.kop, got, c.ru)
		}
		if got := FormatAmountShort(c.kop, Russian); got != c.ruShort {
			t.Errorf("FormatAmountShort(%d, ru) = %q, want %q", c.kop, got, c.ruShort)
		}
		if got := FormatAmount(c.kop, English); got != c.en {
			t.Errorf("FormatAmount(%d, en) = %q, want %q", c.kop, got, c.en)
		}
	}
}

// TestShortFits checks the promise of Short: every built-in text fits a 20
// column line and is representable in CP866.
func TestShortFits(t *testing.T) {
	for st := Ready; st <= Starting; st++ {
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
			if tx.Title == "" {
				t.Errorf("%s/%s: empty short title", st, l)
			}
			if lt := Long(Screen{State: st, Lang: l}); lt.Title == "" || lt.Detail == "" {
				t.Errorf("%s/%s: long text %+v has an empty line", st, l, lt)
			}
		}
	}
}

func TestTextRules(t *testing.T) {
	// The service's message replaces the default detail.
	got := Long(Screen{State: Declined, Message: " Недостаточно средств ", Amount: 100})
	if got.Detail != "Недостаточно средств" || got.Title != "Оплата не прошла" || got.Amount != "1,00\u00a0₽" {
		t.Errorf("declined = %+v", got)
	}
	// Ready never shows an amount even when one is set by mistake.
	if got := Short(Screen{State: Ready, Amount: 100}); got.Amount != "" {
		t.Errorf("ready shows amount %q", got.Amount)
	}
	if got := Short(Screen{State: Paid, Amount: 12345, Lang: English}); got != (Text{"Paid", "Thank you!", "RUB 123.45"}) {
		t.Errorf("paid en = %+v", got)
	}
	// An unknown state is shown as a fault, never as an empty screen.
	if got := Long(Screen{State: State(99)}); got.Title == "" || ToneOf(State(99)) != ToneWarning {
		t.Errorf("unknown state = %+v", got)
	}
	if ToneOf(Paid) != ToneSuccess || ToneOf(Declined) != ToneFailure || ToneOf(Ready) != ToneIdle {
		t.Error("tones of paid/declined/ready are wrong")
	}
}
