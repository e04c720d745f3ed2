package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/scanner"
)

// maxFileSize bounds what Load reads; a real devices.yaml is a few KiB.
const maxFileSize = 1 << 20

// Load reads and parses the file at path. Every problem, including a missing
// or unreadable file, comes back as *Error.
func Load(path string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, &Error{Problems: []*Problem{{File: path, Msg: err.Error(), Err: err}}}
	}
	return Parse(path, data)
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
// against its directory. It does no I/O. On any problem it returns a nil
// Config and an *Error listing all of them.
func Parse(name string, data []byte) (*Config, error) {
	d := &decoder{file: name, anchors: map[string]ast.Node{}}
	c := d.parse(data)
	if len(d.probs) > 0 {
		// File order reads best; problems without a line come first.
		sort.SliceStable(d.probs, func(i, j int) bool { return d.probs[i].Line < d.probs[j].Line })
		return nil, &Error{Problems: d.probs}
	}
	return c, nil
}

var topKeys = []string{"kassa", "service", "journal", "api", "scanners", "displays", "log",
	"language", "timeouts", "duplicate_window", "retention", "metrics"}

func (d *decoder) parse(data []byte) *Config {
	c := &Config{
		File:    d.file,
		Journal: DefaultJournal,
		Kassa:   Kassa{},
		API:     API{Socket: DefaultSocket},
		Log:     Log{Level: "info", Format: "console"},
		Timeouts: Timeouts{Amount: DefaultAmountTimeout, Payment: DefaultPaymentTimeout,
			Handover: DefaultHandoverTimeout, Call: DefaultCallTimeout},
		Language:        display.Russian,
		DuplicateWindow: DefaultDuplicateWindow,
		Retention:       DefaultRetention,
		Metrics:         Metrics{Enabled: true},
	}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		d.syntax(err)
		return nil
	}
	if len(f.Docs) != 1 || f.Docs[0].Body == nil {
		if len(f.Docs) > 1 {
			d.problem(line(f.Docs[1]), "", "more than one YAML document; keep one")
		} else {
			d.problem(0, "", "the file is empty; see the example devices.yaml")
		}
		return nil
	}
	seen := map[string]entry{}
	for _, e := range d.mapping(f.Docs[0].Body, "") {
		seen[e.key] = e
		switch e.key {
		case "kassa":
			d.kassa(e, &c.Kassa)
		case "service":
			d.service(e, &c.Service)
		case "journal":
			if s := d.str(e); s != "" {
				c.Journal = s
			}
		case "api":
			d.api(e, &c.API)
		case "scanners":
			for i, n := range d.sequence(e) {
				c.Scanners = append(c.Scanners, d.scanner(n, fmt.Sprintf("scanners[%d]", i)))
			}
		case "displays":
			for i, n := range d.sequence(e) {
				c.Displays = append(c.Displays, d.display(n, fmt.Sprintf("displays[%d]", i)))
			}
		case "log":
			d.log(e, &c.Log)
		case "language":
			if s := d.enum(e, string(display.Russian), string(display.English)); s != "" {
				c.Language = display.Lang(s)
			}
		case "timeouts":
			d.timeouts(e, &c.Timeouts)
		case "duplicate_window":
			if v, ok := d.duration(e); ok {
				c.DuplicateWindow = v
			}
		case "retention":
			if v, ok := d.duration(e); ok {
				c.Retention = v
			}
		case "metrics":
			d.metrics(e, &c.Metrics)
		default:
			d.unknown(e, topKeys...)
		}
	}
	root := line(f.Docs[0].Body)
	for _, k := range []string{"kassa", "service", "scanners"} {
		if _, ok := seen[k]; !ok {
			d.problem(root, k, "required section is missing")
		}
	}
	if e, ok := seen["scanners"]; ok && len(c.Scanners) == 0 && isNullOrSeq(d.resolve(e.value)) {
		d.problem(line(seen["scanners"].value), "scanners", "at least one scanner is needed")
	}
	if len(c.Displays) == 0 {
		// Without a display the log still tells the operator what happens.
		c.Displays = []Display{{Config: display.Config{Name: DisplayLog, Driver: DisplayLog}}}
	}
	d.crossCheck(c)
	d.resolvePaths(c)
	return c
}

