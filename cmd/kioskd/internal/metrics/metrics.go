// Package metrics holds the agent's Prometheus metrics in a registry of its
// own (no global state), served as /metrics on the local control API.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kioskd/kioskd/payment/smartpay"
)

// Metrics is the set of the agent's metrics.
type Metrics struct {
	reg *prometheus.Registry

	Sales        *prometheus.CounterVec   // finished sales by outcome
	APICall      *prometheus.HistogramVec // Smart Pay call latency by method and result
	ScanToCommit prometheus.Histogram     // last byte of a QR → commit answered
	ScannerUp    *prometheus.GaugeVec     // 1 while a scanner is open
	DisplayUp    *prometheus.GaugeVec     // 1 while a display takes screens
	CertExpiry   *prometheus.GaugeVec     // when a certificate expires, Unix seconds
	Ready        prometheus.Gauge         // 1 when the agent can take payments
	ScansDropped *prometheus.CounterVec   // scans that started no sale, by reason
}

// New registers the metrics. journalSize, when not nil, is read at scrape time.
func New(journalSize func() float64) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		Sales: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kioskd_sales_total", Help: "Finished sales by outcome.",
		}, []string{"outcome"}),
		APICall: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kioskd_smartpay_call_seconds",
			Help:    "Latency of Smart Pay kassa API calls by method and result (ok, or the error's verdict: refused, unknown, unavailable, certificate).",
			Buckets: []float64{.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "result"}),
		ScanToCommit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kioskd_scan_to_commit_seconds",
			Help:    "From the last byte of a QR code to the commit's answer.",
			Buckets: []float64{.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		ScannerUp: gauges("kioskd_scanner_up", "1 while the scanner is open and reading.", "scanner"),
		DisplayUp: gauges("kioskd_display_up", "1 while the display takes screens.", "display"),
		// A timestamp in base units, as the blackbox exporter publishes
		// certificate expiry: alert on it with "- time() < 14 * 86400".
		CertExpiry: gauges("kioskd_certificate_expiry_timestamp_seconds",
			"When the certificate expires (its NotAfter), as a Unix timestamp in seconds.", "file"),
		Ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kioskd_ready", Help: "1 when the agent can take payments.",
		}),
		ScansDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kioskd_scans_dropped_total",
			Help: "Scans that started no sale, by reason (duplicate, bad_code, busy).",
		}, []string{"reason"}),
	}
	m.reg.MustRegister(m.Sales, m.APICall, m.ScanToCommit, m.ScannerUp, m.DisplayUp,
		m.CertExpiry, m.Ready, m.ScansDropped,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if journalSize != nil {
		m.Func("kioskd_journal_bytes", "Size of the journal file.", journalSize)
	}
	return m
}

// Func registers a gauge read from f at scrape time.
func (m *Metrics) Func(name, help string, f func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
}

// CounterFunc registers a counter read from f (which only grows) at scrape time.
func (m *Metrics) CounterFunc(name, help string, f func() float64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
}

// gauges is a gauge per value of one label.
func gauges(name, help, label string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{label})
}

// ObserveCall records one Smart Pay call; a failure is labelled with its
// verdict, so refusals (business as usual) and outages count apart.
func (m *Metrics) ObserveCall(method string, d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = smartpay.VerdictOf(err).String()
	}
	m.APICall.WithLabelValues(method, result).Observe(d.Seconds())
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
