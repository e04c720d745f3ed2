package localapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/journal"
	"github.com/kioskd/kioskd/payment/localapi"
	sp "github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
	"github.com/kioskd/kioskd/payment/smartpay/sim/simtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is one agent (flow + local API on a unix socket) against one simulator.
type env struct {
	t      *testing.T
	sim    *simtest.Server
	flow   *payment.Flow
	hc     *http.Client
	events chan payment.Event
	seen   []payment.Event
}

func fastTimeouts() payment.Timeouts {
	return payment.Timeouts{Amount: 3 * time.Second, Payment: 5 * time.Second, Handover: 3 * time.Second, Call: 2 * time.Second}
}

func start(t *testing.T, scfg sim.Config, fcfg payment.Config) *env {
	t.Helper()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	if scfg.SuccessDelay == 0 {
		scfg.SuccessDelay = 300 * time.Millisecond
	}
	se := simtest.NewServer(t, scfg)
	dir := t.TempDir()
	j, err := journal.Open(filepath.Join(dir, "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	if fcfg.Timeouts == (payment.Timeouts{}) {
		fcfg.Timeouts = fastTimeouts()
	}
	if fcfg.Linger == 0 {
		fcfg.Linger = 50 * time.Millisecond
	}
	f, err := payment.New(fcfg, se.NewClient(t), j, log)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "api.sock")
	api, err := localapi.New(localapi.Config{Socket: sock}, f, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := api.Listen(); err != nil { // the socket exists from here on
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := f.Run(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("flow: %v", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := api.Serve(ctx); err != nil {
			t.Errorf("api: %v", err)
		}
	}()
	select { // a scan before the flow runs is refused as busy: start as a host would, once it is ready
	case <-f.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("the flow never became ready")
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}
	e := &env{t: t, sim: se, flow: f, hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}, events: make(chan payment.Event, 1024)}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		tr.CloseIdleConnections()
		j.Close()
	})
	// Follow the SSE stream like a host would.
	fi, _ := os.Stat(sock)
	if fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want 0660", fi.Mode().Perm())
	}
	e.followEvents(ctx, &wg)
	return e
}

func (e *env) followEvents(ctx context.Context, wg *sync.WaitGroup) {
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://kioskd/v1/events", nil)
	resp, err := e.hc.Transport.RoundTrip(req)
	if err != nil {
		e.t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		e.t.Fatalf("events content type %q", ct)
	}
	ready := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var kind string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				kind = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				if kind == "snapshot" {
					close(ready)
					continue
				}
				var ev payment.Event
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev); err != nil {
					e.t.Errorf("bad event %q: %v", line, err)
					continue
				}
				select {
				case e.events <- ev:
				default:
					e.t.Errorf("event buffer full")
				}
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		e.t.Fatal("no snapshot on the event stream")
	}
}

// next returns the next event matching ok, failing after timeout.
func (e *env) next(timeout time.Duration, what string, ok func(payment.Event) bool) payment.Event {
	e.t.Helper()
	tm := time.NewTimer(timeout)
	defer tm.Stop()
	for {
		select {
		case ev := <-e.events:
			e.seen = append(e.seen, ev)
			if ok(ev) {
				return ev
			}
		case <-tm.C:
			e.t.Fatalf("no %s within %v; events so far: %s", what, timeout, e.trace())
		}
	}
}

func (e *env) trace() string {
	var b strings.Builder
	for _, ev := range e.seen {
		fmt.Fprintf(&b, "%s/%s ", ev.Kind, ev.State)
	}
	return b.String()
}

// state waits for the sale to enter st.
func (e *env) state(st payment.State) payment.Event {
	e.t.Helper()
	return e.next(8*time.Second, "state "+st.String(), func(ev payment.Event) bool {
		if ev.Kind == payment.KindState && ev.State != st && ev.State.Terminal() && !st.Terminal() {
			e.t.Fatalf("sale ended %s (%s) while waiting for %s; events: %s", ev.State, ev.Message, st, e.trace())
		}
		return ev.Kind == payment.KindState && ev.State == st
	})
}

