package check

import (
	"context"
	"errors"
	"time"

	"github.com/kioskd/kioskd/cmd/kioskd/internal/config"
	"github.com/kioskd/kioskd/payment/fiscal"
)

// fiscalProvider opens the fiscal provider as the agent does (its password
// file included) and asks it whether it takes receipts now, without making
// a fiscal document: the ККТ's shift for the web server, a token for the
// cloud.
func fiscalProvider(ctx context.Context, r *Report, cfg *config.Config, opts Options) {
	rs, err := cfg.Receipts(opts.Logger)
	if err != nil {
		r.fail("fiscal", "%v", err)
		return
	}
	if rs.Provider == nil {
		r.pass("fiscal", "provider none: the host application sends each sale's fiscal data")
		return
	}
	if c, ok := rs.Provider.(interface{ Close() }); ok {
		defer c.Close()
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	start := time.Now()
	st, err := rs.Provider.Check(ctx)
	if err != nil {
		r.fail("fiscal", "provider %s: %v%s", cfg.Fiscal.Driver, err, fiscalHint(err))
		return
	}
	took := time.Since(start).Round(time.Millisecond)
	if st.Shift == nil {
		r.pass("fiscal", "provider %s (%s) answered in %v; it keeps its own shifts", cfg.Fiscal.Driver, st.Detail, took)
		return
	}
	sh := *st.Shift
	switch fiscal.ShiftDue(sh, opts.Now(), rs.ShiftMargin) {
	case fiscal.ShiftRenew:
		r.warn("fiscal", "provider %s (%s): shift %d is %s, ending %s: kioskd closes and opens it before the next receipt",
			cfg.Fiscal.Driver, st.Detail, sh.Number, sh.State, sh.Expires.Format(time.RFC3339))
	case fiscal.ShiftOpenNew:
		r.pass("fiscal", "provider %s (%s) answered in %v; the shift is closed: kioskd opens one at start", cfg.Fiscal.Driver, st.Detail, took)
	default:
		r.pass("fiscal", "provider %s (%s) answered in %v; shift %d open until %s", cfg.Fiscal.Driver, st.Detail, took,
			sh.Number, sh.Expires.Format(time.RFC3339))
	}
}

func fiscalHint(err error) string {
	var fe *fiscal.Error
	switch {
	case errors.As(err, &fe) && fe.FN:
		return " (a fault of the fiscal storage (ФН): call the ККТ's service engineer)"
	case fiscal.KindOf(err) == fiscal.Unreachable:
		return " (is the ATOL web server running, or the cloud reachable, at fiscal.url?)"
	case fiscal.KindOf(err) == fiscal.Refused && fe != nil && fe.Op == "getToken":
		return " (check fiscal.login and fiscal.password_file)"
	}
	return ""
}
