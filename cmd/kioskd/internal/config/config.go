package config

import (
	"slices"
	"time"

	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/scanner"
)

// Defaults applied by Parse when a key is absent. They are exported so that
// docs, the example devices.yaml and the embedded demo agree with the parser.
// A driver's defaults (baud, gap, listen address…) live with the driver.
const (
	DefaultJournal = "/var/lib/kioskd/journal.db"
	DefaultSocket  = "/run/kioskd/api.sock"
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
	Scanners []scanner.Config // none when the host hands codes over with POST /v1/scan
	Displays []display.Config // the log alone when none is configured
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

// ScannerConfigs returns the scanner entries in file order.
func (c *Config) ScannerConfigs() []scanner.Config { return slices.Clone(c.Scanners) }

// DisplayConfigs returns the display entries in file order.
func (c *Config) DisplayConfigs() []display.Config { return slices.Clone(c.Displays) }

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
