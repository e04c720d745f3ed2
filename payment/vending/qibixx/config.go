package qibixx

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/vending"
	"github.com/kioskd/kioskd/scanner/settings"
)

// MDB addresses of a cashless device.
const (
	AddressCashless1 = 0x10 // cashless device #1
	AddressCashless2 = 0x60 // cashless device #2, beside a card reader on #1
)

// DriverName is the name this driver registers under (vending.driver).
const DriverName = "qibixx"

func init() { settings.Register(vending.Drivers, DriverName, DefaultConfig()) }

// Config is the devices.yaml `vending:` section for a Qibixx adapter. Its
// keys are declared by Fields and its rules by check, here and nowhere
// else; the example udev/devices.vending.yaml documents them. Start from
// DefaultConfig and Validate a Config made in code.
type Config struct {
	Port          string            // the adapter's tty
	Address       int               // AddressCashless1 or AddressCashless2
	ScaleFactor   int               // MDB scale factor
	DecimalPlaces int               // MDB decimal places
	Currency      string            // RUB (ISO 4217 643)
	VendTimeout   time.Duration     // time to approve a vend request
	AlwaysIdle    bool              // selection first
	Catalogue     vending.Catalogue // item → product
}

var _ vending.Settings = Config{}

// DefaultConfig returns the defaults: cashless #1, scale 1 with 2 decimals
// (1 kopeck per unit), RUB, 60 s to approve, always idle, no catalogue.
func DefaultConfig() Config {
	return Config{
		Address:       AddressCashless1,
		ScaleFactor:   1,
		DecimalPlaces: 2,
		Currency:      "RUB",
		VendTimeout:   60 * time.Second,
		AlwaysIdle:    true,
	}
}

// Fields declares the keys. They read the values' types only; every rule
// on the values is in check, so that a Config made in code (Validate) and
// one read from devices.yaml (Check) obey the same rules.
func (c *Config) Fields() []settings.Field {
	return []settings.Field{
		settings.String("port", &c.Port).Required("required: the adapter's tty, e.g. /dev/serial/by-id/usb-Qibixx…-if00 or /dev/ttyAMA0"),
		settings.Int("address", &c.Address, math.MinInt, math.MaxInt),
		settings.Int("scale_factor", &c.ScaleFactor, math.MinInt, math.MaxInt),
		settings.Int("decimal_places", &c.DecimalPlaces, math.MinInt, math.MaxInt),
		settings.String("currency", &c.Currency),
		settings.Duration("vend_timeout", &c.VendTimeout),
		settings.Bool("always_idle", &c.AlwaysIdle),
		settings.List("catalogue", c.decodeProduct),
	}
}

// decodeProduct reads one catalogue entry: item, name and price.
func (c *Config) decodeProduct(d *settings.Decoder, n *settings.Node, path string) {
	var e catalogueEntry
	d.Decode(n, path, n.Line, &e)
	if !e.ok {
		return
	}
	if _, dup := c.Catalogue[e.item]; dup {
		d.Errorf(n.Line, path+".item", "item %d is already in the catalogue", e.item)
		return
	}
	if c.Catalogue == nil {
		c.Catalogue = vending.Catalogue{}
	}
	c.Catalogue[e.item] = e.product
}

type catalogueEntry struct {
	item    int
	product vending.Product
	ok      bool // item and name were given
}

func (e *catalogueEntry) Fields() []settings.Field {
	return []settings.Field{
		settings.Int("item", &e.item, math.MinInt, math.MaxInt).Required("required: the item (selection) number the machine sends"),
		settings.String("name", &e.product.Name).Required("required: the product's name, for the display and the receipt"),
		settings.Int("price", &e.product.Price, math.MinInt64, math.MaxInt64),
	}
}

func (e *catalogueEntry) Check(sec *settings.Section) {
	e.ok = sec.Has("item") && !sec.Failed("item") && sec.Has("name") && !sec.Failed("name")
}

// Check applies the rules to the keys that were read (settings.Checker):
// each problem is reported at its key's line; the catalogue's at the line
// of the catalogue key, naming the item.
func (c *Config) Check(sec *settings.Section) {
	c.check(func(p problem) {
		if p.item != nil || !sec.Failed(p.key) {
			sec.Errorf(p.key, "%s", p.text())
		}
	})
}

// Opens is the adapter's tty, for the checks between devices.yaml entries
// and `kioskd check`.
func (c Config) Opens() settings.Resource { return settings.Resource{Kind: settings.TTY, Path: c.Port} }

// Open returns the Device of c (vending.Settings).
func (c Config) Open(log *zap.Logger) (vending.Adapter, error) { return New(c, log, Options{}) }

// AnswerWithin is the vend timeout the adapter is configured with
// (vending.Settings).
func (c Config) AnswerWithin() time.Duration { return c.VendTimeout }

// ErrConfig is wrapped by every *ConfigError.
var ErrConfig = errors.New("qibixx: invalid vending configuration")

// ConfigError is a configuration value Validate rejected.
type ConfigError struct {
	Field  string // the key, e.g. "scale_factor" or "catalogue.12.price"
	Reason string // what is wrong and what is allowed
}

// Error names the field and the problem.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("qibixx: vending.%s: %s", e.Field, e.Reason)
}

// Unwrap returns ErrConfig.
func (e *ConfigError) Unwrap() error { return ErrConfig }

// currencies maps the names Currency accepts to ISO 4217 numeric codes.
var currencies = map[string]int{"RUB": 643, "643": 643}

