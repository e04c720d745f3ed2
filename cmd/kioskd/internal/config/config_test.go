package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/scanner"
	"github.com/kioskd/kioskd/scanner/frame"
	"github.com/kioskd/kioskd/scanner/serial"
	"github.com/kioskd/kioskd/scanner/settings"
)

const minimal = `kassa:
  id: k1
service:
  url: https://pay.example/api
  ca: ca.pem
  cert: client.pem
  key: client.key
scanners:
  - name: s1
    driver: serial
    port: /dev/ttyACM0
`

func TestExampleDevicesYAMLIsValid(t *testing.T) {
	c, err := Load("../../../../devices.yaml")
	if err != nil {
		t.Fatalf("the example devices.yaml must pass validation:\n%v", err)
	}
	// Every registered driver appears in the example, so the docs cover
	// all of them.
	drivers := map[string]bool{}
	for _, s := range c.Scanners {
		drivers["scanner:"+s.Driver] = true
	}
	for _, v := range c.Displays {
		drivers["display:"+v.Driver] = true
	}
	for _, name := range scanner.Drivers.Names() {
		if !drivers["scanner:"+name] {
			t.Errorf("example devices.yaml has no scanner with driver %s", name)
		}
	}
	for _, name := range display.Drivers.Names() {
		if !drivers["display:"+name] {
			t.Errorf("example devices.yaml has no display with driver %s", name)
		}
	}
	if s, ok := c.Scanners[0].Settings.(serial.Settings); !ok || s.Baud != 115200 || s.Host != serial.Honeywell {
		t.Errorf("scanner 0 = %+v", c.Scanners[0])
	}
	if r := settings.ResourceOf(c.Scanners[1].Settings); r.Kind != settings.HIDRaw || r.USB.VID != 0x0c2e || r.USB.PID != 0x10d3 {
		t.Errorf("scanner 1 = %+v", r)
	}
	if c.Retention != 90*24*time.Hour {
		t.Errorf("retention = %v", c.Retention)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse("/etc/kioskd/devices.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if c.Kassa.Handover != HandoverHost {
		t.Errorf("handover = %q, want host when fixed_amount is 0", c.Kassa.Handover)
	}
	if c.Journal != DefaultJournal || c.API.Socket != DefaultSocket {
		t.Errorf("journal %q socket %q", c.Journal, c.API.Socket)
	}
	if c.Service.Cert != "/etc/kioskd/client.pem" || c.Service.Key != "/etc/kioskd/client.key" {
		t.Errorf("relative paths not resolved against the file: %q %q", c.Service.Cert, c.Service.Key)
	}
	rel, err := Parse("devices.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if rel.Service.CA != filepath.Join(wd, "ca.pem") {
		t.Errorf("ca %q is not absolute", rel.Service.CA)
	}
	if c.Language != display.Russian || c.Log.Level != "info" || c.Log.Format != "console" {
		t.Errorf("language %q log %+v", c.Language, c.Log)
	}
	if s, ok := c.Scanners[0].Settings.(serial.Settings); !ok || s.Baud != 9600 || s.DataBits != 8 || s.StopBits != 1 ||
		s.Parity != serial.ParityNone || s.Frame.Mode != frame.Auto || s.Port.Path != "/dev/ttyACM0" {
		t.Errorf("scanner defaults: %+v", c.Scanners[0])
	}
	if len(c.Displays) != 1 || c.Displays[0].Driver != "log" {
		t.Errorf("displays default = %+v, want the log", c.Displays)
	}
	if c.Timeouts.Call != payment.DefaultCallTimeout || !c.Metrics.Enabled {
		t.Errorf("timeouts %+v metrics %+v", c.Timeouts, c.Metrics)
	}
	pc := c.PaymentConfig()
	if pc.KassaID != "k1" || pc.Handover != HandoverHost || pc.Timeouts.Amount != payment.DefaultAmountTimeout ||
		pc.DuplicateWindow != payment.DefaultDuplicateWindow || pc.Retention != payment.DefaultRetention {
		t.Errorf("PaymentConfig = %+v", pc)
	}
	dc := c.DisplayConfigs()
	if len(dc) != 1 || dc[0].Name != "log" || dc[0].Driver != "log" {
		t.Errorf("DisplayConfigs = %+v", dc)
	}
	sc := c.ScannerConfigs()
	if len(sc) != 1 || sc[0].Name != "s1" || sc[0].Driver != "serial" || sc[0].Line != 9 {
		t.Errorf("ScannerConfigs = %+v", sc)
	}
	sp := c.SmartPayConfig()
	if sp.URL != "https://pay.example/api" || sp.CertFile != "/etc/kioskd/client.pem" || sp.AttemptTimeout != 0 {
		t.Errorf("SmartPay = %+v", sp)
	}
}

func TestFixedAmountDefaultsToAutoHandover(t *testing.T) {
	c, err := Parse("d.yaml", []byte(strings.Replace(minimal, "id: k1", "id: k1\n  fixed_amount: 15000", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Kassa.FixedAmount != 15000 || c.Kassa.Handover != HandoverAuto {
		t.Errorf("kassa = %+v", c.Kassa)
	}
}

func TestSerialPortFromUSBIdentity(t *testing.T) {
	src := strings.Replace(minimal, "port: /dev/ttyACM0", "vid: \"1a86\"\n    pid: 7523", 1)
	c, err := Parse("d.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if r := settings.ResourceOf(c.Scanners[0].Settings); r.Path != "/dev/kiosk/s1" || r.USB.VID != 0x1a86 || r.USB.PID != 0x7523 {
		t.Errorf("scanner = %+v", r)
	}
}

func TestAnchorsAndAliases(t *testing.T) {
	src := minimal + `  - name: s2
    driver: serial
    port: /dev/ttyACM1
    baud: &fast 115200
  - name: s3
    driver: serial
    port: /dev/ttyACM2
    baud: *fast
`
	c, err := Parse("d.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if c.Scanners[2].Settings.(serial.Settings).Baud != 115200 {
		t.Errorf("alias not followed: %+v", c.Scanners[2])
	}
}

// TestProblems checks that each kind of mistake is reported with the line
// and field, and that all problems of a file are collected in one run.
func TestProblems(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want []string
	}{
		{"wrong type", strings.Replace(minimal, "port: /dev/ttyACM0", "port: /dev/ttyACM0\n    baud: fast", 1),
			[]string{`d.yaml:12: scanners[0].baud: want a number, got "fast"`}},
		{"unknown key with suggestion", strings.Replace(minimal, "id: k1", "id: k1\n  fixed_amout: 100", 1),
			[]string{`d.yaml:3: kassa.fixed_amout: unknown key (did you mean fixed_amount?)`}},
		{"unknown top-level key", minimal + "colour: blue\n",
			[]string{`d.yaml:12: colour: unknown key`}},
		{"bad hex vid", minimal + "  - name: h\n    driver: hid\n    vid: \"zc2e\"\n    pid: \"10d3\"\n",
			[]string{`d.yaml:14: scanners[1].vid: want 4 hex digits like "0c2e", got "zc2e"`}},
		{"too long pid", minimal + "  - name: h\n    driver: hid\n    vid: 0c2e\n    pid: 10d3f\n",
			[]string{`d.yaml:15: scanners[1].pid: want 4 hex digits like "0c2e", got "10d3f"`}},
		{"syntax error", "kassa:\n  id: [k1\n",
			[]string{`d.yaml:2: YAML syntax: sequence end token ']' not found`}},
		{"duplicate key", strings.Replace(minimal, "id: k1", "id: k1\n  id: k2", 1),
			[]string{`d.yaml:3: YAML syntax: mapping key "id" already defined at [2:3]`}},
		{"empty file", "# nothing yet\n", []string{`d.yaml: the file is empty; see the example devices.yaml`}},
		{"missing sections", "log:\n  level: debug\n", []string{
			`d.yaml:1: kassa: required section is missing`,
			`d.yaml:1: service: required section is missing`}},
		{"http url", strings.Replace(minimal, "https://pay.example/api", "http://pay.example/api", 1),
			[]string{`d.yaml:4: service.url: want an https:// URL (the service needs mTLS), got "http://pay.example/api"`}},
		{"api on the network", minimal + "api:\n  listen: 0.0.0.0:80\n", []string{
			`d.yaml:12: api.token_file: required when api.listen is set (TCP callers need a bearer token)`,
			`d.yaml:13: api.listen: must be a loopback address like 127.0.0.1:8080, got "0.0.0.0:80"`}},
		{"bad enum", strings.Replace(minimal, "id: k1", "id: k1\n  handover: later", 1),
			[]string{`d.yaml:3: kassa.handover: want one of host, auto, got "later"`}},
		{"bare number duration", minimal + "timeouts:\n  call: 30\n",
			[]string{`d.yaml:13: timeouts.call: want a duration with a unit like "30s" or "2m", got 30`}},
		{"key of another driver", strings.Replace(minimal, "port: /dev/ttyACM0", "port: /dev/ttyACM0\n    mode: pos", 1),
			[]string{`d.yaml:12: scanners[0].mode: not used by driver serial`}},
		{"non-standard baud", strings.Replace(minimal, "port: /dev/ttyACM0", "port: /dev/ttyACM0\n    baud: 9601", 1),
			[]string{`d.yaml:12: scanners[0].baud: want a standard speed (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600), got 9601`}},
		{"hid without ids", minimal + "  - name: h\n    driver: hid\n",
			[]string{`d.yaml:12: scanners[1].vid: driver hid needs vid and pid, e.g. vid: "0c2e", pid: "10d3"`}},
		{"layout in pos mode", minimal + "  - name: h\n    driver: hid\n    vid: 0c2e\n    pid: 10d3\n    layout: de\n",
			[]string{`d.yaml:16: scanners[1].layout: only used with mode: keyboard`}},
		{"duplicate names and ports", minimal + "  - name: s1\n    driver: serial\n    port: /dev/ttyACM0\n", []string{
			`d.yaml:12: scanners[1].name: name s1 is already used by scanners[0].name`,
			`d.yaml:12: scanners[1].port: port /dev/ttyACM0 is already used by scanners[0].port`}},
		{"scanners not a list", strings.Replace(minimal, "scanners:", "scanners: front\nx:", 1), []string{
			`d.yaml:8: scanners: want a list (lines starting with "- "), got "front"`,
			`d.yaml:9: x: unknown key`}},
		{"list item not a mapping", minimal + "  - front\n", []string{
			`d.yaml:12: scanners[1]: want a mapping of keys, got "front"`}},
		{"vfd needs a port", minimal + "displays:\n  - driver: vfd\n    command_set: ibm\n", []string{
			`d.yaml:13: displays[0].port: required for driver vfd (e.g. /dev/serial/by-id/… or /dev/kiosk/pole), or give vid and pid`,
			`d.yaml:14: displays[0].command_set: want one of aedex, cd5220, epson, logic, got "ibm"`}},
		{"unknown driver", minimal + "  - name: x\n    driver: serail\n    port: /dev/x\n", []string{
			`d.yaml:13: scanners[1].driver: want one of hid, serial, usb, got "serail"`}},
		{"typo in a driver's key", strings.Replace(minimal, "port: /dev/ttyACM0", "port: /dev/ttyACM0\n    bauds: 9600", 1), []string{
			`d.yaml:12: scanners[0].bauds: unknown key (did you mean baud?)`}},
		{"no driver", minimal + "displays:\n  - name: p\n", []string{
			`d.yaml:13: displays[0].driver: required: log, term, vfd or web`}},
		{"same web address twice", minimal + "displays:\n  - name: a\n    driver: web\n  - name: b\n    driver: web\n", []string{
			`d.yaml:15: displays[1].listen: address 127.0.0.1:8765 is already used by displays[0].listen`}},
		{"many problems at once", `kassa:
  fixed_amount: -5
service:
  url: https://x
scanners:
  - name: "bad name!"
    driver: serial
    port: relative/tty
    data_bits: 9
language: de
`, []string{
			`d.yaml:1: kassa.id: required: the kassa id registered with the service`,
			`d.yaml:2: kassa.fixed_amount: want a number from 0 to 1099511627776, got -5`,
			`d.yaml:3: service.ca: required`,
			`d.yaml:3: service.cert: required`,
			`d.yaml:3: service.key: required`,
			`d.yaml:6: scanners[0].name: want up to 32 letters, digits, - or _, got "bad name!"`,
			`d.yaml:8: scanners[0].port: want an absolute device path, got "relative/tty"`,
			`d.yaml:9: scanners[0].data_bits: want a number from 5 to 8, got 9`,
			`d.yaml:10: language: want one of ru, en, got "de"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("d.yaml", []byte(tc.src))
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not *config.Error: %v", err, err)
			}
			if want := strings.Join(tc.want, "\n"); ce.Error() != want {
				t.Errorf("problems:\n%s\nwant:\n%s", ce.Error(), want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "devices.yaml")
	_, err := Load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
	var ce *Error
	if !errors.As(err, &ce) || len(ce.Problems) != 1 || !strings.HasPrefix(ce.Problems[0].Error(), path+": no such file") {
		t.Errorf("err = %v", err)
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "devices.yaml")
	if err := os.WriteFile(path, []byte(minimal+"extra: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || err.Error() != path+":12: extra: unknown key" {
		t.Errorf("err = %v", err)
	}
}

// TestNoScanner: a kiosk whose host application owns the scanner and hands
// the codes over with POST /v1/scan has no scanners section at all.
func TestNoScanner(t *testing.T) {
	src, _, _ := strings.Cut(minimal, "scanners:")
	for _, tail := range []string{"", "scanners:\n", "scanners: []\n"} {
		c, err := Parse("d.yaml", []byte(src+tail))
		if err != nil || len(c.Scanners) != 0 {
			t.Errorf("%q: %v, scanners %+v", tail, err, c)
		}
	}
}

// TestLoadDevices: `kioskd udev-rules` needs only the devices, so a file
// without kassa and service loads for it, and not for `kioskd run`; a
// wrong value is still wrong.
func TestLoadDevices(t *testing.T) {
	_, devices, _ := strings.Cut(minimal, "scanners:")
	path := filepath.Join(t.TempDir(), "devices.yaml")
	for _, tc := range []struct{ src, err string }{
		{"scanners:" + devices, ""},
		{"service:\n  url: https://pay.example\nscanners:" + devices, ""},
		{"kassa:\n  handover: later\nscanners:" + devices, `:2: kassa.handover: want one of host, auto, got "later"`},
	} {
		if err := os.WriteFile(path, []byte(tc.src), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := LoadDevices(path)
		if tc.err == "" && (err != nil || len(c.Scanners) != 1) {
			t.Errorf("%q: %v", tc.src, err)
		}
		if tc.err != "" && (err == nil || err.Error() != path+tc.err) {
			t.Errorf("%q: err %v, want %s", tc.src, err, tc.err)
		}
		if _, err := Load(path); err == nil {
			t.Errorf("%q: Load accepted a file without the service", tc.src)
		}
	}
}

// TestExampleDocumentsEveryKey: every key a linked driver declares is
// written (and commented) in the example devices.yaml.
func TestExampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile("../../../../devices.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var d settings.Decoder
	written := map[string]bool{}
	var walk func(n *settings.Node)
	walk = func(n *settings.Node) {
		for _, k := range n.Keys {
			written[k.Name] = true
			walk(k.Value)
		}
		for _, it := range n.Items {
			walk(it)
		}
	}
	walk(document(&d, data))
	type registry interface{ Keys(string) ([]string, bool) }
	for kind, names := range map[string][]string{"scanner": scanner.Drivers.Names(), "display": display.Drivers.Names()} {
		var r registry = scanner.Drivers
		if kind == "display" {
			r = display.Drivers
		}
		for _, name := range names {
			keys, _ := r.Keys(name)
			for _, k := range keys {
				if !written[k] {
					t.Errorf("%s driver %s: key %s is not in the example devices.yaml", kind, name, k)
				}
			}
		}
	}
	if !slices.Contains(scanner.Drivers.Names(), "serial") {
		t.Fatal("drivers not linked")
	}
}
