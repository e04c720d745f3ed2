package qibixx_test

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment/vending"
	"github.com/kioskd/kioskd/payment/vending/qibixx"
	"github.com/kioskd/kioskd/scanner/settings"
)

// section builds `vending:` with the given keys, one a line from line 1, and
// a catalogue of entries (each a list of key, value pairs).
func section(pairs []string, catalogue ...[]string) *settings.Node {
	n := settings.Flat(pairs...)
	if len(catalogue) == 0 {
		return n
	}
	list := &settings.Node{Kind: settings.ListNode, Line: len(n.Keys) + 1}
	line := list.Line + 1
	for _, e := range catalogue {
		item := settings.Flat(e...)
		item.Line = line
		for i := range item.Keys {
			item.Keys[i].Line = line
			item.Keys[i].Value.Line = line
			line++
		}
		list.Items = append(list.Items, item)
	}
	n.Keys = append(n.Keys, settings.Key{Name: "catalogue", Line: list.Line, Value: list})
	return n
}

func decode(t *testing.T, n *settings.Node) (vending.Config, []settings.Problem) {
	t.Helper()
	var d settings.Decoder
	e, _ := vending.Drivers.Decode(&d, n, "vending")
	return e, d.Problems()
}

// The section as devices.yaml writes it reaches the driver's Config with
// its defaults filled in, and opens a Device.
func TestSettingsDecode(t *testing.T) {
	e, probs := decode(t, section(
		[]string{"driver", "qibixx", "port", "/dev/ttyACM0", "address", "96", "vend_timeout", "45s"},
		[]string{"item", "11", "name", "Вода 0,5 л", "price", "8000"},
		[]string{"item", "12", "name", "Кофе"}))
	if len(probs) > 0 {
		t.Fatalf("problems: %+v", probs)
	}
	want := qibixx.DefaultConfig()
	want.Port, want.Address, want.VendTimeout = "/dev/ttyACM0", qibixx.AddressCashless2, 45*time.Second
	want.Catalogue = vending.Catalogue{11: {Name: "Вода 0,5 л", Price: 8000}, 12: {Name: "Кофе"}}
	if got := e.Settings.(qibixx.Config); !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %+v\nwant    %+v", got, want)
	}
	if e.Settings.AnswerWithin() != 45*time.Second {
		t.Errorf("AnswerWithin = %v", e.Settings.AnswerWithin())
	}
	if r := settings.ResourceOf(e.Settings); r.Kind != settings.TTY || r.Path != "/dev/ttyACM0" {
		t.Errorf("resource %+v", r)
	}
	a, err := vending.Open(e, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a.(*qibixx.Device); !ok {
		t.Errorf("Open gave %T", a)
	}
}

// Every rule reports at the line of its key, all of them at once; the
// same rules refuse a Config made in code (Validate).
func TestSettingsProblems(t *testing.T) {
	_, probs := decode(t, section(
		[]string{"driver", "qibixx", "port", "ttyACM0", "address", "17", "scale_factor", "5",
			"decimal_places", "4", "currency", "EUR", "vend_timeout", "1500ms", "always_idel", "true"},
		[]string{"item", "70000", "name", "x"},
		[]string{"item", "3", "name", "x", "price", "-5"},
		[]string{"item", "3", "name", "y"},
		[]string{"name", "no item"}))
	want := []string{
		"2 vending.port: want an absolute device path",
		"3 vending.address: 0x11: want 0x10 (cashless #1) or 0x60 (cashless #2)",
		"5 vending.decimal_places: qibixx: decimal places 4: want 0–3",
		"6 vending.currency: \"EUR\": want RUB",
		"7 vending.vend_timeout: 1.5s: want whole seconds",
		"8 vending.always_idel: unknown key (did you mean always_idle?)",
		"9 vending.catalogue: item 3, price: -5: want kopecks ≥ 0",
		"9 vending.catalogue: item 70000: item number 70000: want 0–65535",
		"15 vending.catalogue[2].item: item 3 is already in the catalogue",
		"17 vending.catalogue[3].item: required: the item (selection) number the machine sends",
	}
	var got []string
	for _, p := range probs {
		got = append(got, strings.Join([]string{strconv.Itoa(p.Line), p.Path + ":", p.Msg}, " "))
	}
	if len(got) != len(want) {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	slices.Sort(got)
	slices.Sort(want)
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %q, want %q…", got[i], want[i])
		}
	}
}
