package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kioskd/kioskd/cmd/kioskd/internal/metrics"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/fiscal"
)

// fiscalEvery is how often health and the metrics follow the fiscal state:
// a failed receipt shows within a second, at the cost of reading a few
// counters under a lock.
const fiscalEvery = time.Second

// watchFiscal keeps health and the metrics in step with the flow's fiscal
// records and receipts until ctx ends.
func watchFiscal(ctx context.Context, flow *payment.Flow, m *metrics.Fiscal, h *health, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		showFiscal(flow.FiscalHealth(), m, h, time.Now())
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// showFiscal turns one look at the fiscal state into health reasons and
// metrics. Each reason names what waits and why, with the backend's own
// words (the ККТ's code and text).
func showFiscal(fh payment.FiscalHealth, m *metrics.Fiscal, h *health, now time.Time) {
	m.ReceiptsPending.Set(float64(fh.ReceiptsPending))
	kind := ""
	reason := ""
	if err := fh.ReceiptProblem; err != nil {
		kind = fiscal.KindOf(err).String()
		what := "not issued"
		var fe *fiscal.Error
		switch {
		case errors.As(err, &fe) && fe.FN:
			kind, what = "fn", "not issued, the fiscal storage (ФН) reports a fault"
		case fiscal.KindOf(err) == fiscal.Unreachable:
			what = "not issued, the ККТ is unreachable"
		}
		reason = fmt.Sprintf("%d fiscal receipt(s) %s: %v", fh.ReceiptsPending, what, err)
	}
	for _, k := range metrics.ReceiptProblemKinds {
		m.ReceiptProblem.WithLabelValues(k).Set(b2f(k == kind))
	}
	h.set("fiscal:receipts", reason)

	reason = ""
	switch exp := fh.Shift.Expires; {
	case fh.ShiftProblem != nil:
		reason = fmt.Sprintf("fiscal shift not kept: %v", fh.ShiftProblem)
	case fh.Shift.State == fiscal.ShiftIsExpired || (!exp.IsZero() && now.After(exp)):
		reason = fmt.Sprintf("fiscal shift %d expired (24 h) and not renewed yet", fh.Shift.Number)
	}
	h.set("fiscal:shift", reason)
	m.ShiftProblem.Set(b2f(reason != ""))
	if exp := fh.Shift.Expires; exp.IsZero() {
		m.ShiftExpiry.Set(0)
	} else {
		m.ShiftExpiry.Set(float64(exp.Unix()))
	}

	reason = ""
	if err := fh.RecordsProblem; err != nil {
		reason = fmt.Sprintf("%d fiscal record(s) waiting to be sent to the service: %v", fh.RecordsPending, err)
	}
	h.set("fiscal:records", reason)
	m.DeliveryProblem.Set(b2f(reason != ""))
}
