package vending

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/scanner/settings"
)

// Settings is the `vending:` section of devices.yaml as its driver declared
// and decoded it: a value of the driver's own type (qibixx.Config), whose
// keys, defaults and rules live with the driver.
type Settings interface {
	// Open returns the adapter these settings describe; nothing is opened
	// until its Run.
	Open(log *zap.Logger) (Adapter, error)
	// AnswerWithin is how long the machine waits for Approve or Deny after
	// a vend request before it gives the selection up.
	AnswerWithin() time.Duration
}

// Adapter is a Machine together with the loop that drives its link.
type Adapter interface {
	Machine
	// Run opens the adapter and serves it until ctx ends, reopening it
	// after an unplug; it returns ctx's error.
	Run(ctx context.Context) error
}

// Config is the vending section of devices.yaml: its driver and the
// driver's settings.
type Config = settings.Entry[Settings]

// Drivers holds the adapter drivers linked into this binary. A driver
// registers with settings.Register(vending.Drivers, name, defaults) in its
// init; a configuration loader reads the section with settings.One.
var Drivers = settings.NewRegistry[Settings]("vending adapter", "driver", false)

// Open returns the adapter of c, with a logger that names its driver.
func Open(c Config, log *zap.Logger) (Adapter, error) {
	if c.Settings == nil {
		return nil, ErrNoSettings
	}
	if log == nil {
		log = zap.NewNop()
	}
	return c.Settings.Open(log.With(zap.String("vending", c.Driver)))
}
