package metrics

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHandlerServesAgentMetrics(t *testing.T) {
	m := New(func() float64 { return 4096 })
	m.Sales.WithLabelValues("paid").Inc()
	m.ObserveCall("commit", 3*time.Millisecond, nil)
	m.ObserveCall("status", time.Second, errors.New("timeout"))
	m.ScannerUp.WithLabelValues("front").Set(1)
	m.CertExpiry.WithLabelValues("kassa.crt").Set(1.8e9)

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`kioskd_sales_total{outcome="paid"} 1`,
		`kioskd_smartpay_call_seconds_count{method="commit",result="ok"} 1`,
		`kioskd_smartpay_call_seconds_count{method="status",result="unknown"} 1`,
		`kioskd_scanner_up{scanner="front"} 1`,
		`kioskd_certificate_expiry_timestamp_seconds{file="kassa.crt"} 1.8e+09`,
		`kioskd_journal_bytes 4096`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
