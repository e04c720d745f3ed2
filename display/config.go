package display

import (
	"fmt"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/scanner/settings"
)

// Settings is one display's devices.yaml entry as its driver declared and
// decoded it: a value of the driver's own type (vfd.Settings, …), whose
// keys, defaults and rules live with the driver.
type Settings interface {
	// Open builds the display called name. Drivers for devices that can be
	// unplugged (vfd) do not fail when the device is missing: they report
	// it on Show and recover by themselves.
	Open(name string, log *zap.Logger) (Display, error)
}

// Config is one displays entry of devices.yaml: its name (the driver's
// when not given), its driver and the driver's settings.
type Config = settings.Entry[Settings]

// Drivers holds the display drivers linked into this binary. A
// driver registers with settings.Register(display.Drivers, name, defaults)
// in its init; a configuration loader reads each displays entry with
// Drivers.Decode.
var Drivers = settings.NewRegistry[Settings]("display", "driver", true)

// New builds the display of c, with a logger that names it. A driver's
// error is returned as it is ("web: listen tcp …"): the caller names the
// entry, so it is not named twice.
func New(c Config, log *zap.Logger) (Display, error) {
	if c.Settings == nil {
		return nil, fmt.Errorf("display %q: no settings (decode the entry with display.Drivers)", c.Name)
	}
	if log == nil {
		log = zap.NewNop()
	}
	return c.Settings.Open(c.Name, log.With(zap.String("display", c.Name)))
}
