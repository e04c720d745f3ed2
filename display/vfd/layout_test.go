package vfd

import (
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/scanner/settings"
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

// TestSettings decodes pole display entries as devices.yaml is read.
func TestSettings(t *testing.T) {
	decode := func(pairs ...string) (Settings, []settings.Problem) {
		var d settings.Decoder
		c, _ := display.Drivers.Decode(&d, settings.Flat(append([]string{"driver", "vfd", "name", "pole"}, pairs...)...), "displays[0]")
		s, _ := c.Settings.(Settings)
		return s, d.Problems()
	}
	if s, p := decode("port", "/dev/kiosk/display0"); len(p) > 0 || s.Baud != 9600 || s.Options.CommandSet != "epson" || s.Options.Codepage != "cp866" {
		t.Fatalf("defaults: %+v %v", s, p)
	}
	if s, p := decode("vid", "0403", "pid", "6001", "command_set", "cd5220", "codepage_table", "-1"); len(p) > 0 ||
		s.Port.Path != "/dev/kiosk/pole" || s.Options.CommandSet != "cd5220" || s.Options.CodepageN != -1 {
		t.Fatalf("values: %+v %v", s, p)
	}
	for key, value := range map[string]string{"port": "ttyUSB0", "baud": "9601", "command_set": "escpos",
		"codepage": "koi8", "codepage_table": "256"} {
		pairs := []string{"port", "/dev/x", key, value}
		if key == "port" {
			pairs = pairs[2:]
		}
		if _, p := decode(pairs...); len(p) != 1 || p[0].Path != "displays[0]."+key || !strings.Contains(p[0].Msg, value) {
			t.Errorf("%s: %s: problems %+v, want one naming the value", key, value, p)
		}
	}
	if _, p := decode(); len(p) != 1 || p[0].Msg != "required for driver vfd (e.g. /dev/serial/by-id/… or /dev/kiosk/pole), or give vid and pid" {
		t.Errorf("no port: %+v", p)
	}
	// Options made in code are checked against the same tables.
	for _, o := range []Options{{CommandSet: "escpos"}, {Codepage: "koi8"}, {CodepageN: 256}} {
		if _, err := NewRenderer(io.Discard, o); err == nil {
			t.Errorf("NewRenderer accepted %+v", o)
		}
	}
}
