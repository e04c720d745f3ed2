package logdisplay

import (
	"context"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/scanner/settings"
)

func init() { settings.Register(display.Drivers, "log", Settings{}) }

// Settings is a log display's devices.yaml entry: it has no keys.
type Settings struct{}

// Fields declares no keys.
func (*Settings) Fields() []settings.Field { return nil }

// Open logs screens to log.
func (Settings) Open(_ string, log *zap.Logger) (display.Display, error) { return New(log), nil }

var _ display.Settings = Settings{}

// Display logs screens at Info level.
type Display struct{ log *zap.Logger }

// New returns a Display logging to log.
func New(log *zap.Logger) *Display {
	if log == nil {
		log = zap.NewNop()
	}
	return &Display{log: log}
}

// Show logs s with its state, the text the customer reads and the amount in
// kopecks. Message is the service's customer-facing text (a decline reason),
// never a credential.
func (d *Display) Show(ctx context.Context, s display.Screen) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := display.Long(s)
	fields := []zap.Field{zap.Stringer("state", s.State), zap.String("title", t.Title)}
	if t.Amount != "" {
		fields = append(fields, zap.Int64("amount", s.Amount))
	}
	if s.Message != "" {
		fields = append(fields, zap.String("message", s.Message))
	}
	d.log.Info("customer display", fields...)
	return nil
}

// Close does nothing: the logger belongs to the caller.
func (d *Display) Close() error { return nil }

var _ display.Display = (*Display)(nil)
