package display

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"go.uber.org/zap"
)

// Config is one display entry of devices.yaml. Each driver reads the fields
// that concern it; Validate rejects bad values before anything is opened.
type Config struct {
	Name   string // unique name, used in logs, metrics and health
	Driver string // "vfd", "web", "term", "log"

	// vfd: a 2x20 pole display on a serial port.
	Port       string // /dev/kiosk/display0, /dev/serial/by-id/…
	Baud       int    // 9600 when 0
	CommandSet string // "epson" (default), "cd5220", "aedex", "logic"
	Codepage   string // "cp866" (default), "cp1251", "cp437"
	// CodepageN is the n of the code page command (ESC t n); 0 means the
	// usual number for Codepage (17 for cp866, unconfirmed per model) and
	// -1 sends no code page command at all.
	CodepageN int

	// web: the page for the kiosk browser.
	Listen string // loopback host:port, "127.0.0.1:8765" when empty

	// term: ANSI terminal.
	Output string // "stdout" (default) or "stderr"
}

// ConfigError says which display and which devices.yaml field is wrong, so
// the configuration loader can point at the line.
type ConfigError struct {
	Display string // Config.Name
	Field   string // devices.yaml key: "driver", "port", "command_set", …
	Reason  string
}

// Error names the display, the field and what is wrong with it.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("display %q: %s: %s", e.Display, e.Field, e.Reason)
}

// ErrUnknownDriver is wrapped by Validate when Config.Driver names no
// registered driver (did you import the driver package?).
var ErrUnknownDriver = errors.New("display: unknown driver")

// Driver builds displays of one kind. Validate must not touch any device.
type Driver struct {
	Validate func(Config) error
	Open     func(Config, *zap.Logger) (Display, error)
}

var (
	regMu   sync.RWMutex
	drivers = map[string]Driver{}
)

// Register makes a driver available to New under name; driver packages call
// it from init. Registering a name twice panics: it is a programming error.
func Register(name string, d Driver) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := drivers[name]; dup || d.Validate == nil || d.Open == nil {
		panic("display: bad or duplicate Register " + name)
	}
	drivers[name] = d
}

// Drivers lists the registered driver names, sorted.
func Drivers() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	names := make([]string, 0, len(drivers))
	for n := range drivers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func lookup(c Config) (Driver, error) {
	if strings.TrimSpace(c.Name) == "" {
		return Driver{}, &ConfigError{Display: c.Name, Field: "name", Reason: "must not be empty"}
	}
	regMu.RLock()
	d, ok := drivers[c.Driver]
	regMu.RUnlock()
	if !ok {
		return Driver{}, fmt.Errorf("%w: %w", &ConfigError{Display: c.Name, Field: "driver",
			Reason: fmt.Sprintf("unknown %q (known: %s)", c.Driver, strings.Join(Drivers(), ", "))}, ErrUnknownDriver)
	}
	return d, nil
}

// Validate checks c without opening anything.
func Validate(c Config) error {
	d, err := lookup(c)
	if err != nil {
		return err
	}
	return d.Validate(c)
}

// ValidateAll validates every entry and checks that names are unique.
func ValidateAll(cs []Config) error {
	var errs []error
	var seen []string
	for _, c := range cs {
		if slices.Contains(seen, c.Name) {
			errs = append(errs, &ConfigError{Display: c.Name, Field: "name", Reason: "used twice"})
		}
		seen = append(seen, c.Name)
		if err := Validate(c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// New validates c and builds its display. Drivers for devices that can be
// unplugged (vfd) do not fail when the device is missing: they report it on
// Show and recover by themselves.
func New(c Config, log *zap.Logger) (Display, error) {
	d, err := lookup(c)
	if err != nil {
		return nil, err
	}
	if err := d.Validate(c); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	disp, err := d.Open(c, log.With(zap.String("display", c.Name)))
	if err != nil {
		return nil, fmt.Errorf("display %q: %w", c.Name, err)
	}
	return disp, nil
}
