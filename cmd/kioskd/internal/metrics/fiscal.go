package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// ReceiptProblemKinds are the label values of kioskd_receipt_problem: the
// fiscal backends' verdicts (fiscal.Kind) and "fn", a fault of the fiscal
// storage itself.
var ReceiptProblemKinds = []string{"unreachable", "pending", "refused", "malformed", "shift_expired", "fn"}

// Fiscal are the metrics of the kassa's own fiscal receipts and of the
// fiscal records sent to the service (kioskd_fiscal_pending counts those).
type Fiscal struct {
	ReceiptsPending prometheus.Gauge     // receipts the ККТ has not confirmed
	ReceiptProblem  *prometheus.GaugeVec // 1 for the kind of failure holding up the oldest receipt
	ShiftExpiry     prometheus.Gauge     // when the ККТ's shift reaches 24 h, Unix seconds; 0 unknown
	ShiftProblem    prometheus.Gauge     // 1 while the shift cannot be kept
	DeliveryProblem prometheus.Gauge     // 1 while the oldest fiscal record is not delivered
}

// NewFiscal registers the fiscal metrics, every problem at 0.
func (m *Metrics) NewFiscal() *Fiscal {
	f := &Fiscal{
		ReceiptsPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kioskd_receipts_pending", Help: "Fiscal receipts the ККТ or cloud kassa has not confirmed yet.",
		}),
		ReceiptProblem: gauges("kioskd_receipt_problem",
			"1 while the oldest waiting receipt fails for this reason (unreachable, pending, refused, malformed, shift_expired; fn: a fault of the fiscal storage).", "kind"),
		// A timestamp, as the certificate expiry: alert on "- time() < 3600".
		ShiftExpiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kioskd_fiscal_shift_expiry_timestamp_seconds", Help: "When the ККТ's shift reaches 24 hours, as a Unix timestamp in seconds; 0 when unknown.",
		}),
		ShiftProblem: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kioskd_fiscal_shift_problem", Help: "1 while the ККТ's shift cannot be opened or renewed.",
		}),
		DeliveryProblem: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kioskd_fiscal_delivery_problem", Help: "1 while the oldest fiscal record is not accepted by the service.",
		}),
	}
	for _, k := range ReceiptProblemKinds {
		f.ReceiptProblem.WithLabelValues(k).Set(0)
	}
	m.reg.MustRegister(f.ReceiptsPending, f.ReceiptProblem, f.ShiftExpiry, f.ShiftProblem, f.DeliveryProblem)
	return f
}
