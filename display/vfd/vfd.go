package vfd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/tarm/serial"
	"go.uber.org/zap"

	"github.com/kioskd/kioskd/display"
)

func init() {
	display.Register("vfd", display.Driver{
		Validate: Validate,
		Open: func(c display.Config, log *zap.Logger) (display.Display, error) {
			return New(c, log)
		},
	})
}

// bauds are the speeds pole displays are sold with.
var bauds = []int{1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200}

// ErrWaiting is wrapped by Show while the port is closed after a failed open
// and the next attempt is not due yet.
var ErrWaiting = errors.New("vfd: port not open, waiting to retry")

// Validate checks the vfd fields of c without opening anything.
func Validate(c display.Config) error {
	if c.Port == "" || !filepath.IsAbs(c.Port) {
		return &display.ConfigError{Display: c.Name, Field: "port",
			Reason: fmt.Sprintf("%q must be an absolute device path, e.g. /dev/serial/by-id/…", c.Port)}
	}
	if c.Baud != 0 && !slices.Contains(bauds, c.Baud) {
		return &display.ConfigError{Display: c.Name, Field: "baud",
			Reason: fmt.Sprintf("%d is not one of %v", c.Baud, bauds)}
	}
	return options(c).Validate(c.Name)
}

func options(c display.Config) Options {
	return Options{CommandSet: c.CommandSet, Codepage: c.Codepage, CodepageN: c.CodepageN}
}

// Display is a pole display on a serial port. It is safe for concurrent use.
type Display struct {
	log  *zap.Logger
	port string
	open func() (io.WriteCloser, error)
	now  func() time.Time

	mu       sync.Mutex
	w        io.WriteCloser // nil while closed
	r        *Renderer
	pw       portWriter
	delay    time.Duration // wait before the next open after a failed one
	nextOpen time.Time
	lastErr  error
	closed   bool
}

const (
	minReopen = 250 * time.Millisecond
	maxReopen = 5 * time.Second
)

// portWriter lets the Renderer write to whatever port is open right now.
type portWriter struct{ d *Display }

func (p portWriter) Write(b []byte) (int, error) { return p.d.w.Write(b) }

// New validates c and returns the display. The port is opened by the first
// Show, so a display missing at start-up does not stop the agent: it is
// reported by Show's error and picked up once it appears.
func New(c display.Config, log *zap.Logger) (*Display, error) {
	if err := Validate(c); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	baud := c.Baud
	if baud == 0 {
		baud = 9600
	}
	d := &Display{
		log:  log,
		port: c.Port,
		now:  time.Now,
		open: func() (io.WriteCloser, error) {
			// ReadTimeout only matters for reads, which we never do.
			return serial.OpenPort(&serial.Config{Name: c.Port, Baud: baud, ReadTimeout: time.Second})
		},
	}
	d.pw = portWriter{d}
	r, err := NewRenderer(d.pw, options(c))
	if err != nil {
		return nil, err
	}
	d.r = r
	return d, nil
}

// Show writes s to the display, opening the port first if needed. A write
// error closes the port; the next Show opens it again.
func (d *Display) Show(ctx context.Context, s display.Screen) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("vfd %s: %w", d.port, io.ErrClosedPipe)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if d.w == nil {
		if err := d.openLocked(); err != nil {
			return err
		}
	}
	if err := d.r.Show(ctx, s); err != nil {
		// Unplugged (EIO/ENODEV) or worse: drop the port; the next Show
		// opens it again by its stable path.
		d.log.Warn("pole display write failed, closing the port", zap.String("port", d.port), zap.Error(err))
		_ = d.w.Close()
		d.w = nil
		return fmt.Errorf("vfd %s: %w", d.port, err)
	}
	return nil
}

func (d *Display) openLocked() error {
	if now := d.now(); now.Before(d.nextOpen) {
		return fmt.Errorf("vfd %s: %w (%v left): %w", d.port, ErrWaiting, d.nextOpen.Sub(now).Round(time.Millisecond), d.lastErr)
	}
	w, err := d.open()
	if err != nil {
		d.delay = min(max(2*d.delay, minReopen), maxReopen)
		d.nextOpen = d.now().Add(d.delay)
		d.lastErr = err
		return fmt.Errorf("vfd %s: open: %w", d.port, err)
	}
	if d.lastErr != nil {
		d.log.Info("pole display reopened", zap.String("port", d.port))
	}
	d.w, d.delay, d.lastErr = w, 0, nil
	d.r.Reset()
	return nil
}

// Close closes the port. Show fails afterwards; Close may be called again.
func (d *Display) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.w == nil {
		return nil
	}
	err := d.w.Close()
	d.w = nil
	return err
}

var _ display.Display = (*Display)(nil)
