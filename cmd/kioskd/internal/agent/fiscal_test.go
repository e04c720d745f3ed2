package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/fiscal/fiscalsim"
	fsimtest "github.com/kioskd/kioskd/payment/fiscal/fiscalsim/simtest"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
	"github.com/kioskd/kioskd/payment/smartpay/sim/simtest"
)

// fiscalKiosk is the agent in-process with the Smart Pay simulator, the
// ATOL web-server simulator as its ККТ and a web display; codes are handed
// over through the control API (the configured scanner is absent).
type fiscalKiosk struct {
	kiosk
	kkt  *fsimtest.AtolServer
	logs *observer.ObservedLogs // warnings and above
}

func startFiscalKiosk(tb testing.TB, log *zap.Logger, opts Options) *fiscalKiosk {
	tb.Helper()
	k := &fiscalKiosk{}
	k.sim = simtest.NewServer(tb, sim.Config{SuccessDelay: 5 * time.Millisecond})
	k.kkt = fsimtest.NewAtol(tb, fiscalsim.Config{}, zap.NewNop())
	web := simtest.FreeAddr(tb)
	k.web = "http://" + web + "/"
	// The fiscal section follows the displays: both are top-level.
	extra := fmt.Sprintf(`  - name: screen
    driver: web
    listen: %q
fiscal:
  provider: atol
  url: %s
  taxation: usn_income
  vat: none
  item: Кофе
  machine_number: VM-7
  place: Холл, 1 этаж
  address: г. Москва, ул. Примерная, д. 1
  wait: 2s
`, web, k.kkt.URL)
	cfg := parseConfig(tb, k.sim, filepath.Join(tb.TempDir(), "journal.db"), "/dev/kiosk/absent", extra)
	k.socket = cfg.API.Socket
	core, logs := observer.New(zapcore.WarnLevel)
	k.logs = logs
	log = zap.New(zapcore.NewTee(log.Core(), core))

	runAgent(tb, cfg, log, opts)
	return k
}

// pay hands a fresh QR over; the kiosk's fixed price and automatic
// hand-over complete the sale.
func (k *fiscalKiosk) pay(tb testing.TB, user string) {
	tb.Helper()
	body, _ := json.Marshal(map[string]string{"data": k.sim.Payload(tb, user)})
	c := k.client()
	defer c.CloseIdleConnections()
	resp, err := c.Post("http://kioskd/v1/scan", "application/json", strings.NewReader(string(body)))
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		tb.Fatalf("POST /v1/scan: %s", resp.Status)
	}
}

