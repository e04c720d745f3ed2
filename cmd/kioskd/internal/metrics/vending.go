package metrics

import "github.com/prometheus/client_golang/prometheus"

// Vending are the metrics of a vending machine's cashless adapter, for
// kiosks with a vending section.
type Vending struct {
	Vends        *prometheus.CounterVec // vend requests by how they ended
	QRToApproved prometheus.Histogram   // QR scanned → vend approved (C,VEND written)
}

// Vending registers the vending metrics, each outcome at 0.
func (m *Metrics) Vending(outcomes ...string) *Vending {
	v := &Vending{
		Vends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kioskd_vends_total",
			Help: "Vend requests of the vending machine by outcome (vended, vended_by_rule: no result, counted as dispensed as MDB does; failed: the payment reversed; cancelled, declined, refused: denied, nothing charged).",
		}, []string{"outcome"}),
		QRToApproved: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kioskd_qr_to_vend_approved_seconds",
			Help:    "From a QR scanned to the vend it paid approved on the machine (the payment included).",
			Buckets: []float64{.1, .25, .5, 1, 2, 3, 5, 10, 20, 30, 60},
		}),
	}
	for _, o := range outcomes {
		v.Vends.WithLabelValues(o)
	}
	m.reg.MustRegister(v.Vends, v.QRToApproved)
	return v
}
