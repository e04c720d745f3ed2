package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/display/logdisplay"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/fiscal"
	"github.com/kioskd/kioskd/scanner/settings"
)

// maxFileSize bounds what Load reads; a real devices.yaml is a few KiB.
const maxFileSize = 1 << 20

// Load reads and parses the file at path. Every problem, including a missing
// or unreadable file, comes back as *Error.
func Load(path string) (*Config, error) { return load(path, false) }

// LoadDevices is Load for a tool that needs only the devices (`kioskd
// udev-rules`): a missing kassa or service section, or a key of theirs that
// `kioskd run` needs, is no problem for it. Everything that is written
// must still be right.
func LoadDevices(path string) (*Config, error) { return load(path, true) }

func load(path string, devicesOnly bool) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, &Error{Problems: []*Problem{{File: path, Msg: err.Error(), Err: err}}}
	}
	return parse(path, data, devicesOnly)
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no such file (copy the example devices.yaml there): %w", err)
		}
		return nil, fmt.Errorf("cannot read: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", st.Mode().Type())
	}
	if st.Size() > maxFileSize {
		return nil, fmt.Errorf("file is %d bytes; a devices.yaml is a few KiB", st.Size())
	}
	return os.ReadFile(path)
}

// Parse parses and validates devices.yaml held in data. name is used in
// messages and to resolve relative paths (certificates, journal, socket)
// against its directory. It does no I/O and opens no device: each driver's
// keys are checked by the settings it registered. On any problem it returns
// a nil Config and an *Error listing all of them.
func Parse(name string, data []byte) (*Config, error) { return parse(name, data, false) }

func parse(name string, data []byte, devicesOnly bool) (*Config, error) {
	c := &Config{
		File:    name,
		Journal: DefaultJournal,
		API:     API{Socket: DefaultSocket},
		Log:     Log{Level: "info", Format: "console"},
		Timeouts: Timeouts{Amount: payment.DefaultAmountTimeout, Payment: payment.DefaultPaymentTimeout,
			Handover: payment.DefaultHandoverTimeout, Call: payment.DefaultCallTimeout},
		Language:        display.Russian,
		DuplicateWindow: payment.DefaultDuplicateWindow,
		Retention:       payment.DefaultRetention,
		Metrics:         Metrics{Enabled: true},
		Fiscal:          settings.Entry[fiscal.Settings]{Driver: "none", Name: "none", Settings: fiscal.None{}},
	}
	var d settings.Decoder
	if body := document(&d, data); body != nil {
		d.Decode(body, "", body.Line, (*file)(c))
		crossCheck(&d, c, body)
		vendingCheck(&d, c, body)
	}
	var probs []*Problem
	for _, p := range d.Problems() {
		if devicesOnly && p.Missing && (strings.HasPrefix(p.Path, "kassa") || strings.HasPrefix(p.Path, "service")) {
			continue
		}
		probs = append(probs, &Problem{File: name, Line: p.Line, Field: p.Path, Msg: p.Msg})
	}
	if len(probs) > 0 {
		// File order reads best; problems without a line come first.
		sort.SliceStable(probs, func(i, j int) bool { return probs[i].Line < probs[j].Line })
		return nil, &Error{Problems: probs}
	}
	if c.Kassa.Handover == "" {
		switch {
		case c.Vending.Settings != nil:
			c.Kassa.Handover = HandoverVending // the machine reports each vend
		case c.Kassa.FixedAmount > 0:
			c.Kassa.Handover = HandoverAuto // one price, no host to confirm
		default:
			c.Kassa.Handover = HandoverHost
		}
	}
	if len(c.Displays) == 0 {
		// Without a display the log still tells the operator what happens.
		c.Displays = []display.Config{{Name: "log", Driver: "log", Settings: logdisplay.Settings{}}}
	}
	resolvePaths(c)
	return c, nil
}

