package scanner

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/scanner/settings"
)

// Opener opens one configured scanner. The Supervisor calls it again after
// every failure, so it must not hold state that an unplug invalidates.
type Opener func(ctx context.Context) (Scanner, error)

// Settings is one scanner's devices.yaml entry as its driver declared and
// decoded it: a value of the driver's own type (serial.Settings,
// hid.Settings, …), whose keys, defaults and rules live with the driver.
type Settings interface {
	// Opener returns the function that opens the scanner called name. The
	// values were checked when they were decoded; it fails only when this
	// binary can never open such a device (hid built without cgo).
	Opener(name string, log *zap.Logger) (Opener, error)
}

// Config is one scanners entry of devices.yaml: its name, its driver and
// the driver's settings.
type Config = settings.Entry[Settings]

// Drivers holds the scanner drivers linked into this binary. A
// driver registers with settings.Register(scanner.Drivers, name, defaults)
// in its init; a configuration loader reads each scanners entry with
// Drivers.Decode.
var Drivers = settings.NewRegistry[Settings]("scanner", "driver", true)

// NewOpener returns the Opener of cfg, with a logger that names the
// scanner and its driver. A driver's error is returned as it is: the
// caller names the entry (the agent, `kioskd check`), so it is not named
// twice.
func NewOpener(cfg Config, log *zap.Logger) (Opener, error) {
	if cfg.Settings == nil {
		return nil, fmt.Errorf("scanner %q: %w: no settings (decode the entry with scanner.Drivers)", cfg.Name, ErrConfig)
	}
	if log == nil {
		log = zap.NewNop()
	}
	return cfg.Settings.Opener(cfg.Name, log.With(zap.String("scanner", cfg.Name), zap.String("driver", cfg.Driver)))
}
