package serial

import (
	"context"

	tarm "github.com/tarm/serial"
	"go.uber.org/zap"

	"github.com/kioskd/kioskd/scanner"
	"github.com/kioskd/kioskd/scanner/frame"
	"github.com/kioskd/kioskd/scanner/settings"
)

// DriverName is the name this driver registers under.
const DriverName = "serial"

func init() { settings.Register(scanner.Drivers, DriverName, Defaults) }

// Settings is a serial scanner's devices.yaml entry. Its keys, defaults
// and rules are declared here (Fields, Check) and nowhere else.
type Settings struct {
	Name     string        // scanner name, Code.Source; set by Opener
	Port     settings.Port // port, and vid/pid/serial for `kioskd udev-rules`
	Baud     int
	DataBits int // 5–8
	Parity   Parity
	StopBits int // 1 or 2
	Host     HostCommands
	Frame    frame.Config
}

// Defaults are the settings of an entry that gives only its port: 9600 8N1,
// no host commands, auto framing.
var Defaults = Settings{Baud: 9600, DataBits: 8, Parity: ParityNone, StopBits: 1}

// bauds are the rates scanners are set to.
var bauds = []int{1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600}

// Fields declares the keys of a serial scanner.
func (s *Settings) Fields() []settings.Field {
	return append(append(s.Port.Fields(),
		settings.Baud(&s.Baud, bauds...),
		settings.Int("data_bits", &s.DataBits, 5, 8),
		settings.EnumOf("parity", &s.Parity, parities...),
		settings.Int("stop_bits", &s.StopBits, 1, 2),
		settings.Indexed("host_commands", &s.Host, hostNames[:]),
	), s.Frame.Fields()...)
}

// Check completes the port from the USB identity (see settings.Port).
func (s *Settings) Check(sec *settings.Section) { s.Port.Check(sec) }

// Opens is the tty, for `kioskd udev-rules` and `kioskd check`.
func (s Settings) Opens() settings.Resource { return s.Port.Opens() }

// Opener returns the scanner.Opener of a serial scanner called name.
func (s Settings) Opener(name string, log *zap.Logger) (scanner.Opener, error) {
	s.Name = name
	if log == nil {
		log = zap.NewNop()
	}
	return func(ctx context.Context) (scanner.Scanner, error) {
		return Open(ctx, s, log)
	}, nil
}

var _ scanner.Settings = Settings{}

// Parity is devices.yaml's parity, as tarm/serial spells it.
type Parity tarm.Parity

// Parities of a serial line.
const (
	ParityNone = Parity(tarm.ParityNone)
	ParityEven = Parity(tarm.ParityEven)
	ParityOdd  = Parity(tarm.ParityOdd)
)

var parities = []Parity{ParityNone, ParityEven, ParityOdd}

// String returns "none", "even" or "odd".
func (p Parity) String() string {
	switch p {
	case ParityEven:
		return "even"
	case ParityOdd:
		return "odd"
	}
	return "none"
}