// syntax turns a go-yaml error into a problem with its line.
func (d *decoder) syntax(err error) {
	var ye interface {
		GetToken() *token.Token
		GetMessage() string
	}
	if errors.As(err, &ye) {
		at := 0
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			at = tk.Position.Line
		}
		d.probs = append(d.probs, &Problem{File: d.file, Line: at, Msg: "YAML syntax: " + ye.GetMessage(), Err: err})
		return
	}
	d.probs = append(d.probs, &Problem{File: d.file, Msg: "YAML syntax: " + err.Error(), Err: err})
}

func (d *decoder) kassa(e entry, k *Kassa) {
	handover := ""
	var idSet bool
	for _, f := range d.mapping(e.value, e.path) {
		switch f.key {
		case "id":
			k.ID = d.str(f)
			idSet = true
			if k.ID == "" {
				d.problem(line(f.value), f.path, "must not be empty")
			} else if !printable(k.ID) || len(k.ID) > 64 {
				d.problem(line(f.value), f.path, "want up to 64 printable characters, got %q", k.ID)
			}
		case "fixed_amount":
			if v, ok := d.integer(f, 0, 1<<40); ok {
				k.FixedAmount = v
			}
		case "handover":
			handover = d.enum(f, HandoverHost, HandoverAuto)
		default:
			d.unknown(f, "id", "fixed_amount", "handover")
		}
	}
	if !idSet {
		d.problem(line(e.keyN), e.path+".id", "required: the kassa id registered with the service")
	}
	switch {
	case handover != "":
		k.Handover = handover
	case k.FixedAmount > 0:
		k.Handover = HandoverAuto // a vending machine has no host to confirm
	default:
		k.Handover = HandoverHost
	}
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func (d *decoder) service(e entry, s *Service) {
	required := map[string]bool{"url": false, "ca": false, "cert": false, "key": false}
	for _, f := range d.mapping(e.value, e.path) {
		switch f.key {
		case "url":
			s.URL = d.str(f)
			required["url"] = s.URL != ""
			if s.URL != "" {
				u, err := url.Parse(s.URL)
				switch {
				case err != nil:
					d.problem(line(f.value), f.path, "not a URL: %v", err)
				case u.Scheme != "https":
					d.problem(line(f.value), f.path, "want an https:// URL (the service needs mTLS), got %q", s.URL)
				case u.Host == "":
					d.problem(line(f.value), f.path, "URL %q has no host", s.URL)
				}
			}
		case "ca":
			s.CA = d.str(f)
			required["ca"] = s.CA != ""
		case "cert":
			s.Cert = d.str(f)
			required["cert"] = s.Cert != ""
		case "key":
			s.Key = d.str(f)
			required["key"] = s.Key != ""
		default:
			d.unknown(f, "url", "ca", "cert", "key")
		}
	}
	for _, k := range []string{"url", "ca", "cert", "key"} {
		if !required[k] {
			d.problem(line(e.keyN), e.path+"."+k, "required")
		}
	}
}

func (d *decoder) api(e entry, a *API) {
	for _, f := range d.mapping(e.value, e.path) {
		switch f.key {
		case "socket":
			if s := d.str(f); s != "" {
				a.Socket = s
			}
		case "listen":
			a.Listen = d.str(f)
			if a.Listen != "" {
				d.loopback(f, a.Listen)
			}
		case "token_file":
			a.TokenFile = d.str(f)
		default:
			d.unknown(f, "socket", "listen", "token_file")
		}
	}
	if a.Listen != "" && a.TokenFile == "" {
		d.problem(line(e.keyN), e.path+".token_file", "required when api.listen is set (TCP callers need a bearer token)")
	}
}

// loopback checks that addr is host:port on a loopback address: the API can
// start and refund payments, so it never listens on the network.
func (d *decoder) loopback(f entry, addr string) {
	host, ok := d.hostPort(f, addr)
	if !ok {
		return
	}
	if host == "localhost" {
		return
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		d.problem(line(f.value), f.path, "must be a loopback address like 127.0.0.1:8080, got %q", addr)
	}
}

func (d *decoder) hostPort(f entry, addr string) (string, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		d.problem(line(f.value), f.path, "want host:port like 127.0.0.1:8080, got %q", addr)
		return "", false
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		d.problem(line(f.value), f.path, "want a port from 1 to 65535, got %q", port)
		return "", false
	}
	return host, true
}

func (d *decoder) log(e entry, l *Log) {
	for _, f := range d.mapping(e.value, e.path) {
		switch f.key {
		case "level":
			if s := d.enum(f, "debug", "info", "warn", "error"); s != "" {
				l.Level = s
			}
		case "format":
			if s := d.enum(f, "console", "json"); s != "" {
				l.Format = s
			}
		default:
			d.unknown(f, "level", "format")
		}
	}
}

