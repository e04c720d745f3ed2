package config

import (
	"time"

	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/scanner"
)

// Defaults applied by Parse when a key is absent. They are exported so that
// docs, the example devices.yaml and the embedded demo agree with the parser.
const (
	DefaultJournal         = "/var/lib/kioskd/journal.db"
	DefaultSocket          = "/run/kioskd/api.sock"
	DefaultAmountTimeout   = 60 * time.Second
	DefaultPaymentTimeout  = 120 * time.Second
	DefaultHandoverTimeout = 60 * time.Second
	DefaultCallTimeout     = 10 * time.Second
	DefaultDuplicateWindow = 2 * time.Second
	DefaultRetention       = 7 * 24 * time.Hour
	DefaultSerialBaud      = 9600
	DefaultDisplayBaud     = 9600
	DefaultWebListen       = "127.0.0.1:8765"
)

// Handover values: who says the goods were given to the customer.
const (
	HandoverHost = payment.HandoverHost // the host application calls the API
	HandoverAuto = payment.HandoverAuto // kioskd confirms as soon as the payment succeeds
)

// Config is a parsed and validated devices.yaml. Parse fills every default,
// so consumers never need to treat a zero value specially.
type Config struct {
	File string // the file it came from; relative paths inside were resolved against its directory

	Kassa    Kassa
	Service  Service
	Journal  string // bbolt journal file
	API      API
	Scanners []Scanner
	Displays []Display
	Log      Log
	Language display.Lang
	Timeouts Timeouts

	// DuplicateWindow drops a second read of the same payload within it.
	DuplicateWindow time.Duration
	// Retention is how long finished sales stay in the journal.
	Retention time.Duration
	Metrics   Metrics
}

// Kassa identifies this terminal to the service and says how a sale gets its
// amount and hand-over.
type Kassa struct {
	ID          string // kassa id, as registered with the service
	FixedAmount int64  // kopecks; 0 means the host sends the amount
	Handover    string // HandoverHost or HandoverAuto
}

// Service is the Smart Pay kassa API endpoint and the mTLS material. Paths
// are absolute after Parse.
type Service struct {
	URL  string // https://…
	CA   string // PEM bundle that signs the server certificate
	Cert string // PEM client certificate (leaf first, then intermediates)
	Key  string // PEM private key of Cert
}

// API is the local control API for the host application.
type API struct {
	Socket    string // unix socket path
	Listen    string // optional loopback host:port; empty = socket only
	TokenFile string // bearer token for Listen; required when Listen is set
}

// Scanner is one scanners[] entry. The embedded scanner.Config is what the
// drivers read; Line points back into devices.yaml for messages.
type Scanner struct {
	scanner.Config
	Line int // line of the entry in devices.yaml
}

// Display drivers understood by the config.
const (
	DisplayVFD  = "vfd"  // serial pole display
	DisplayWeb  = "web"  // page for a kiosk browser
	DisplayTerm = "term" // ANSI terminal
	DisplayLog  = "log"  // the log
)

// Display is one displays[] entry: the display.Config the drivers read,
// plus the USB identity `kioskd udev-rules` needs and the entry's line.
type Display struct {
	display.Config

	// VID, PID and Serial identify a USB-serial pole display for
	// `kioskd udev-rules`; zero when not given.
	VID, PID uint16
	Serial   string

	Line int // line of the entry in devices.yaml
}

// Log configures zap.
type Log struct {
	Level  string // "debug", "info" (default), "warn", "error"
	Format string // "console" (default) or "json"
}

// Timeouts of the payment flow and of each call to the service.
type Timeouts struct {
	Amount   time.Duration // code committed, waiting for the host's amount
	Payment  time.Duration // payment released, waiting for a final status
	Handover time.Duration // paid, waiting for the host to hand the goods over
	Call     time.Duration // one HTTP call to the service
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	Enabled bool   // serve /metrics on the control API (default true)
	Listen  string // optional extra host:port that serves only /metrics
}

// ScannerConfigs returns the per-scanner driver configs in file order.
func (c *Config) ScannerConfigs() []scanner.Config {
	out := make([]scanner.Config, len(c.Scanners))
	for i, s := range c.Scanners {
		out[i] = s.Config
	}
	return out
}

// DisplayConfigs returns the per-display driver configs in file order.
func (c *Config) DisplayConfigs() []display.Config {
	out := make([]display.Config, len(c.Displays))
	for i, d := range c.Displays {
		out[i] = d.Config
	}
	return out
}

// SmartPayConfig returns the Smart Pay client settings. timeouts.call is
// not among them: it is the flow's deadline of a whole call (retries
// included); each attempt within it has smartpay's AttemptTimeout.
func (c *Config) SmartPayConfig() smartpay.Config {
	return smartpay.Config{
		URL:      c.Service.URL,
		CAFile:   c.Service.CA,
		CertFile: c.Service.Cert,
		KeyFile:  c.Service.Key,
	}
}

// PaymentConfig returns the payment flow settings.
func (c *Config) PaymentConfig() payment.Config {
	return payment.Config{
		KassaID:     c.Kassa.ID,
		FixedAmount: c.Kassa.FixedAmount,
		Handover:    c.Kassa.Handover,
		Timeouts: payment.Timeouts{
			Amount:   c.Timeouts.Amount,
			Payment:  c.Timeouts.Payment,
			Handover: c.Timeouts.Handover,
			Call:     c.Timeouts.Call,
		},
		DuplicateWindow: c.DuplicateWindow,
		Retention:       c.Retention,
	}
}
