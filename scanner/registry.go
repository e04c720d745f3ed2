package scanner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"go.uber.org/zap"
)

// Opener opens one configured scanner. The Supervisor calls it again after
// every failure, so it must not hold state that an unplug invalidates.
type Opener func(ctx context.Context) (Scanner, error)

// Driver validates cfg and returns an Opener for it. It must reject bad
// values (with a *ConfigError) before any device is touched, so a broken
// devices.yaml fails at start-up rather than at the first scan.
type Driver func(cfg Config, log *zap.Logger) (Opener, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]Driver{}
)

// Register makes a driver available by name. Drivers call it from init; it
// panics on an empty name, a nil driver or a name registered twice, because
// those are programming errors found at start-up.
func Register(name string, d Driver) {
	if name == "" || d == nil {
		panic("scanner: Register with empty name or nil driver")
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("scanner: driver " + name + " registered twice")
	}
	registry[name] = d
}

// Lookup returns the driver registered under name.
func Lookup(name string) (Driver, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	d, ok := registry[name]
	return d, ok
}

// Drivers returns the registered driver names, sorted.
func Drivers() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// NewOpener looks up cfg.Driver and lets it validate cfg. The error wraps
// ErrUnknownDriver (naming the registered drivers, so a missing import shows)
// or whatever the driver returned (usually a *ConfigError).
func NewOpener(cfg Config, log *zap.Logger) (Opener, error) {
	d, ok := Lookup(cfg.Driver)
	if !ok {
		return nil, fmt.Errorf("scanner %q: driver %q: %w (registered: %s)",
			cfg.Name, cfg.Driver, ErrUnknownDriver, strings.Join(Drivers(), ", "))
	}
	if log == nil {
		log = zap.NewNop()
	}
	op, err := d(cfg, log.With(zap.String("scanner", cfg.Name), zap.String("driver", cfg.Driver)))
	if err != nil {
		return nil, fmt.Errorf("scanner %q: %w", cfg.Name, err)
	}
	return op, nil
}

// NewSources validates every scanner of devices.yaml with its driver before
// any device is opened and returns them as Supervisor sources. All problems
// are reported at once (errors.Join), each naming its scanner and field.
func NewSources(cfgs []Config, log *zap.Logger) ([]Source, error) {
	var errs []error
	seen := map[string]bool{}
	srcs := make([]Source, 0, len(cfgs))
	for i, cfg := range cfgs {
		if cfg.Name == "" {
			errs = append(errs, &ConfigError{Scanner: fmt.Sprintf("#%d", i+1), Field: "name", Reason: "empty; every scanner needs a unique name"})
			continue
		}
		if seen[cfg.Name] {
			errs = append(errs, &ConfigError{Scanner: cfg.Name, Field: "name", Reason: "used by two scanners"})
			continue
		}
		seen[cfg.Name] = true
		op, err := NewOpener(cfg, log)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		srcs = append(srcs, Source{Name: cfg.Name, Open: op})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return srcs, nil
}
