package qibixx

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kioskd/kioskd/payment/vending"
)

// MDB addresses of a cashless device.
const (
	AddressCashless1 = 0x10 // cashless device #1
	AddressCashless2 = 0x60 // cashless device #2, beside a card reader on #1
)

// Config is the devices.yaml `vending:` section for a Qibixx adapter. Start
// from DefaultConfig and set what the file gives; Validate before use. The
// keys are listed, with their defaults, by ConfigKeys.
type Config struct {
	Port          string            `yaml:"port"`           // the adapter's tty
	Address       int               `yaml:"address"`        // AddressCashless1 or AddressCashless2
	ScaleFactor   int               `yaml:"scale_factor"`   // MDB scale factor
	DecimalPlaces int               `yaml:"decimal_places"` // MDB decimal places
	Currency      string            `yaml:"currency"`       // RUB (ISO 4217 643)
	VendTimeout   time.Duration     `yaml:"vend_timeout"`   // time to approve a vend request
	AlwaysIdle    bool              `yaml:"always_idle"`    // selection first
	Catalogue     vending.Catalogue `yaml:"catalogue"`      // item → product
}

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

// Key documents one configuration key, for a registry of driver settings
// and for `kioskd check`.
type Key struct {
	Name    string // the key under `vending:`
	Default string // "" when required or empty by default
	Doc     string
}

// ConfigKeys lists the keys of Config in file order.
func ConfigKeys() []Key {
	return []Key{
		{"port", "", "the adapter's serial port or ttyACM, an absolute path; prefer /dev/serial/by-id/… (required)"},
		{"address", "0x10", "MDB address: 0x10 (cashless #1) or 0x60 (cashless #2, beside a card reader)"},
		{"scale_factor", "1", "MDB scale factor, 1–255: a price P on the bus is P × scale_factor × 10^-decimal_places rubles; a machine with 16-bit prices (MDB level 1/2) then tops out at 65535 units, 655.35 ₽ with the defaults"},
		{"decimal_places", "2", "MDB decimal places, 0–3; a money unit must be a whole number of kopecks"},
		{"currency", "RUB", "the machine's currency; only RUB (ISO 4217 643) is paid by Smart Pay"},
		{"vend_timeout", "60s", "how long a vend request may wait for approval (whole seconds, 1s–255s): the customer's time to scan and pay"},
		{"always_idle", "true", "selection first: the customer selects, then pays (MDB always-idle); false for authorization-first machines"},
		{"catalogue", "", "item number → {name, price}: the product's name for the display and the receipt; a price in kopecks, when set, is checked against the machine's"},
	}
}

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

// Validate checks every field; the first problem is returned as a
// *ConfigError naming the field.
func (c Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if c.Port == "" || !filepath.IsAbs(c.Port) {
		return bad("port", "want an absolute device path such as /dev/serial/by-id/usb-Qibixx…-if00 or /dev/ttyAMA0, got %q", c.Port)
	}
	if c.Address != AddressCashless1 && c.Address != AddressCashless2 {
		return bad("address", "%#x: want 0x10 (cashless #1) or 0x60 (cashless #2)", c.Address)
	}
	m := Money{ScaleFactor: c.ScaleFactor, DecimalPlaces: c.DecimalPlaces}
	if c.ScaleFactor < 1 || c.ScaleFactor > 255 {
		return bad("scale_factor", "%d: want 1–255", c.ScaleFactor)
	}
	if err := m.Validate(); err != nil {
		return bad("decimal_places", "%v", err)
	}
	if _, ok := currencies[c.Currency]; !ok {
		return bad("currency", "%q: want RUB (Smart Pay pays in rubles)", c.Currency)
	}
	if c.VendTimeout < time.Second || c.VendTimeout > 255*time.Second || c.VendTimeout%time.Second != 0 {
		return bad("vend_timeout", "%v: want whole seconds from 1s to 255s (MDB sends it in one byte)", c.VendTimeout)
	}
	items := make([]int, 0, len(c.Catalogue))
	for item := range c.Catalogue {
		items = append(items, item)
	}
	slices.Sort(items) // report the same problem first every time
	for _, item := range items {
		p := c.Catalogue[item]
		field := "catalogue." + strconv.Itoa(item)
		if item < 0 || item > maxItem {
			return bad(field, "item number %d: want 0–65535", item)
		}
		if err := productName(p.Name); err != nil {
			return bad(field+".name", "%v", err)
		}
		if p.Price < 0 {
			return bad(field+".price", "%d: want kopecks ≥ 0 (0: any price)", p.Price)
		}
		if _, err := m.Format(p.Price); err != nil {
			return bad(field+".price", "%d kopecks is not a whole number of the machine's money unit (%d kopecks)", p.Price, m.Unit())
		}
	}
	return nil
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
