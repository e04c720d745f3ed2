package vfd

import (
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/kioskd/kioskd/display"
)

func TestShorten(t *testing.T) {
	cases := []struct{ in, want string }{
		{"Недостаточно средств", "Недостаточно средств"},
		{"  Карта   заблокирована  ", "Карта заблокирована"},
		{"Недостаточно средств на счёте", "Недостаточно средств"},
		{"Insufficient funds on the account", "Insufficient funds.."},
		{"Лимит операций, превышен сегодня", "Лимит операций.."},
		{"Превышенлимитопераций по карте", "Превышенлимитопера.."},
		{"Код 1234567890123456789012", "Код.."},
	}
	for _, c := range cases {
		got := shorten(c.in, Width)
		if got != c.want {
			t.Errorf("shorten(%q) = %q, want %q", c.in, got, c.want)
		}
		if n := utf8.RuneCountInString(got); n > Width {
			t.Errorf("shorten(%q) is %d runes", c.in, n)
		}
	}
}

func TestLayout(t *testing.T) {
	cases := []struct {
		s    display.Screen
		want [2]string
	}{
		{display.Screen{State: display.Ready},
			[2]string{"Покажите QR-код     ", "для оплаты          "}},
		{display.Screen{State: display.Paid, Amount: 100, Lang: display.English},
			[2]string{"Paid                ", "            RUB 1.00"}},
		// The service's message wins over the amount: it explains the decline.
		{display.Screen{State: display.Declined, Amount: 100, Message: "Карта «Мир» — заблокирована"},
			[2]string{"Отказ в оплате      ", `Карта "Мир"..       `}},
		{display.Screen{State: display.Paying, Amount: 1 << 62},
			[2]string{"Оплата              ", "####################"}},
	}
	for _, c := range cases {
		if got := Layout(c.s); got != c.want {
			t.Errorf("Layout(%+v) =\n|%s|\n|%s|\nwant\n|%s|\n|%s|", c.s, got[0], got[1], c.want[0], c.want[1])
		}
	}
}

func TestEncodeNeverSendsControls(t *testing.T) {
	r, err := NewRenderer(nil, Options{CommandSet: "cd5220"})
	if err != nil {
		t.Fatal(err)
	}
	r.inited = true
	b := r.Frame(display.Screen{State: display.Declined, Message: "a\rb\x1bc\x00d😀"})
	// Only the frame's own CRs may appear: a CR in the text would end the
	// CD5220 line command early.
	want := "\x1bQA\x8e\xe2\xaa\xa0\xa7 \xa2 \xae\xaf\xab\xa0\xe2\xa5      \r\x1bQBa b c d?            \r"
	if string(b) != want {
		t.Errorf("frame = %q\nwant    %q", b, want)
	}
}

func TestValidate(t *testing.T) {
	ok := display.Config{Name: "pole", Driver: "vfd", Port: "/dev/kiosk/display0"}
	if err := Validate(ok); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	bad := map[string]display.Config{
		"port":        {Name: "pole", Port: "ttyUSB0"},
		"baud":        {Name: "pole", Port: "/dev/x", Baud: 9601},
		"command_set": {Name: "pole", Port: "/dev/x", CommandSet: "escpos"},
		"codepage":    {Name: "pole", Port: "/dev/x", Codepage: "koi8"},
		"codepage_n":  {Name: "pole", Port: "/dev/x", CodepageN: 256},
	}
	for field, c := range bad {
		var ce *display.ConfigError
		if err := Validate(c); !errors.As(err, &ce) || ce.Field != field {
			t.Errorf("Validate(%+v) = %v, want a ConfigError on %s", c, err, field)
		}
		if _, err := display.New(display.Config{Name: c.Name, Driver: "vfd", Port: c.Port, Baud: c.Baud,
			CommandSet: c.CommandSet, Codepage: c.Codepage, CodepageN: c.CodepageN}, nil); err == nil {
			t.Errorf("display.New accepted %+v", c)
		}
	}
}
