package settings

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// probe is a settings type with one key of every kind.
type probe struct {
	Str      string
	Word     string
	Kind     ResourceKind
	N        int
	Big      int64
	Speed    int
	On       bool
	Wait     time.Duration
	Short    time.Duration
	ID       uint16
	Addr     string
	Local    string
	Dev      string
	DevName  string
	Need     string
	Sub      sub
	Items    []string
	Resource Port
}

type sub struct{ A int }

func (s *sub) Fields() []Field { return []Field{Int("a", &s.A, 0, 9)} }

func (p *probe) Fields() []Field {
	return []Field{
		String("str", &p.Str),
		Enum("word", &p.Word, "one", "two"),
		EnumOf("kind", &p.Kind, TTY, HIDRaw),
		Int("n", &p.N, 1, 10),
		Int("big", &p.Big, 0, 1<<40),
		Baud(&p.Speed, 9600, 115200),
		Bool("on", &p.On),
		Duration("wait", &p.Wait),
		DurationUpTo("short", &p.Short, time.Second),
		Hex16("id", &p.ID),
		HostPort("addr", &p.Addr, false),
		HostPort("local", &p.Local, true),
		DevicePath("dev", &p.Dev),
		Name("devname", &p.DevName),
		String("need", &p.Need).Required("required: something"),
		Sub("sub", &p.Sub),
		List("items", func(d *Decoder, n *Node, path string) {
			if s, ok := d.Scalar(n, path, "a string"); ok {
				p.Items = append(p.Items, s)
			}
		}),
	}
}

func decodeProbe(pairs ...string) (probe, []string) {
	var d Decoder
	var p probe
	d.Decode(Flat(append([]string{"need", "x"}, pairs...)...), "p", 1, &p)
	var got []string
	for _, pr := range d.Problems() {
		got = append(got, fmt.Sprintf("%d %s: %s", pr.Line-1, pr.Path, pr.Msg))
	}
	return p, got
}

func TestFields(t *testing.T) {
	p, probs := decodeProbe("str", "0123", "word", "two", "kind", "hidraw", "n", "10", "big", "1099511627776",
		"baud", "115200", "on", "true", "wait", "90d", "short", "500ms", "id", "0x0C2E", "addr", "0.0.0.0:9731",
		"local", "localhost:1", "dev", "/dev/ttyS0", "devname", "front_1")
	want := probe{Str: "0123", Word: "two", Kind: HIDRaw, N: 10, Big: 1 << 40, Speed: 115200, On: true,
		Wait: 90 * 24 * time.Hour, Short: 500 * time.Millisecond, ID: 0x0c2e, Addr: "0.0.0.0:9731",
		Local: "localhost:1", Dev: "/dev/ttyS0", DevName: "front_1", Need: "x"}
	if len(probs) > 0 || fmt.Sprint(p) != fmt.Sprint(want) {
		t.Fatalf("got %+v %v\nwant %+v", p, probs, want)
	}
	// An unquoted 1200 is a YAML number, but a USB id is hex.
	if p, _ := decodeProbe("id", "1200"); p.ID != 0x1200 {
		t.Errorf("id 1200 = %04x", p.ID)
	}
}

