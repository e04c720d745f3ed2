package check

import (
	"context"
	"errors"
	"time"

	"github.com/kioskd/kioskd/cmd/kioskd/internal/config"
	"github.com/kioskd/kioskd/payment/smartpay"
)

// service asks the service for a ping (reachability, TLS both ways) and
// for the error list, which needs a session (the service accepts this
// kassa's certificate), through the same client the agent uses.
func service(ctx context.Context, r *Report, cfg *config.Config, opts Options) {
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	sc := cfg.SmartPayConfig()
	sc.Retries = -1 // one attempt: report what happens, not what retries would hide
	c, err := smartpay.NewClient(sc, opts.Logger)
	if err != nil {
		r.fail("service", "%v", err)
		return
	}
	defer c.Close()
	start := time.Now()
	if err := c.Ping(ctx); err != nil {
		r.fail("service.url", "%s: ping failed: %v%s", sc.URL, err, hint(err))
		return
	}
	rtt := time.Since(start)
	if _, err := c.ErrorAnswers(ctx); err != nil {
		r.fail("service.cert", "the service answered ping but did not open a session for this kassa: %v%s", err, hint(err))
		return
	}
	r.pass("service.url", "%s answered ping in %v and opened a session", sc.URL, rtt.Round(time.Millisecond))
}

func hint(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return " (no answer in time: firewall, proxy or wrong host?)"
	case errors.Is(err, smartpay.ErrCertificate):
		return " (a certificate was refused: check service.ca, service.cert and the kassa's registration)"
	case errors.Is(err, smartpay.ErrUnavailable):
		return " (is service.url right and the network up?)"
	}
	return ""
}