// until polls path on the control API until ok says yes.
func (k *fiscalKiosk) until(tb testing.TB, what, path string, ok func(code int, body string) bool) string {
	tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body := k.get(tb, path)
		if ok(code, body) {
			return body
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: %s = %d %s", what, path, code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// webScreen is what the web display shows now.
func (k *fiscalKiosk) webScreen(tb testing.TB) (state, qr string) {
	tb.Helper()
	resp, err := http.Get(k.web + "screen")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var s struct{ State, QR string }
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		tb.Fatal(err)
	}
	return s.State, s.QR
}

// A paid sale gets one sell receipt at the ККТ; Smart Pay holds a v1
// record with the ККТ's registration number and fiscal sign and the v2
// receipt; the receipt's QR code is on the web display and stays there
// after the sale has ended, until the next customer's sale starts.
func TestReceiptThroughAgent(t *testing.T) {
	k := startFiscalKiosk(t, zaptest.NewLogger(t), Options{})
	k.pay(t, "receipt")
	k.until(t, "the receipt's records delivered", "/v1/state", func(_ int, body string) bool {
		return strings.Contains(body, `"state":"idle"`) && strings.Contains(body, `"receipts_pending":0`) &&
			strings.Contains(body, `"fiscal_pending":0`) && len(k.sim.State().Fiscal) == 2
	})
	st := k.kkt.Sim.State()
	if len(st.Receipts) != 1 || st.Receipts[0].Type != "sell" || st.Receipts[0].Total != 10000 || st.Receipts[0].Items[0].Name != "Кофе" {
		t.Fatalf("ККТ documents: %+v", st.Receipts)
	}
	doc := st.Receipts[0].Fiscal
	for _, f := range k.sim.State().Fiscal {
		switch {
		case f.Version == 1 && f.KKTRegNumber == doc.RegistrationNumber && f.FiscalSign == doc.FiscalSign:
		case f.Version == 2 && f.Receipt != nil && f.Receipt.FiscalSign == doc.FiscalSign && f.Receipt.FDNumber == doc.FDNumber &&
			f.Receipt.Operation == "income" && f.IDLoyalty == "receipt":
		default:
			t.Errorf("Smart Pay holds a record that is not the ККТ's document %+v: %+v", doc, f)
		}
	}
	// The sale is over (idle), and the receipt is still on screen.
	if state, qr := k.webScreen(t); state != "receipt" || !strings.HasPrefix(qr, "data:image/png;base64,") {
		t.Fatalf("web display after the sale: %s %.40s", state, qr)
	}
	k.pay(t, "next-customer")
	deadline := time.Now().Add(10 * time.Second)
	for state, _ := k.webScreen(t); state == "receipt"; state, _ = k.webScreen(t) {
		if time.Now().After(deadline) {
			t.Fatal("the next sale did not replace the receipt")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Bad answers from the ККТ leave the receipt queued with the reason in the
// log, /healthz and the metrics, and nothing reaches Smart Pay until the
// ККТ confirms: an FN fault, a malformed answer, a confirmation without
// the fiscal sign, an unreachable web server; then, with the ККТ well,
// every receipt is issued once and forwarded; and a receipt that never
// completes stays queued.
func TestReceiptProblemsInHealth(t *testing.T) {
	k := startFiscalKiosk(t, zaptest.NewLogger(t, zaptest.Level(zapcore.WarnLevel)), Options{})
	sale, delivered := 0, 0 // receipts waiting; records Smart Pay holds
	step := func(name, health, logged, metric string, faults ...fiscalsim.Fault) {
		t.Helper()
		k.clearFaults(t)
		for _, f := range faults {
			f.Count = 1000
			if err := k.kkt.Sim.InjectFault(f); err != nil {
				t.Fatal(err)
			}
		}
		sale++
		k.pay(t, fmt.Sprintf("%s-%d", name, sale)) // a new receipt wakes the writer at once
		k.until(t, name+": health", "/healthz", func(code int, body string) bool {
			return code == http.StatusServiceUnavailable && strings.Contains(body, health) &&
				strings.Contains(body, fmt.Sprintf("%d fiscal receipt(s)", sale))
		})
		k.until(t, name+": metrics", "/metrics", func(_ int, body string) bool {
			return strings.Contains(body, fmt.Sprintf("kioskd_receipt_problem{kind=%q} 1", metric)) &&
				strings.Contains(body, fmt.Sprintf("kioskd_receipts_pending %d", sale))
		})
		found := false
		for _, e := range k.logs.FilterMessage("receipt not issued; it stays queued").All() {
			found = found || strings.Contains(fmt.Sprint(e.ContextMap()["error"]), logged)
		}
		if !found {
			t.Errorf("%s: no log line with %q", name, logged)
		}
		if n := len(k.sim.State().Fiscal); n != delivered {
			t.Fatalf("%s: %d fiscal records reached Smart Pay before the ККТ confirmed", name, n-delivered)
		}
	}
	step("fn", "the fiscal storage (ФН) reports a fault", "Неисправимая ошибка ФН", "fn",
		fiscalsim.Fault{Method: fiscalsim.AtolPost, Kind: fiscalsim.FaultKKTError, Code: 118, Text: "Неисправимая ошибка ФН"})
	step("malformed", "results are not JSON", "results are not JSON", "malformed",
		fiscalsim.Fault{Method: fiscalsim.AtolGet, Kind: fiscalsim.FaultMalformed})
	step("no-sign", "fiscal sign missing", "fiscal sign missing", "malformed",
		fiscalsim.Fault{Method: fiscalsim.AtolGet, Kind: fiscalsim.FaultNoSign})
	step("unreachable", "the ККТ is unreachable", "HTTP 503", "unreachable",
		fiscalsim.Fault{Method: fiscalsim.AtolPost, Kind: fiscalsim.FaultStatus, Status: 503})

	// The ККТ is well again: every receipt issued once, each forwarded.
	k.clearFaults(t)
	k.until(t, "recovery", "/healthz", func(code int, body string) bool {
		return !strings.Contains(body, "fiscal") && len(k.sim.State().Fiscal) == 2*sale
	})
	st := k.kkt.Sim.State()
	if len(st.Receipts) != sale {
		t.Fatalf("%d documents at the ККТ for %d sales", len(st.Receipts), sale)
	}
	signs := map[string]bool{}
	for _, rc := range st.Receipts {
		signs[rc.Fiscal.FiscalSign] = true
	}
	for _, f := range k.sim.State().Fiscal {
		if f.Version == 1 && !signs[f.FiscalSign] {
			t.Errorf("Smart Pay got fiscal sign %s, which no ККТ document has", f.FiscalSign)
		}
	}

	// A receipt the ККТ takes and never completes stays queued: each
	// attempt waits fiscal.wait (2s), then it is pending.
	sale, delivered = 0, len(k.sim.State().Fiscal)
	step("never-completes", "(pending)", "stopped waiting", "pending",
		fiscalsim.Fault{Method: fiscalsim.AtolPost, Kind: fiscalsim.FaultPending, Polls: -1})
}

// clearFaults drops the fiscal simulator's faults through its admin API.
func (k *fiscalKiosk) clearFaults(tb testing.TB) {
	tb.Helper()
	req, _ := http.NewRequest(http.MethodDelete, k.kkt.AdminURL+"/sim/faults", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("DELETE /sim/faults: %s", resp.Status)
	}
}

// sse reads a server-sent event stream, calling each for every event until
// it returns false or the stream ends.
func sse(body io.Reader, each func(event, data string) bool) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var event string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if !each(event, strings.TrimPrefix(line, "data: ")) {
				return
			}
		}
	}
}

// BenchmarkReceiptToDisplay measures, through the whole agent, the time
// from the confirmation of a sale (its completed event, stamped when the
// journal has it) to the receipt's QR code arriving at a browser of the
// web display (its SSE stream), next to the fiscal simulator's own
// processing time of the same receipts (handler time of its sell task).
//
//	go test -run X -bench ReceiptToDisplay -benchtime 100x ./cmd/kioskd/internal/agent/
func BenchmarkReceiptToDisplay(b *testing.B) {
	k := startFiscalKiosk(b, zap.NewNop(), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	completed := make(chan time.Time, 16)
	shown := make(chan time.Time, 16)
	// The control API's event stream: when each sale completed.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://kioskd/v1/events", nil)
	c := k.client()
	c.Timeout = 0
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	go sse(resp.Body, func(event, data string) bool {
		var e payment.Event
		if event == "state" && json.Unmarshal([]byte(data), &e) == nil && e.State == payment.Completed {
			completed <- e.Time
		}
		return true
	})
	// The browser's stream of the web display.
	wreq, _ := http.NewRequestWithContext(ctx, http.MethodGet, k.web+"events", nil)
	wresp, err := http.DefaultClient.Do(wreq)
	if err != nil {
		b.Fatal(err)
	}
	defer wresp.Body.Close()
	go sse(wresp.Body, func(event, data string) bool {
		at := time.Now()
		var s struct{ State, QR string }
		if json.Unmarshal([]byte(data), &s) == nil && s.State == "receipt" && s.QR != "" {
			shown <- at
		}
		return true
	})
	qrs := make([]string, b.N)
	for i := range qrs {
		qrs[i] = k.sim.Payload(b, fmt.Sprintf("bench-%d", i))
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		body, _ := json.Marshal(map[string]string{"data": qrs[i]})
		r, err := c.Post("http://kioskd/v1/scan", "application/json", strings.NewReader(string(body)))
		if err != nil {
			b.Fatal(err)
		}
		r.Body.Close()
		var done, seen time.Time
		for _, ch := range []chan time.Time{completed, shown} {
			select {
			case at := <-ch:
				if ch == completed {
					done = at
				} else {
					seen = at
				}
			case <-time.After(20 * time.Second):
				b.Fatalf("sale %d: no completed sale and receipt screen within 20s", i)
			}
		}
		lat = append(lat, seen.Sub(done))
		k.waitIdle(b) // the next scan starts a new sale
	}
	b.StopTimer()
	var server []time.Duration
	for _, t := range k.kkt.Sim.State().Tasks {
		if t.Type == "sell" {
			server = append(server, t.ServerTime)
		}
	}
	reportPercentiles(b, "", lat)
	reportPercentiles(b, "kkt-sim-", server)
}