// TestProblems: one problem per bad value, at its line, in the words
// devices.yaml's users read; the other keys are still decoded.
func TestProblems(t *testing.T) {
	for _, tc := range []struct{ key, value, want string }{
		{"word", "three", `want one of one, two, got "three"`},
		{"kind", "usb", `want one of tty, hidraw, got "usb"`},
		{"n", "11", `want a number from 1 to 10, got 11`},
		{"n", "fast", `want a number, got "fast"`},
		{"n", "1.5", `want a whole number, got 1.5`},
		{"baud", "9601", `want a standard speed (9600, 115200), got 9601`},
		{"on", "yes", `want true or false, got "yes"`},
		{"wait", "30", `want a duration with a unit like "30s" or "2m", got 30`},
		{"wait", "soon", `want a duration like "30s", "2m" or "90d", got "soon"`},
		{"wait", "-1s", `want a positive duration, got "-1s"`},
		{"short", "2s", `want a duration up to 1s, got "2s"`},
		{"id", "zc2e", `want 4 hex digits like "0c2e", got "zc2e"`},
		{"id", "10d3f", `want 4 hex digits like "0c2e", got "10d3f"`},
		{"addr", "localhost", `want host:port like 127.0.0.1:8080, got "localhost"`},
		{"addr", "a:0", `want a port from 1 to 65535, got "0"`},
		{"local", "10.0.0.1:80", `must be a loopback address like 127.0.0.1:8080, got "10.0.0.1:80"`},
		{"dev", "ttyS0", `want an absolute device path, got "ttyS0"`},
		{"devname", "bad name!", `want up to 32 letters, digits, - or _, got "bad name!"`},
		{"sub", "x", `want a mapping of keys, got "x"`},
		{"items", "x", `want a list (lines starting with "- "), got "x"`},
		{"nedd", "x", `unknown key (did you mean need?)`},
		{"colour", "x", `unknown key`},
	} {
		_, got := decodeProbe("str", "ok", tc.key, tc.value)
		want := fmt.Sprintf("2 p.%s: %s", tc.key, tc.want)
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s: %s: %q, want %q", tc.key, tc.value, got, want)
		}
	}
	var d Decoder
	var p probe
	d.Decode(Flat("str", "x"), "p", 7, &p)
	if pr := d.Problems(); len(pr) != 1 || pr[0].Line != 7 || pr[0].Path != "p.need" || !pr[0].Missing || pr[0].Msg != "required: something" {
		t.Errorf("missing key: %+v", pr)
	}
	d = Decoder{}
	d.Decode(Flat("need", ""), "p", 7, &p)
	if pr := d.Problems(); len(pr) != 1 || pr[0].Line != 1 || pr[0].Missing {
		t.Errorf("empty required key: %+v", pr)
	}
	d = Decoder{}
	d.Decode(&Node{Kind: MapNode, Keys: []Key{{Name: "a", Line: 3, Value: &Node{Kind: IntNode, Line: 3, Text: "99999999999999999999", TooLarge: true}}}}, "", 1, &sub{})
	if pr := d.Problems(); len(pr) != 1 || pr[0].Msg != "number 99999999999999999999 is too large" {
		t.Errorf("%+v", pr)
	}
}

// entry is a driver's settings for the registry tests.
type entry struct {
	Port Port
	Mode string
}

func (e *entry) Fields() []Field    { return append(e.Port.Fields(), Enum("mode", &e.Mode, "a", "b")) }
func (e *entry) Check(sec *Section) { e.Port.Check(sec) }

type other struct{ Speed int }

func (o *other) Fields() []Field { return []Field{Baud(&o.Speed, 9600)} }

func newTestRegistry() *Registry[any] {
	r := NewRegistry[any]("thing", "driver", true)
	Register(r, "port", entry{Mode: "a"})
	Register(r, "other", other{Speed: 9600})
	return r
}