func (d *decoder) timeouts(e entry, t *Timeouts) {
	for _, f := range d.mapping(e.value, e.path) {
		var dst *time.Duration
		switch f.key {
		case "amount":
			dst = &t.Amount
		case "payment":
			dst = &t.Payment
		case "handover":
			dst = &t.Handover
		case "call":
			dst = &t.Call
		default:
			d.unknown(f, "amount", "payment", "handover", "call")
			continue
		}
		if v, ok := d.duration(f); ok {
			*dst = v
		}
	}
}

func (d *decoder) metrics(e entry, m *Metrics) {
	for _, f := range d.mapping(e.value, e.path) {
		switch f.key {
		case "enabled":
			if v, ok := d.boolean(f); ok {
				m.Enabled = v
			}
		case "listen":
			m.Listen = d.str(f)
			if m.Listen != "" {
				d.hostPort(f, m.Listen)
			}
		default:
			d.unknown(f, "enabled", "listen")
		}
	}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$`)

// checkName validates a device name: it ends up in udev symlinks, metric
// labels and log fields, so it stays short and plain.
func (d *decoder) checkName(at int, path, name string) {
	if name == "" {
		d.problem(at, path+".name", "required: a short unique name such as \"front\"")
	} else if !nameRE.MatchString(name) {
		d.problem(at, path+".name", "want up to 32 letters, digits, - or _, got %q", name)
	}
}

var standardBauds = []int64{1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600}

func (d *decoder) baud(f entry) (int, bool) {
	v, ok := d.integer(f, 1, 4000000)
	if !ok {
		return 0, false
	}
	for _, b := range standardBauds {
		if v == b {
			return int(v), true
		}
	}
	d.problem(line(f.value), f.path, "want a standard speed (9600, 19200, 38400, 57600, 115200, …), got %d", v)
	return 0, false
}

// scannerKeys lists the keys each scanner driver reads. vid, pid and serial
// on a serial scanner only feed `kioskd udev-rules`.
var scannerKeys = map[string][]string{
	"serial": {"name", "driver", "port", "baud", "data_bits", "parity", "stop_bits", "framing", "gap",
		"host_commands", "vid", "pid", "serial"},
	"hid": {"name", "driver", "vid", "pid", "serial", "interface", "mode", "layout", "report", "framing", "gap"},
	"usb": {"name", "driver", "vid", "pid", "serial", "interface", "mode", "layout", "report", "framing", "gap"},
}

var allScannerKeys = []string{"name", "driver", "port", "baud", "data_bits", "parity", "stop_bits", "framing",
	"gap", "host_commands", "vid", "pid", "serial", "interface", "mode", "layout", "report"}

func (d *decoder) scanner(n ast.Node, path string) Scanner {
	s := Scanner{Config: scanner.Config{Interface: -1}, Line: line(n)}
	if !isMapping(d.resolve(n)) {
		d.mapping(n, path) // reports what it is instead; nothing else to say
		return s
	}
	entries := d.mapping(n, path)
	byKey := map[string]entry{}
	for _, f := range entries {
		byKey[f.key] = f
	}
	if f, ok := byKey["driver"]; ok {
		s.Driver = d.enum(f, "serial", "hid", "usb")
	} else {
		d.problem(s.Line, path+".driver", "required: serial, hid or usb")
	}
	allowed := scannerKeys[s.Driver]
	var vidSet, pidSet bool
	for _, f := range entries {
		if !contains(allScannerKeys, f.key) {
			d.unknown(f, allScannerKeys...)
			continue
		}
		if s.Driver != "" && !contains(allowed, f.key) {
			d.problem(line(f.keyN), f.path, "not used by driver %s", s.Driver)
			continue
		}
		switch f.key {
		case "name":
			s.Name = d.str(f)
		case "driver":
		case "port":
			s.Port = d.str(f)
		case "baud":
			s.Baud, _ = d.baud(f)
		case "data_bits":
			if v, ok := d.integer(f, 5, 8); ok {
				s.DataBits = int(v)
			}
		case "parity":
			s.Parity = d.enum(f, "none", "even", "odd")
		case "stop_bits":
			if v, ok := d.integer(f, 1, 2); ok {
				s.StopBits = int(v)
			}
		case "framing":
			s.Framing = d.enum(f, "auto", "cr", "lf", "crlf", "gap")
		case "gap":
			s.Gap, _ = d.duration(f)
		case "host_commands":
			s.HostCommands = d.enum(f, "none", "honeywell", "datalogic", "zebra-ssi")
			if s.HostCommands == "none" {
				s.HostCommands = ""
			}
		case "vid":
			s.VID, _ = d.hex16(f)
			vidSet = true
		case "pid":
			s.PID, _ = d.hex16(f)
			pidSet = true
		case "serial":
			s.Serial = d.str(f)
		case "interface":
			if v, ok := d.integer(f, 0, 255); ok {
				s.Interface = int(v)
			}
		case "mode":
			s.Mode = d.enum(f, "pos", "keyboard")
		case "layout":
			s.Layout = d.enum(f, "us", "uk", "de", "fr")
		case "report":
			s.Report = d.enum(f, "honeywell", "newland")
		}
	}
	d.checkName(s.Line, path, s.Name)
	if vidSet != pidSet {
		d.problem(s.Line, path+".vid", "vid and pid go together; give both or neither")
	}
	switch s.Driver {
	case "serial":
		if s.Port == "" && vidSet && pidSet && s.Name != "" {
			// kioskd udev-rules creates exactly this link for the device.
			s.Port = "/dev/kiosk/" + s.Name
		}
		if s.Port == "" {
			d.problem(s.Line, path+".port", "required for driver serial (e.g. /dev/serial/by-id/…), or give vid and pid")
		} else if !strings.HasPrefix(s.Port, "/") {
			d.problem(line(byKey["port"].value), path+".port", "want an absolute device path, got %q", s.Port)
		}
		s.Baud = or(s.Baud, DefaultSerialBaud)
		s.DataBits = or(s.DataBits, 8)
		s.StopBits = or(s.StopBits, 1)
		if s.Parity == "" {
			s.Parity = "none"
		}
	case "hid", "usb":
		if !vidSet || !pidSet {
			d.problem(s.Line, path+".vid", "driver %s needs vid and pid, e.g. vid: \"0c2e\", pid: \"10d3\"", s.Driver)
		}
		if s.Mode == "" {
			s.Mode = "pos"
		}
		if s.Mode == "pos" && s.Layout != "" {
			d.problem(line(byKey["layout"].keyN), path+".layout", "only used with mode: keyboard")
		}
		if s.Mode == "keyboard" && s.Report != "" {
			d.problem(line(byKey["report"].keyN), path+".report", "only used with mode: pos")
		}
		if s.Mode == "keyboard" && s.Layout == "" {
			s.Layout = "us"
		}
		if s.Mode == "pos" && s.Report == "" {
			s.Report = "honeywell"
		}
	}
	if s.Framing == "" {
		s.Framing = "auto"
	}
	if s.Gap == 0 {
		s.Gap = 50 * time.Millisecond
	}
	return s
}

var displayKeys = map[string][]string{
	DisplayVFD:  {"name", "driver", "port", "baud", "command_set", "codepage", "codepage_table", "vid", "pid", "serial"},
	DisplayWeb:  {"name", "driver", "listen"},
	DisplayTerm: {"name", "driver", "output"},
	DisplayLog:  {"name", "driver"},
}

var allDisplayKeys = []string{"name", "driver", "port", "baud", "command_set", "codepage", "codepage_table",
	"vid", "pid", "serial", "listen", "output"}

func (d *decoder) display(n ast.Node, path string) Display {
	v := Display{Line: line(n)}
	if !isMapping(d.resolve(n)) {
		d.mapping(n, path)
		return v
	}
	entries := d.mapping(n, path)
	byKey := map[string]entry{}
	for _, f := range entries {
		byKey[f.key] = f
	}
	if f, ok := byKey["driver"]; ok {
		v.Driver = d.enum(f, DisplayVFD, DisplayWeb, DisplayTerm, DisplayLog)
	} else {
		d.problem(v.Line, path+".driver", "required: vfd, web, term or log")
	}
	allowed := displayKeys[v.Driver]
	var vidSet, pidSet bool
	for _, f := range entries {
		if !contains(allDisplayKeys, f.key) {
			d.unknown(f, allDisplayKeys...)
			continue
		}
		if v.Driver != "" && !contains(allowed, f.key) {
			d.problem(line(f.keyN), f.path, "not used by driver %s", v.Driver)
			continue
		}
		switch f.key {
		case "name":
			v.Name = d.str(f)
		case "driver":
		case "port":
			v.Port = d.str(f)
		case "baud":
			v.Baud, _ = d.baud(f)
		case "command_set":
			v.CommandSet = d.enum(f, "epson", "cd5220", "aedex", "logic")
		case "codepage":
			v.Codepage = d.enum(f, "cp866", "cp1251", "cp437")
		case "codepage_table":
			// display.Config.CodepageN: 0 = the usual number, -1 = send none.
			if x, ok := d.integer(f, -1, 255); ok {
				v.CodepageN = int(x)
			}
		case "vid":
			v.VID, _ = d.hex16(f)
			vidSet = true
		case "pid":
			v.PID, _ = d.hex16(f)
			pidSet = true
		case "serial":
			v.Serial = d.str(f)
		case "listen":
			v.Listen = d.str(f)
			if v.Listen != "" {
				d.hostPort(f, v.Listen)
			}
		case "output":
			v.Output = d.enum(f, "stdout", "stderr")
		}
	}
	if v.Name == "" && v.Driver != "" {
		v.Name = v.Driver // one display per driver is the common case
	}
	d.checkName(v.Line, path, v.Name)
	if vidSet != pidSet {
		d.problem(v.Line, path+".vid", "vid and pid go together; give both or neither")
	}
	switch v.Driver {
	case DisplayVFD:
		if v.Port == "" && vidSet && pidSet && v.Name != "" {
			v.Port = "/dev/kiosk/" + v.Name
		}
		if v.Port == "" {
			d.problem(v.Line, path+".port", "required for driver vfd (e.g. /dev/kiosk/pole), or give vid and pid")
		} else if !strings.HasPrefix(v.Port, "/") {
			d.problem(line(byKey["port"].value), path+".port", "want an absolute device path, got %q", v.Port)
		}
		v.Baud = or(v.Baud, DefaultDisplayBaud)
		if v.CommandSet == "" {
			v.CommandSet = "epson"
		}
		if v.Codepage == "" {
			v.Codepage = "cp866"
		}
	case DisplayWeb:
		if v.Listen == "" {
			v.Listen = DefaultWebListen
		}
	case DisplayTerm:
		if v.Output == "" {
			v.Output = "stdout"
		}
	}
	return v
}

// crossCheck finds problems between entries: duplicate names and two
// entries that would fight over one device or address.
func (d *decoder) crossCheck(c *Config) {
	names := map[string]string{}
	ports := map[string]string{}
	usbIDs := map[string]string{}
	addrs := map[string]string{}
	claim := func(m map[string]string, key, path string, at int, what string) {
		if key == "" {
			return
		}
		if prev, ok := m[key]; ok {
			d.problem(at, path, "%s %s is already used by %s", what, key, prev)
			return
		}
		m[key] = path
	}
	for i, s := range c.Scanners {
		p := fmt.Sprintf("scanners[%d]", i)
		claim(names, s.Name, p+".name", s.Line, "name")
		if s.Driver == "serial" {
			claim(ports, s.Port, p+".port", s.Line, "port")
		} else if s.VID != 0 {
			claim(usbIDs, fmt.Sprintf("%04x:%04x serial %q interface %d", s.VID, s.PID, s.Serial, s.Interface), p, s.Line, "device")
		}
	}
	displayNames := map[string]string{}
	for i, v := range c.Displays {
		p := fmt.Sprintf("displays[%d]", i)
		claim(displayNames, v.Name, p+".name", v.Line, "name")
		claim(ports, v.Port, p+".port", v.Line, "port")
		claim(addrs, v.Listen, p+".listen", v.Line, "address")
	}
	claim(addrs, c.API.Listen, "api.listen", 0, "address")
	claim(addrs, c.Metrics.Listen, "metrics.listen", 0, "address")
}

// resolvePaths makes file paths absolute relative to the config file, so a
// test or a demo directory can ship certificates next to its devices.yaml.
func (d *decoder) resolvePaths(c *Config) {
	dir := filepath.Dir(d.file)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&c.Service.CA)
	abs(&c.Service.Cert)
	abs(&c.Service.Key)
	abs(&c.Journal)
	abs(&c.API.Socket)
	abs(&c.API.TokenFile)
}

func isMapping(n ast.Node) bool {
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return true
	}
	return false
}

func isNullOrSeq(n ast.Node) bool {
	switch n.(type) {
	case nil, *ast.NullNode, *ast.SequenceNode:
		return true
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func or(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
