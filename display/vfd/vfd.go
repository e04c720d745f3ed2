package vfd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/tarm/serial"
	"go.uber.org/zap"

	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/scanner/settings"
)

func init() { settings.Register(display.Drivers, "vfd", Defaults) }

// Settings is a pole display's devices.yaml entry. Its keys, defaults and
// rules are declared here and in Options.
type Settings struct {
	Port    settings.Port // port, and vid/pid/serial for `kioskd udev-rules`
	Baud    int
	Options Options
}

// Defaults are the settings of an entry that gives only its port: 9600
// baud, Epson commands, CP866.
var Defaults = Settings{Baud: 9600, Options: Options{CommandSet: DefaultCommandSet, Codepage: DefaultCodepage}}

// bauds are the speeds pole displays are sold with.
var bauds = []int{1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200}

// Fields declares the keys of a pole display.
func (s *Settings) Fields() []settings.Field {
	return append(append(s.Port.Fields(), settings.Baud(&s.Baud, bauds...)), s.Options.Fields()...)
}

// Check completes the port from the USB identity (see settings.Port).
func (s *Settings) Check(sec *settings.Section) { s.Port.Check(sec) }

// Opens is the tty, for `kioskd udev-rules` and `kioskd check`.
func (s Settings) Opens() settings.Resource { return s.Port.Opens() }

// Open returns the display; the port is opened by the first Show (see New).
func (s Settings) Open(_ string, log *zap.Logger) (display.Display, error) { return New(s, log) }

var _ display.Settings = Settings{}

// ErrWaiting is wrapped by Show while the port is closed after a failed open
// and the next attempt is not due yet (with the error of that open).
var ErrWaiting = errors.New("waiting to retry")

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

// New returns the display of s; a zero Baud is the default's. The port is
// opened by the first Show, so a display missing at start-up does not stop
// the agent: it is reported by Show's error and picked up once it appears.
func New(s Settings, log *zap.Logger) (*Display, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if s.Baud == 0 {
		s.Baud = Defaults.Baud
	}
	d := &Display{
		log:  log,
		port: s.Port.Path,
		now:  time.Now,
		open: func() (io.WriteCloser, error) {
			// ReadTimeout only matters for reads, which we never do.
			return serial.OpenPort(&serial.Config{Name: s.Port.Path, Baud: s.Baud, ReadTimeout: time.Second})
		},
	}
	d.pw = portWriter{d}
	r, err := NewRenderer(d.pw, s.Options)
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
		return err
	}
	return nil
}

func (d *Display) openLocked() error {
	if now := d.now(); now.Before(d.nextOpen) {
		return fmt.Errorf("vfd: %w (%w, %v left)", d.lastErr, ErrWaiting, d.nextOpen.Sub(now).Round(time.Millisecond))
	}
	w, err := d.open()
	if err != nil {
		d.delay = min(max(2*d.delay, minReopen), maxReopen)
		d.nextOpen = d.now().Add(d.delay)
		d.lastErr = err
		return fmt.Errorf("vfd: %w", err) // tarm/serial's *fs.PathError: "open <port>: …"
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