func TestRegistry(t *testing.T) {
	r := newTestRegistry()
	if !slices.Equal(r.Names(), []string{"other", "port"}) {
		t.Fatalf("Names %v", r.Names())
	}
	if keys, ok := r.Keys("port"); !ok || !slices.Equal(keys, []string{"port", "vid", "pid", "serial", "mode"}) {
		t.Fatalf("Keys %v", keys)
	}
	for _, tc := range []struct {
		pairs []string
		want  string // problems, joined
		name  string
		path  string
	}{
		{[]string{"driver", "port", "name", "front", "vid", "1a86", "pid", "7523"}, "", "front", "/dev/kiosk/front"},
		{[]string{"driver", "port", "vid", "1a86", "pid", "7523"}, "", "port", "/dev/kiosk/port"},
		{[]string{"driver", "port", "port", "/dev/x", "baud", "9600"}, "3 t.baud: not used by driver port", "port", "/dev/x"},
		{[]string{"driver", "port", "port", "/dev/x", "mdoe", "a"}, "3 t.mdoe: unknown key (did you mean mode?)", "port", "/dev/x"},
		{[]string{"driver", "port", "vid", "1a86"}, "1 t.pid: vid and pid go together; give both or neither|" +
			"1 t.port: required for driver port (e.g. /dev/serial/by-id/… or /dev/kiosk/pole), or give vid and pid", "port", ""},
		{[]string{"driver", "port", "port", "dev"}, `2 t.port: want an absolute device path, got "dev"`, "port", ""},
		{[]string{"name", "x", "port", "/dev/x"}, "1 t.driver: required: other or port", "x", ""},
		{[]string{"driver", "prot", "port", "/dev/x", "colour", "red"}, `1 t.driver: want one of other, port, got "prot"|3 t.colour: unknown key`, "", ""},
		{[]string{"driver", "port", "name", "a b", "port", "/dev/x"}, `2 t.name: want up to 32 letters, digits, - or _, got "a b"`, "port", "/dev/x"},
	} {
		var d Decoder
		e, ok := r.Decode(&d, Flat(tc.pairs...), "t")
		var got []string
		for _, p := range d.Problems() {
			got = append(got, fmt.Sprintf("%d %s: %s", p.Line, p.Path, p.Msg))
		}
		path := ""
		if s, isEntry := e.Settings.(entry); isEntry {
			path = s.Port.Path
		}
		if strings.Join(got, "|") != tc.want || e.Name != tc.name || path != tc.path || ok != (e.Settings != nil) {
			t.Errorf("%q:\n got %q %+v\nwant %q name %q path %q", tc.pairs, got, e, tc.want, tc.name, tc.path)
		}
	}
}

func TestManyKeepsIndices(t *testing.T) {
	r := newTestRegistry()
	var list []Entry[any]
	var d Decoder
	n := &Node{Kind: ListNode, Items: []*Node{{Kind: StringNode, Text: "x", Line: 2}, Flat("driver", "other")}}
	if Many("things", r, &list).decode(&d, Key{Name: "things", Value: n}, "things") != true || len(list) != 2 ||
		list[0].Settings != nil || list[1].Driver != "other" {
		t.Fatalf("%+v %+v", list, d.Problems())
	}
	if p := d.Problems(); len(p) != 1 || p[0].Path != "things[0]" {
		t.Errorf("%+v", p)
	}
	var one Entry[any]
	if One("thing", r, &one).decode(&d, Key{Name: "thing", Value: &Node{Kind: NullNode}}, "thing") || one.Driver != "" {
		t.Errorf("a null section is no entry: %+v", one)
	}
}

func TestRegisterRefusesMistakes(t *testing.T) {
	for name, f := range map[string]func(){
		"twice":        func() { r := newTestRegistry(); Register(r, "port", entry{}) },
		"empty name":   func() { Register(NewRegistry[any]("x", "driver", false), "", entry{}) },
		"registry key": func() { Register(NewRegistry[any]("x", "port", false), "p", entry{}) },
		"not a V":      func() { Register(NewRegistry[fmt.Stringer]("x", "driver", false), "p", entry{}) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

func TestResource(t *testing.T) {
	if r := ResourceOf(entry{Port: Port{Path: "/dev/x"}}.Port); r.Kind != TTY || r.Path != "/dev/x" || r.Kind.String() != "tty" {
		t.Errorf("%+v", r)
	}
	if r := ResourceOf(3); r.Kind != None {
		t.Errorf("%+v", r)
	}
	if s := (USB{VID: 0x0c2e, PID: 0x10d3, Serial: "A", Interface: 1}).String(); s != `0c2e:10d3 serial "A" interface 1` {
		t.Errorf("USB %s", s)
	}
}
