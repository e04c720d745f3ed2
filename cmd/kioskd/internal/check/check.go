package check

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/cmd/kioskd/internal/config"
)

// Severity says whether a problem stops the kiosk from working.
type Severity int

const (
	// Warning is worth fixing soon but does not stop the kiosk (a
	// certificate that expires within the warning period).
	Warning Severity = iota
	// Failure stops the kiosk from taking payments.
	Failure
)

// String returns "warning" or "failure".
func (s Severity) String() string {
	if s == Warning {
		return "warning"
	}
	return "failure"
}

// Problem is one finding, printed as one line.
type Problem struct {
	Severity Severity
	// Subject is the devices.yaml field or entry concerned, e.g.
	// "service.cert" or "scanners[0] (front)"; a config problem carries
	// "file:line: field" here.
	Subject string
	Msg     string
}

// String formats the problem as "subject: message".
func (p Problem) String() string {
	if p.Subject == "" {
		return p.Msg
	}
	return p.Subject + ": " + p.Msg
}

// Report is the outcome of a check.
type Report struct {
	Problems []Problem
	// Passed lists what was checked and found fine, one line each, so the
	// engineer sees what was actually tried.
	Passed []string
}

// Failed reports whether any problem is a Failure; `kioskd check` exits
// non-zero when it is.
func (r *Report) Failed() bool {
	for _, p := range r.Problems {
		if p.Severity == Failure {
			return true
		}
	}
	return false
}

// Print writes the report for a terminal: with verbose, one "ok" line per
// passed check; then one line per problem, failures marked FAIL and
// warnings WARN.
func (r *Report) Print(w io.Writer, verbose bool) error {
	var b strings.Builder
	if verbose {
		for _, l := range r.Passed {
			b.WriteString("ok   " + l + "\n")
		}
	}
	for _, p := range r.Problems {
		mark := "FAIL "
		if p.Severity == Warning {
			mark = "WARN "
		}
		b.WriteString(mark + p.String() + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) fail(subject, format string, args ...any) {
	r.Problems = append(r.Problems, Problem{Severity: Failure, Subject: subject, Msg: fmt.Sprintf(format, args...)})
}

func (r *Report) warn(subject, format string, args ...any) {
	r.Problems = append(r.Problems, Problem{Severity: Warning, Subject: subject, Msg: fmt.Sprintf(format, args...)})
}

func (r *Report) pass(subject, format string, args ...any) {
	r.Passed = append(r.Passed, subject+": "+fmt.Sprintf(format, args...))
}

// Options tune a check. The zero value checks everything with the real
// clock and the real /sys.
type Options struct {
	Logger *zap.Logger
	// Now is the clock certificates are judged against; time.Now when nil.
	Now func() time.Time
	// ExpiryWarning is how close to expiry a certificate draws a warning;
	// 30 days when zero.
	ExpiryWarning time.Duration
	// Timeout bounds each network or device step; 10s when zero.
	Timeout time.Duration
	// ServiceUser is the account the unit runs as, whose access to the key
	// is checked when it exists on this machine; "kioskd" when empty.
	ServiceUser string
	// SkipService and SkipDevices leave out the network and device steps,
	// e.g. when checking a file on a laptop.
	SkipService, SkipDevices bool
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ExpiryWarning <= 0 {
		o.ExpiryWarning = 30 * 24 * time.Hour
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.ServiceUser == "" {
		o.ServiceUser = "kioskd"
	}
}

// RunFile loads the configuration at path and, when it is valid, runs every
// check on it. A config that does not parse yields one Failure per config
// problem (with its line) and a nil Config.
func RunFile(ctx context.Context, path string, opts Options) (*config.Config, *Report) {
	cfg, err := config.Load(path)
	if err != nil {
		r := &Report{}
		if ce, ok := err.(*config.Error); ok {
			for _, p := range ce.Problems {
				r.Problems = append(r.Problems, Problem{Severity: Failure, Msg: p.Error()})
			}
		} else {
			r.fail(path, "%v", err)
		}
		return nil, r
	}
	return cfg, Run(ctx, cfg, opts)
}

// Run checks a parsed configuration: the certificates, the service, the API
// files, the drivers and each device.
func Run(ctx context.Context, cfg *config.Config, opts Options) *Report {
	opts.defaults()
	r := &Report{}
	// In the order an engineer fixes things: files, then the network,
	// then the devices.
	certsOK := certificates(r, cfg, opts)
	files(r, cfg)
	if !opts.SkipService {
		if certsOK {
			service(ctx, r, cfg, opts)
		} else {
			r.fail("service.url", "not tried: fix the certificate problems above first")
		}
	}
	drivers(r, cfg, opts)
	if !opts.SkipDevices {
		openDevices(ctx, r, cfg, opts)
	}
	return r
}