// Validate checks every field of a Config made in code; the first problem
// is returned as a *ConfigError naming the field.
func (c Config) Validate() error {
	var first *ConfigError
	c.check(func(p problem) {
		if first == nil {
			first = &ConfigError{Field: p.field(), Reason: p.reason}
		}
	})
	if first != nil {
		return first
	}
	return nil
}

// problem is one broken rule: the key, and for a catalogue entry its item
// and the entry's key.
type problem struct {
	key    string
	item   *int
	sub    string // "name", "price" or "" for the item number itself
	reason string
}

// field is the dotted path: "scale_factor", "catalogue.12.price".
func (p problem) field() string {
	f := p.key
	if p.item != nil {
		f += "." + strconv.Itoa(*p.item)
	}
	if p.sub != "" {
		f += "." + p.sub
	}
	return f
}

// text is the message at the key's line, naming the catalogue entry.
func (p problem) text() string {
	switch {
	case p.item != nil && p.sub != "":
		return fmt.Sprintf("item %d, %s: %s", *p.item, p.sub, p.reason)
	case p.item != nil:
		return fmt.Sprintf("item %d: %s", *p.item, p.reason)
	}
	return p.reason
}

// check is every rule on the values, in key order; report gets each
// problem.
func (c Config) check(report func(problem)) {
	bad := func(key, format string, args ...any) {
		report(problem{key: key, reason: fmt.Sprintf(format, args...)})
	}
	if c.Port == "" || !filepath.IsAbs(c.Port) {
		bad("port", "want an absolute device path such as /dev/serial/by-id/usb-Qibixx…-if00 or /dev/ttyAMA0, got %q", c.Port)
	}
	if c.Address != AddressCashless1 && c.Address != AddressCashless2 {
		bad("address", "%#x: want 0x10 (cashless #1) or 0x60 (cashless #2)", c.Address)
	}
	m := c.money()
	moneyOK := false
	switch err := m.Validate(); {
	case c.ScaleFactor < 1 || c.ScaleFactor > 255:
		bad("scale_factor", "%d: want 1–255", c.ScaleFactor)
	case err != nil:
		bad("decimal_places", "%v", err)
	default:
		moneyOK = true
	}
	if _, ok := currencies[c.Currency]; !ok {
		bad("currency", "%q: want RUB (Smart Pay pays in rubles)", c.Currency)
	}
	if !c.AlwaysIdle {
		// Without always-idle the reader must open a session (C,START)
		// before the customer can select; kioskd pays for a selection.
		bad("always_idle", "false is not supported: kioskd approves a selection the machine already made (MDB always-idle); leave it true")
	}
	if c.VendTimeout < time.Second || c.VendTimeout > 255*time.Second || c.VendTimeout%time.Second != 0 {
		bad("vend_timeout", "%v: want whole seconds from 1s to 255s (MDB sends it in one byte)", c.VendTimeout)
	}
	items := make([]int, 0, len(c.Catalogue))
	for item := range c.Catalogue {
		items = append(items, item)
	}
	slices.Sort(items) // report the same problem first every time
	for _, item := range items {
		p := c.Catalogue[item]
		entry := func(sub, format string, args ...any) {
			report(problem{key: "catalogue", item: &item, sub: sub, reason: fmt.Sprintf(format, args...)})
		}
		if item < 0 || item > maxItem {
			entry("", "item number %d: want 0–65535", item)
			continue
		}
		if err := productName(p.Name); err != nil {
			entry("name", "%v", err)
		}
		if p.Price < 0 {
			entry("price", "%d: want kopecks ≥ 0 (0: any price)", p.Price)
		} else if !moneyOK {
			continue // the price cannot be judged without a valid money unit
		} else if _, err := m.Format(p.Price); err != nil {
			entry("price", "%d kopecks is not a whole number of the machine's money unit (%d kopecks)", p.Price, m.Unit())
		}
	}
}

func productName(s string) error {
	switch {
	case s == "":
		return errors.New("required: the product's name")
	case !utf8.ValidString(s):
		return errors.New("not valid UTF-8")
	case utf8.RuneCountInString(s) > 128:
		return errors.New("longer than 128 characters")
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%q has a control character", s)
		}
	}
	return nil
}

// money returns the validated config's Money.
func (c Config) money() Money {
	return Money{ScaleFactor: c.ScaleFactor, DecimalPlaces: c.DecimalPlaces}
}

// setconf returns the C,SETCONF commands that configure the adapter for c,
// in the order they are sent. The keys are those of the vendor's cashless
// slave parameter table [V, see doc.go].
func (c Config) setconf() []Command {
	idle := "0"
	if c.AlwaysIdle {
		idle = "1"
	}
	pairs := [][2]string{
		{"mdb-address", fmt.Sprintf("0x%x", c.Address)},
		{"mdb-currency-code", fmt.Sprintf("0x1%03d", currencies[c.Currency])},
		{"mdb-scale-factor", strconv.Itoa(c.ScaleFactor)},
		{"mdb-decimal-places", strconv.Itoa(c.DecimalPlaces)},
		{"mdb-always-idle", idle},
		{"mdb-timeout-vend", strconv.Itoa(int(c.VendTimeout / time.Second))},
	}
	cmds := make([]Command, len(pairs))
	for i, p := range pairs {
		cmd, err := CmdSetConf(p[0], p[1])
		if err != nil {
			panic(err) // the values are built above from validated fields
		}
		cmds[i] = cmd
	}
	return cmds
}