// crossCheck finds problems between entries: duplicate names, and two
// entries that would fight over one port, USB device or address.
func crossCheck(d *settings.Decoder, c *Config, body *settings.Node) {
	names := map[string]map[string]string{"scanners": {}, "displays": {}}
	claimed := map[settings.ResourceKind]map[string]string{}
	claim := func(kind settings.ResourceKind, key, path string, at int, what string) {
		if key == "" {
			return
		}
		if claimed[kind] == nil {
			claimed[kind] = map[string]string{}
		}
		if prev, ok := claimed[kind][key]; ok {
			d.Errorf(at, path, "%s %s is already used by %s", what, key, prev)
			return
		}
		claimed[kind][key] = path
	}
	entry := func(list string, i int, name string, at int, s any) {
		if s == nil {
			return // not decoded: already reported
		}
		p := fmt.Sprintf("%s[%d]", list, i)
		if prev, ok := names[list][name]; ok {
			d.Errorf(at, p+".name", "name %s is already used by %s", name, prev)
		} else {
			names[list][name] = p + ".name"
		}
		switch r := settings.ResourceOf(s); r.Kind {
		case settings.TTY:
			claim(r.Kind, r.Path, p+".port", at, "port")
		case settings.HIDRaw, settings.USBDevice:
			claim(settings.USBDevice, r.USB.String(), p, at, "device")
		case settings.Listen:
			claim(r.Kind, r.Addr, p+".listen", at, "address")
		}
	}
	for i, s := range c.Scanners {
		entry("scanners", i, s.Name, s.Line, s.Settings)
	}
	for i, v := range c.Displays {
		entry("displays", i, v.Name, v.Line, v.Settings)
	}
	if r := settings.ResourceOf(c.Vending.Settings); r.Kind == settings.TTY {
		claim(r.Kind, r.Path, "vending.port", keyLine(body, "vending", "port"), "port")
	}
	claim(settings.Listen, c.API.Listen, "api.listen", 0, "address")
	claim(settings.Listen, c.Metrics.Listen, "metrics.listen", 0, "address")
}

// vendingCheck keeps the kassa and the vending section consistent: a
// vending machine sets each price and reports each hand-over itself.
func vendingCheck(d *settings.Decoder, c *Config, body *settings.Node) {
	handover, fixed := keyLine(body, "kassa", "handover"), keyLine(body, "kassa", "fixed_amount")
	if c.Vending.Settings == nil {
		if c.Kassa.Handover == HandoverVending {
			d.Errorf(handover, "kassa.handover", "vending needs a vending section: the machine's MDB adapter, whose vend results are the hand-over (see the example devices.vending.yaml: udev/ in the sources, /usr/share/doc/kioskd/examples/ when installed)")
		}
		return
	}
	if c.Kassa.Handover != "" && c.Kassa.Handover != HandoverVending {
		d.Errorf(handover, "kassa.handover", "%s does not go with the vending section: the machine's vend result is the hand-over; write vending or leave handover out", c.Kassa.Handover)
	}
	if c.Kassa.FixedAmount > 0 {
		d.Errorf(fixed, "kassa.fixed_amount", "the vending machine asks the price of each vend: remove fixed_amount")
	}
}

// keyLine is the line of the key at path in the file, or 0.
func keyLine(n *settings.Node, path ...string) int {
	line := 0
	for _, name := range path {
		i := slices.IndexFunc(n.Keys, func(k settings.Key) bool { return k.Name == name })
		if n.Kind != settings.MapNode || i < 0 {
			return 0
		}
		line, n = n.Keys[i].Line, n.Keys[i].Value
	}
	return line
}

// resolvePaths makes file paths absolute relative to the config file, so a
// test or a demo directory can ship certificates next to its devices.yaml.
func resolvePaths(c *Config) {
	dir := filepath.Dir(c.File)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	for _, p := range []*string{&c.Service.CA, &c.Service.Cert, &c.Service.Key, &c.Journal, &c.API.Socket, &c.API.TokenFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}
