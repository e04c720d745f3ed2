package serial

import (
	"path/filepath"
	"slices"
	"strconv"
	"time"

	tarm "github.com/tarm/serial"

	"github.com/kioskd/kioskd/scanner"
	"github.com/kioskd/kioskd/scanner/frame"
)

// Settings is a validated serial scanner configuration.
type Settings struct {
	Name     string // scanner name, Code.Source
	Path     string // device path or udev symlink
	Baud     int
	DataBits int
	Parity   tarm.Parity
	StopBits tarm.StopBits
	Host     HostCommands
	Frame    frame.Config
}

// bauds are the rates tarm/serial can set on Linux.
var bauds = []int{50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200,
	38400, 57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000, 1500000,
	2000000, 2500000, 3000000, 3500000, 4000000}

// ParseConfig validates the serial fields of cfg and fills in the defaults
// (9600 8N1, auto framing). Errors are *scanner.ConfigError naming the field.
func ParseConfig(cfg scanner.Config) (Settings, error) {
	bad := func(field, reason string) (Settings, error) {
		return Settings{}, &scanner.ConfigError{Scanner: cfg.Name, Field: field, Reason: reason}
	}
	s := Settings{Name: cfg.Name, Path: cfg.Port, Baud: cfg.Baud, DataBits: cfg.DataBits}
	if cfg.Port == "" || !filepath.IsAbs(cfg.Port) {
		return bad("port", "want an absolute device path such as /dev/kiosk/scanner0 or /dev/serial/by-id/…, got "+strconv.Quote(cfg.Port))
	}
	if s.Baud == 0 {
		s.Baud = 9600
	}
	if !slices.Contains(bauds, s.Baud) {
		return bad("baud", strconv.Itoa(s.Baud)+" is not a standard rate (9600, 19200, 38400, 57600, 115200…)")
	}
	if s.DataBits == 0 {
		s.DataBits = 8
	}
	if s.DataBits < 5 || s.DataBits > 8 {
		return bad("data_bits", strconv.Itoa(s.DataBits)+": want 5, 6, 7 or 8")
	}
	switch cfg.Parity {
	case "", "none":
		s.Parity = tarm.ParityNone
	case "even":
		s.Parity = tarm.ParityEven
	case "odd":
		s.Parity = tarm.ParityOdd
	default:
		return bad("parity", strconv.Quote(cfg.Parity)+": want none, even or odd")
	}
	switch cfg.StopBits {
	case 0, 1:
		s.StopBits = tarm.Stop1
	case 2:
		s.StopBits = tarm.Stop2
	default:
		return bad("stop_bits", strconv.Itoa(cfg.StopBits)+": want 1 or 2")
	}
	host, err := ParseHostCommands(cfg.HostCommands)
	if err != nil {
		return bad("host_commands", err.Error())
	}
	s.Host = host
	mode, err := frame.ParseMode(cfg.Framing)
	if err != nil {
		return bad("framing", err.Error())
	}
	if cfg.Gap < 0 || cfg.Gap > 10*time.Second {
		return bad("gap", cfg.Gap.String()+": want between 0 (default 50ms) and 10s")
	}
	s.Frame = frame.Config{Mode: mode, Gap: cfg.Gap}
	return s, nil
}