// kind waits for an event of kind k, also looking at those already seen.
func (e *env) kind(k payment.EventKind) payment.Event {
	e.t.Helper()
	for _, ev := range e.seen {
		if ev.Kind == k {
			return ev
		}
	}
	return e.next(5*time.Second, "event "+k.String(), func(ev payment.Event) bool { return ev.Kind == k })
}

// call makes an API request and decodes the answer into out (if not nil).
func (e *env) call(method, path, body string, wantCode int, out any) {
	e.t.Helper()
	req, _ := http.NewRequest(method, "http://kioskd"+path, strings.NewReader(body))
	resp, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantCode {
		e.t.Fatalf("%s %s %s: HTTP %d %s, want %d", method, path, body, resp.StatusCode, b, wantCode)
	}
	if !json.Valid(b) {
		e.t.Fatalf("%s %s: answer is not JSON: %q", method, path, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) scan(qr string) {
	e.t.Helper()
	b, _ := json.Marshal(map[string]string{"data": qr})
	e.call("POST", "/v1/scan", string(b), http.StatusAccepted, nil)
}

func (e *env) purchase(id string) sim.Purchase {
	e.t.Helper()
	p, ok := e.sim.State().Purchase(id)
	if !ok {
		e.t.Fatalf("simulator has no purchase %s", id)
	}
	return p
}

func confirmations(p sim.Purchase) string {
	s := make([]string, len(p.KassaConfirmations))
	for i, c := range p.KassaConfirmations {
		s[i] = string(c)
	}
	return strings.Join(s, ",")
}

const receipt = `{"kkt_reg_number":"0000000012345678","fn_number":"9999078900001234","fd_number":42,
	"fiscal_sign":"3522207798","datetime":"2026-11-26T10:00:00Z","operation":"income","total":10000,
	"items":[{"name":"Кофе","price":10000,"quantity":1,"amount":10000,"vat":"vat20"}]}`

func TestPaidSaleHostAmount(t *testing.T) {
	e := start(t, sim.Config{}, payment.Config{})
	e.scan(e.sim.Payload(t, "alice"))
	e.state(payment.Committing)
	e.state(payment.WaitingAmount)
	var st payment.Status
	e.call("GET", "/v1/state", "", 200, &st)
	if st.State != payment.WaitingAmount || st.Handover != payment.HandoverHost {
		t.Fatalf("state = %+v", st)
	}
	e.call("POST", "/v1/sale", `{"amount": 12300}`, 200, nil)
	e.state(payment.Releasing)
	e.state(payment.Paying)
	paid := e.state(payment.Paid)
	if paid.Amount != 12300 || paid.PurchaseID == "" {
		t.Fatalf("paid event %+v", paid)
	}
	if p := e.purchase(paid.PurchaseID); p.Confirmed {
		t.Fatal("confirmed before the hand-over")
	}
	e.call("POST", "/v1/sale/handover", `{"ok": true}`, 200, nil)
	e.state(payment.Completed)
	e.call("POST", "/v1/sale/fiscal", `{"kkt_reg_number":"0000000012345678","fiscal_sign":"3522207798"}`, 200, nil)
	e.kind(payment.KindFiscal)
	e.state(payment.Idle)

	p := e.purchase(paid.PurchaseID)
	if p.Status != sp.Success || !p.Confirmed || p.Amount != 12300 || confirmations(p) != "success" {
		t.Fatalf("simulator: %+v", p)
	}
	st2 := e.sim.State()
	if len(st2.Fiscal) != 1 || st2.Fiscal[0].PurchaseID != p.ID || st2.Fiscal[0].Version != 1 {
		t.Fatalf("fiscal records: %+v", st2.Fiscal)
	}
}

func TestAmountBeforeScan(t *testing.T) {
	e := start(t, sim.Config{}, payment.Config{Handover: payment.HandoverAuto})
	e.call("POST", "/v1/sale", `{"amount": 5000}`, 200, nil)
	e.kind(payment.KindAmount)
	e.scan(e.sim.Payload(t, "bob"))
	e.state(payment.Releasing) // no waiting for the amount: it was there first
	done := e.state(payment.Completed)
	if p := e.purchase(done.PurchaseID); !p.Confirmed || p.Amount != 5000 {
		t.Fatalf("simulator: %+v", p)
	}
}

func TestVendingSale(t *testing.T) {
	e := start(t, sim.Config{}, payment.Config{FixedAmount: 7500})
	var st payment.Status
	e.call("GET", "/v1/state", "", 200, &st)
	if st.Handover != payment.HandoverAuto {
		t.Fatalf("fixed amount should default to auto hand-over: %+v", st)
	}
	e.scan(e.sim.Payload(t, "carol"))
	e.state(payment.Paying)
	done := e.state(payment.Completed)
	p := e.purchase(done.PurchaseID)
	if p.Status != sp.Success || !p.Confirmed || p.Amount != 7500 {
		t.Fatalf("simulator: %+v", p)
	}
	// The host may not set an amount on a fixed-price kassa.
	e.call("POST", "/v1/sale", `{"amount": 100}`, http.StatusConflict, nil)
}

func TestDeclined(t *testing.T) {
	e := start(t, sim.Config{}, payment.Config{})
	e.scanned("dave")
	e.call("POST", "/v1/sale", `{"amount": 10051}`, 200, nil)
	d := e.state(payment.Declined)
	if d.Code != sp.CodePaymentDeclined || d.Message == "" {
		t.Fatalf("declined event without the service's reason: %+v", d)
	}
	if s, ok := d.Screen(); !ok || s.Message != d.Message {
		t.Fatalf("screen %+v", s)
	}
	if p := e.purchase(d.PurchaseID); p.Status != sp.Failed || p.Confirmed {
		t.Fatalf("simulator: %+v", p)
	}
	// The kassa is free again.
	e.state(payment.Idle)
	e.scanned("dave")
}

func TestCustomerWalkedAway(t *testing.T) {
	to := fastTimeouts()
	to.Amount = 300 * time.Millisecond
	e := start(t, sim.Config{}, payment.Config{Timeouts: to})
	w := e.scanned("erin")
	c := e.state(payment.Cancelled)
	if !strings.Contains(c.Message, "amount") {
		t.Errorf("cancel reason %q", c.Message)
	}
	if p := e.purchase(w.PurchaseID); p.Status != sp.Cancelled || confirmations(p) != "cancel" {
		t.Fatalf("simulator: %+v", p)
	}
}

func TestCancelDuringPayment(t *testing.T) {
	e := start(t, sim.Config{}, payment.Config{})
	e.scanned("frank")
	e.call("POST", "/v1/sale", `{"amount": 20052}`, 200, nil) // ...52 stays processing
	e.state(payment.Paying)
	e.call("POST", "/v1/sale/handover", `{"ok": true}`, http.StatusConflict, nil) // not paid yet
	e.call("POST", "/v1/sale/cancel", ``, 200, nil)
	e.state(payment.Cancelling)
	c := e.state(payment.Cancelled)
	if p := e.purchase(c.PurchaseID); p.Status != sp.Cancelled || p.Confirmed || confirmations(p) != "cancel" {
		t.Fatalf("simulator: %+v", p)
	}
}

func TestReplacedQR(t *testing.T) {
	e := start(t, sim.Config{}, payment.Config{})
	first := e.scanned("gina")
	e.scan(e.sim.Payload(t, "gina"))
	e.kind(payment.KindReplaced)
	e.state(payment.Cancelled)
	// The cancel is acknowledged before the new sale starts.
	if p := e.purchase(first.PurchaseID); p.Status != sp.Cancelled {
		t.Fatalf("first purchase not cancelled before the second: %+v", p)
	}
	second := e.state(payment.WaitingAmount)
	if second.SaleID == first.SaleID || second.PurchaseID == first.PurchaseID {
		t.Fatal("the replacing QR did not start a new sale")
	}
	e.call("POST", "/v1/sale", `{"amount": 3000}`, 200, nil)
	e.state(payment.Paid)
	// A QR scanned once the payment is released is ignored: busy.
	e.scan(e.sim.Payload(t, "henry"))
	e.kind(payment.KindBusy)
	e.call("POST", "/v1/sale/handover", `{"ok": true}`, 200, nil)
	e.state(payment.Completed)
	if n := len(e.sim.State().Purchases); n != 2 {
		t.Fatalf("simulator has %d purchases, want 2", n)
	}
}

func TestDuplicateRead(t *testing.T) {
	e := start(t, sim.Config{}, payment.Config{})
	q := e.sim.Payload(t, "ivan")
	e.scan(q)
	e.scan(q)
	e.kind(payment.KindDuplicate)
	e.state(payment.WaitingAmount)
	if n := e.sim.State().Requests[sim.MethodCommit]; n != 1 {
		t.Fatalf("%d commits, want 1", n)
	}
	// Not a payment QR: an event with the reason, no API call.
	e.scan("4600000000008")
	bad := e.kind(payment.KindBadCode)
	if !strings.Contains(bad.Message, "product_barcode") {
		t.Errorf("bad code reason %q", bad.Message)
	}
	if n := e.sim.State().Requests[sim.MethodCommit]; n != 1 {
		t.Fatalf("%d commits after a bad code, want 1", n)
	}
}

func TestPaidElsewhere(t *testing.T) {
	e := start(t, sim.Config{}, payment.Config{})
	w := e.scanned("jane")
	e.call("POST", "/v1/sale/paid-elsewhere", `{"receipt": {"total": 1}}`, http.StatusBadRequest, nil) // malformed: no change
	e.call("POST", "/v1/sale/paid-elsewhere", `{"receipt": `+receipt+`}`, 200, nil)
	e.state(payment.Cancelled)
	e.kind(payment.KindFiscal)
	st := e.sim.State()
	if p, _ := st.Purchase(w.PurchaseID); p.Status != sp.Cancelled {
		t.Fatalf("simulator: %+v", p)
	}
	if len(st.Fiscal) != 1 || st.Fiscal[0].Version != 2 || st.Fiscal[0].IDLoyalty != "jane" || st.Fiscal[0].Receipt.Total != 10000 {
		t.Fatalf("fiscal: %+v", st.Fiscal)
	}
}

// paidSale runs a sale of amount to completion and returns its purchase id.
// scanned scans a fresh QR of user and waits until the sale waits for its
// amount.
func (e *env) scanned(user string) payment.Event {
	e.t.Helper()
	e.scan(e.sim.Payload(e.t, user))
	return e.state(payment.WaitingAmount)
}

// paid is scanned, then the host's amount: it waits until the sale is paid.
func (e *env) paid(user string, amount int64) payment.Event {
	e.t.Helper()
	e.scanned(user)
	e.call("POST", "/v1/sale", fmt.Sprintf(`{"amount": %d}`, amount), 200, nil)
	return e.state(payment.Paid)
}

// paidSale is paid, then the goods handed over: it returns the completed
// purchase's id.
func (e *env) paidSale(user string, amount int64) string {
	e.t.Helper()
	e.paid(user, amount)
	e.call("POST", "/v1/sale/handover", `{"ok": true}`, 200, nil)
	return e.state(payment.Completed).PurchaseID
}

func (e *env) refundDone(id string) payment.RefundInfo {
	e.t.Helper()
	ev := e.next(8*time.Second, "refund "+id+" done", func(ev payment.Event) bool {
		return ev.Kind == payment.KindRefund && ev.Refund.ID == id && ev.Refund.Done
	})
	var info payment.RefundInfo
	e.call("GET", "/v1/refunds/"+id, "", 200, &info)
	if info != *ev.Refund {
		e.t.Fatalf("GET refund %+v, event %+v", info, *ev.Refund)
	}
	return info
}

func TestRefunds(t *testing.T) {
	e := start(t, sim.Config{}, payment.Config{})
	pid := e.paidSale("kate", 10000)

	var part payment.RefundInfo
	e.call("POST", "/v1/refunds", fmt.Sprintf(`{"purchase_id": %q, "amount": 4000}`, pid), http.StatusAccepted, &part)
	if part.ID == "" || part.RefundID == "" {
		t.Fatalf("refund %+v", part)
	}
	if got := e.refundDone(part.ID); got.Outcome != "success" {
		t.Fatalf("partial refund %+v", got)
	}
	// Over what is left: refused by the service, nothing changes.
	var refusal struct {
		Error string `json:"error"`
		Code  int    `json:"code"`
	}
	e.call("POST", "/v1/refunds", fmt.Sprintf(`{"purchase_id": %q, "amount": 6001}`, pid), http.StatusUnprocessableEntity, &refusal)
	if refusal.Code != sp.CodeRefundExceedsAmount || refusal.Error == "" {
		t.Fatalf("refusal %+v", refusal)
	}
	var rest payment.RefundInfo
	e.call("POST", "/v1/refunds", fmt.Sprintf(`{"purchase_id": %q, "amount": 6000}`, pid), http.StatusAccepted, &rest)
	if got := e.refundDone(rest.ID); got.Outcome != "success" {
		t.Fatalf("second refund %+v", got)
	}
	e.call("GET", "/v1/refunds/1", "", http.StatusNotFound, nil)

	st := e.sim.State()
	if len(st.Refunds) != 2 {
		t.Fatalf("simulator refunds: %+v", st.Refunds)
	}
	for _, r := range st.Refunds {
		if r.Status != sp.RefundSuccess || !r.Confirmed {
			t.Errorf("refund not confirmed: %+v", r)
		}
	}
	if p, _ := st.Purchase(pid); p.Refunded != 10000 {
		t.Errorf("refunded %d, want 10000", p.Refunded)
	}
}

func TestFullRefundAndOverAmount(t *testing.T) {
	e := start(t, sim.Config{}, payment.Config{})
	pid := e.paidSale("leo", 2500)
	e.call("POST", "/v1/refunds", fmt.Sprintf(`{"purchase_id": %q, "amount": 2501}`, pid), http.StatusUnprocessableEntity, nil)
	var full payment.RefundInfo
	e.call("POST", "/v1/refunds", fmt.Sprintf(`{"purchase_id": %q, "amount": 2500}`, pid), http.StatusAccepted, &full)
	e.refundDone(full.ID)
	if r, ok := e.sim.State().Refund(full.RefundID); !ok || !r.Confirmed || r.Amount != 2500 {
		t.Fatalf("simulator: %+v", r)
	}
}

func TestOutageDuringPolling(t *testing.T) {
	e := start(t, sim.Config{SuccessDelay: time.Second}, payment.Config{Handover: payment.HandoverAuto})
	e.scanned("mia")
	// Every status answer for a while is lost or a 503.
	if err := e.sim.InjectFault(sim.Fault{Method: sim.MethodStatus, Kind: sim.FaultStatus, Status: 503, Count: 3}); err != nil {
		t.Fatal(err)
	}
	e.call("POST", "/v1/sale", `{"amount": 4400}`, 200, nil)
	e.state(payment.Checking)
	if err := e.sim.InjectFault(sim.Fault{Method: sim.MethodStatus, Kind: sim.FaultDrop, Count: 2}); err != nil {
		t.Fatal(err)
	}
	done := e.state(payment.Completed)
	for _, ev := range e.seen {
		if ev.State == payment.Declined || ev.State == payment.Cancelled {
			t.Fatalf("an unknown outcome was shown as %s", ev.State)
		}
	}
	if p := e.purchase(done.PurchaseID); !p.Confirmed {
		t.Fatalf("simulator: %+v", p)
	}
}

func TestSessionExpiryMidSale(t *testing.T) {
	e := start(t, sim.Config{}, payment.Config{})
	e.scanned("nina")
	// The session ends just before the release and again before the confirm.
	for _, m := range []string{sim.MethodRelease, sim.MethodKassaStatus} {
		if err := e.sim.InjectFault(sim.Fault{Method: m, Kind: sim.FaultExpireSession}); err != nil {
			t.Fatal(err)
		}
	}
	e.call("POST", "/v1/sale", `{"amount": 990}`, 200, nil)
	e.state(payment.Paid)
	e.call("POST", "/v1/sale/handover", `{"ok": true}`, 200, nil)
	done := e.state(payment.Completed)
	st := e.sim.State()
	if p, _ := st.Purchase(done.PurchaseID); !p.Confirmed {
		t.Fatalf("simulator: %+v", p)
	}
	if st.Requests[sim.MethodAuth] < 3 {
		t.Fatalf("%d logins, want the first plus two after the expiries", st.Requests[sim.MethodAuth])
	}
}

func TestHandoverFailedCancels(t *testing.T) {
	e := start(t, sim.Config{}, payment.Config{})
	paid := e.paid("olga", 1500)
	e.call("POST", "/v1/sale/handover", `{"ok": false}`, 200, nil)
	e.state(payment.Cancelled)
	if p := e.purchase(paid.PurchaseID); p.Status != sp.Cancelled || !p.Reversed || p.Confirmed {
		t.Fatalf("simulator: money kept for goods not handed over: %+v", p)
	}
}

func TestMalformedRequestsChangeNothing(t *testing.T) {
	e := start(t, sim.Config{}, payment.Config{})
	e.scanned("pete")
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/sale", `{"amount": "100"}`},
		{"POST", "/v1/sale", `{"amount": 100, "currency": "RUB"}`},
		{"POST", "/v1/sale", `{"amount": 100} {"amount": 200}`},
		{"POST", "/v1/sale", `{"amount": -5}`},
		{"POST", "/v1/sale", ``},
		{"POST", "/v1/sale/handover", `{}`},
		{"POST", "/v1/sale/cancel", `{"now": true}`},
		{"POST", "/v1/sale/cancel", `{}garbage`},
		{"POST", "/v1/sale/cancel", `{} {}`},
		{"POST", "/v1/refunds", `{"purchase_id": "x"}`},
		{"POST", "/v1/scan", `{"data": ""}`},
		{"POST", "/v1/sale/fiscal", `{"kkt_reg_number": "12", "fiscal_sign": "1"}`},
	} {
		e.call(c.method, c.path, c.body, http.StatusBadRequest, nil)
	}
	e.call("POST", "/v1/sale", `{"amount": 1`+strings.Repeat(" ", 70<<10)+`}`, http.StatusRequestEntityTooLarge, nil)
	e.call("POST", "/v1/sale/handover", `{"ok": true}`, http.StatusConflict, nil)
	e.call("GET", "/v1/nothing", "", http.StatusNotFound, nil)
	var st payment.Status
	e.call("GET", "/v1/state", "", 200, &st)
	if st.State != payment.WaitingAmount || st.Amount != 0 {
		t.Fatalf("state changed by malformed requests: %+v", st)
	}
	if n := e.sim.State().Requests[sim.MethodRelease]; n != 0 {
		t.Fatalf("%d releases", n)
	}
}

func TestHealthAndTokenTCP(t *testing.T) {
	log := zaptest.NewLogger(t)
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("s3cret-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(filepath.Join(dir, "j.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	se := simtest.NewServer(t, sim.Config{})
	f, err := payment.New(payment.Config{}, se.NewClient(t), j, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := localapi.New(localapi.Config{TCPAddr: "0.0.0.0:0", TokenFile: tok}, f, log); err == nil {
		t.Fatal("a non-loopback address was accepted")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	api, err := localapi.New(localapi.Config{TCPAddr: addr, TokenFile: tok,
		Health: func() (bool, []string) { return false, []string{"service unreachable"} },
		Extra:  map[string]http.Handler{"/metrics": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "m 1\n") })},
	}, f, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := api.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/v1/state", ""); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", code)
	}
	if code, _ := get("/v1/state", "wrong-token-0123456789"); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	if code, body := get("/healthz", "s3cret-token-0123456789"); code != http.StatusServiceUnavailable || !strings.Contains(body, "service unreachable") {
		t.Fatalf("healthz: %d %s", code, body)
	}
	if code, body := get("/metrics", "s3cret-token-0123456789"); code != 200 || body != "m 1\n" {
		t.Fatalf("metrics: %d %q", code, body)
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestRefundNotFinalInTimeIsCancelled(t *testing.T) {
	to := fastTimeouts()
	to.Payment = time.Second
	e := start(t, sim.Config{}, payment.Config{Timeouts: to})
	pid := e.paidSale("quinn", 3000)
	// The service cannot say how the refund went for longer than the timeout.
	if err := e.sim.InjectFault(sim.Fault{Method: sim.MethodRefundStatus, Kind: sim.FaultStatus, Status: 503, Count: 1000}); err != nil {
		t.Fatal(err)
	}
	var r payment.RefundInfo
	e.call("POST", "/v1/refunds", fmt.Sprintf(`{"purchase_id": %q, "amount": 3000}`, pid), http.StatusAccepted, &r)
	if got := e.refundDone(r.ID); got.Outcome != "timeout" {
		t.Fatalf("refund %+v", got)
	}
	sr, _ := e.sim.State().Refund(r.RefundID)
	if sr.Status != sp.RefundCancelled || sr.Confirmed {
		t.Fatalf("simulator: %+v", sr)
	}
}

// Fiscal records wait out an outage of the service: queued in the journal,
// forwarded once it answers again, v1 and v2 (with the sale's QR).
func TestFiscalForwardedAfterOutage(t *testing.T) {
	e := start(t, sim.Config{}, payment.Config{})
	pid := e.paidSale("rita", 10000)
	for _, m := range []string{sim.MethodFiscalV1, sim.MethodFiscalV2} {
		if err := e.sim.InjectFault(sim.Fault{Method: m, Kind: sim.FaultStatus, Status: 503, Count: 2}); err != nil {
			t.Fatal(err)
		}
	}
	e.call("POST", "/v1/sale/fiscal", `{"kkt_reg_number":"0000000012345678","fiscal_sign":"3522207798"}`, 200, nil)
	e.call("POST", "/v1/sale/fiscal", fmt.Sprintf(`{"purchase_id": %q, "receipt": %s}`, pid, receipt), 200, nil)
	// The host repeats a request whose answer it lost: not queued twice.
	e.call("POST", "/v1/sale/fiscal", `{"kkt_reg_number":"0000000012345678","fiscal_sign":"3522207798"}`, 200, nil)
	delivered := 0 // v1 and v2, each an event once delivered
	e.next(10*time.Second, "v1 and v2 delivered", func(ev payment.Event) bool {
		if ev.Kind == payment.KindFiscal {
			delivered++
		}
		return delivered == 2
	})
	var after payment.Status
	e.call("GET", "/v1/state", "", 200, &after)
	if after.FiscalPending != 0 {
		t.Fatalf("fiscal queue not empty: %+v", after)
	}
	st := e.sim.State()
	if len(st.Fiscal) != 2 {
		t.Fatalf("fiscal records: %+v", st.Fiscal)
	}
	v := map[int]sim.FiscalRecord{}
	for _, f := range st.Fiscal {
		v[f.Version] = f
	}
	if v[1].PurchaseID != pid || v[2].PurchaseID != pid || v[2].IDLoyalty != "rita" || v[2].Receipt == nil {
		t.Fatalf("fiscal records: %+v", st.Fiscal)
	}
	if st.Requests[sim.MethodFiscalV1] < 3 {
		t.Fatalf("v1 sent %d times; the outage was not waited out", st.Requests[sim.MethodFiscalV1])
	}
}

// Answers that do not say whether the call took effect (a proxy's code-less
// 403, a 429) are not refusals: the confirm is repeated until the service
// accepts it, instead of the paid sale ending Declined with goods handed over.
func TestConfirmNotRefusedByProxyOr429(t *testing.T) {
	var proxied atomic.Int32
	mw := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == sp.PathKassaStatus && proxied.Add(1) == 1 {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusForbidden)
				io.WriteString(w, "<html>forbidden by proxy</html>")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	e := start(t, sim.Config{Middleware: mw}, payment.Config{})
	paid := e.paid("pete", 2500)
	// The middleware answers the first confirm; the simulator the second with 429.
	if err := e.sim.InjectFault(sim.Fault{Method: sim.MethodKassaStatus, Kind: sim.FaultStatus, Status: http.StatusTooManyRequests, Code: sp.CodeBadRequest}); err != nil {
		t.Fatal(err)
	}
	e.call("POST", "/v1/sale/handover", `{"ok": true}`, 200, nil)
	e.state(payment.Completed)
	for _, ev := range e.seen {
		if ev.State == payment.Declined || ev.State == payment.Cancelled {
			t.Fatalf("an unknown outcome was shown as %s; events: %s", ev.State, e.trace())
		}
	}
	if p := e.purchase(paid.PurchaseID); !p.Confirmed || confirmations(p) != "success" {
		t.Fatalf("simulator: %+v", p)
	}
	if n := proxied.Load(); n < 3 {
		t.Fatalf("%d confirms, want the proxy's, the 429's and the accepted one", n)
	}
}

// The amount of a sale is set once: a different amount before the release
// is refused instead of answered 200 and ignored; the same amount again (a
// host's retry) succeeds.
func TestChangedAmountRefused(t *testing.T) {
	e := start(t, sim.Config{}, payment.Config{Handover: payment.HandoverAuto})
	// Hold the commit so both amounts reach the sale while it is Committing.
	if err := e.sim.InjectFault(sim.Fault{Method: sim.MethodCommit, Kind: sim.FaultDelay, Delay: 700 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	e.scan(e.sim.Payload(t, "quinn"))
	e.state(payment.Committing)
	e.call("POST", "/v1/sale", `{"amount": 100}`, 200, nil)
	e.call("POST", "/v1/sale", `{"amount": 150}`, http.StatusConflict, nil)
	e.call("POST", "/v1/sale", `{"amount": 100}`, 200, nil)
	done := e.state(payment.Completed)
	if p := e.purchase(done.PurchaseID); p.Amount != 100 {
		t.Fatalf("simulator: %+v", p)
	}
}

// A repeated "handed over" is the host's retry, not a failure: concurrent
// duplicates and one after the confirm all succeed, and the purchase is
// confirmed once.
func TestRepeatedHandoverSucceeds(t *testing.T) {
	e := start(t, sim.Config{}, payment.Config{})
	paid := e.paid("rita", 1700)
	var wg sync.WaitGroup
	codes := make([]int, 3)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := e.hc.Post("http://kioskd/v1/sale/handover", "application/json", strings.NewReader(`{"ok": true}`))
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Fatalf("concurrent hand-over %d: HTTP %d, want 200 (all: %v)", i, c, codes)
		}
	}
	e.call("POST", "/v1/sale/handover", `{"ok": true}`, 200, nil)
	e.state(payment.Completed)
	e.call("POST", "/v1/sale/handover", `{"ok": true}`, 200, nil)
	if p := e.purchase(paid.PurchaseID); !p.Confirmed || confirmations(p) != "success" {
		t.Fatalf("simulator: %+v", p)
	}
}

// A host repeating POST /v1/refunds with the same idempotency key (body
// request_id or Idempotency-Key header) gets the first refund back, not a
// second refund.
func TestRefundRepeatedWithKeyRefundsOnce(t *testing.T) {
	e := start(t, sim.Config{}, payment.Config{})
	pid := e.paidSale("sven", 10000)
	body := fmt.Sprintf(`{"purchase_id": %q, "amount": 3000, "request_id": "host-42"}`, pid)
	var first, again, byHeader payment.RefundInfo
	e.call("POST", "/v1/refunds", body, http.StatusAccepted, &first)
	e.call("POST", "/v1/refunds", body, http.StatusAccepted, &again)
	req, _ := http.NewRequest("POST", "http://kioskd/v1/refunds", strings.NewReader(fmt.Sprintf(`{"purchase_id": %q, "amount": 3000}`, pid)))
	req.Header.Set("Idempotency-Key", "host-42")
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&byHeader)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("header repeat: HTTP %d, %v", resp.StatusCode, err)
	}
	if first.ID == "" || again.ID != first.ID || byHeader.ID != first.ID {
		t.Fatalf("repeats made new refunds: %s, %s, %s", first.ID, again.ID, byHeader.ID)
	}
	e.call("POST", "/v1/refunds", fmt.Sprintf(`{"purchase_id": %q, "amount": 2000, "request_id": "host-42"}`, pid), http.StatusBadRequest, nil)
	if got := e.refundDone(first.ID); got.Outcome != "success" {
		t.Fatalf("refund %+v", got)
	}
	var late payment.RefundInfo
	e.call("POST", "/v1/refunds", body, http.StatusAccepted, &late)
	if late.ID != first.ID || !late.Done {
		t.Fatalf("repeat after the end: %+v", late)
	}
	st := e.sim.State()
	if p, _ := st.Purchase(pid); len(st.Refunds) != 1 || p.Refunded != 3000 {
		t.Fatalf("simulator: %d refunds, %d refunded; want one of 3000", len(st.Refunds), p.Refunded)
	}
}
