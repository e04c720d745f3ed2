package chaostest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/kiosktest"
	"github.com/kioskd/kioskd/payment/proctest"
	"github.com/kioskd/kioskd/payment/smartpay/sim/simtest"
	"github.com/kioskd/kioskd/scanner/serial/serialtest"
)

// errKilled: kioskd died during the sale (it has been restarted); the
// sale is left to kioskd's recovery.
var errKilled = errors.New("kioskd was killed")

// host plays the host application (and the customer and the scanner).
type host struct {
	t    testing.TB
	k    *kioskd
	s    *simulator
	pty  *serialtest.Pty
	seed uint64
	book *book

	prevQR   string    // the QR of the previous sale, for a rescan
	prevUser string    // ...and its id_loyalty
	lastScan time.Time // when the host last scanned, to keep a rescan out of the duplicate window
	lastSale string    // the last sale id seen, to tell a new sale from it
	retries  []func()  // host requests that got no answer, repeated once kioskd is back
}

// scanForm is how a payload may reach kioskd: what a scanner set-up puts
// around it on the serial line, or what a QR generator put around it (sent
// with POST /v1/scan as a host would).
type scanForm struct {
	name string
	wrap func(payload string) []byte
}

// scanForms are the serial scanner's forms (scanner/frame strips them).
var scanForms = []scanForm{
	{"cr", func(p string) []byte { return []byte(p + "\r") }},
	{"crlf", func(p string) []byte { return []byte(p + "\r\n") }},
	{"bare", func(p string) []byte { return []byte(p) }}, // the closing brace ends it
	{"aim_cr", func(p string) []byte { return []byte("]Q1" + p + "\r") }},
	{"stx_etx", func(p string) []byte { return []byte("\x02" + p + "\x03") }},
	{"tab", func(p string) []byte { return []byte(p + "\t") }},
	{"pretty_crlf", func(p string) []byte { return append(indent(p, "\r\n"), '\r', '\n') }},
	{"honeywell_code_id", func(p string) []byte { return []byte("s" + p + "\r") }},
	{"newland_code_id_aim", func(p string) []byte { return []byte("Q]Q1" + p + "\r\n") }},
	{"zebra_code_id", func(p string) []byte { return []byte("P01" + p + "\r") }},
	{"datalogic_label_ids", func(p string) []byte { return []byte("QR" + p + "QR\r") }},
	{"custom_suffix", func(p string) []byte { return []byte(p + "#END\r") }},
	{"aim_eci", func(p string) []byte { return []byte("]Q2\\000026" + strings.ReplaceAll(p, `\`, `\\`) + "\r") }},
	{"bom_pretty", func(p string) []byte { return append([]byte("\uFEFF"), append(indent(p, "\n"), '\r')...) }},
}

// apiForms are a generator's forms (smartpay.ParseQR reads them).
var apiForms = []scanForm{
	{"bare", func(p string) []byte { return []byte(p) }},
	{"bom", func(p string) []byte { return []byte("\uFEFF" + p) }},
	{"pretty", func(p string) []byte { return indent(p, "\n") }},
	{"escaped_slashes", func(p string) []byte { return []byte(strings.ReplaceAll(p, "/", `\/`)) }},
	{"link_query", func(p string) []byte { return []byte("https://pay.example.ru/qr?v=1&data=" + url.QueryEscape(p)) }},
	{"link_fragment", func(p string) []byte { return []byte("kdpay://pay#" + url.PathEscape(p)) }},
}

func indent(p, newline string) []byte {
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(p), "", "  "); err != nil {
		panic(err)
	}
	return bytes.ReplaceAll(b.Bytes(), []byte("\n"), []byte(newline))
}

// sale runs one sale by its plan. Whatever happens, it returns with the
// sale left to kioskd (finished, or being recovered after a kill).
func (h *host) sale(p plan) {
	b := h.book
	b.plans[p.kind]++
	h.s.disarm() // a kill armed for a call the last sale never made
	if _, err := h.waitQuiet(); err != nil {
		b.violation("before sale %d: %v", p.index, err)
		return
	}
	h.retry()
	cur := &sale{plan: p}
	err := h.runSale(p, cur)
	switch {
	case err == nil, errors.Is(err, errKilled):
	default:
		b.violation("sale %d (%s): %v", p.index, p.kind, err)
	}
}

func (h *host) runSale(p plan, cur *sale) error {
	// Scan (and the amount first).
	if err := h.step(p, stepScan); err != nil {
		return err
	}
	if p.amountFirst {
		if _, err := h.send(p, stepScan, request{method: "POST", path: "/v1/sale", body: amountBody(p.amount), idempotent: true}); err != nil {
			return err
		}
	}
	user, qr := h.prevUser, h.prevQR
	if p.kind != kindRescan || qr == "" {
		user = fmt.Sprintf("chaos-%d-%d", h.seed, p.index)
		var err error
		if qr, err = h.s.qr(user); err != nil {
			return err
		}
	} else {
		// Past the duplicate window, or kioskd rightly drops it as a double read.
		time.Sleep(time.Until(h.lastScan.Add(dupWindow + 50*time.Millisecond)))
	}
	h.prevQR, h.prevUser = qr, user
	if err := h.scan(p, stepScan, qr); err != nil {
		return err
	}
	st, err := h.wait("the sale to start", func(st payment.Status) bool { return st.SaleID != "" && st.SaleID != h.lastSale })
	if err != nil {
		return h.dropPendingAmount(err)
	}
	h.adopt(cur, st.SaleID, user)

	// Committed: the amount, or what this kind does instead.
	st, err = h.waitSale(cur, "the commit", payment.WaitingAmount, payment.Releasing, payment.Paying, payment.Checking, payment.Paid)
	if err != nil {
		return err
	}
	if err := h.step(p, stepAmount); err != nil {
		return err
	}
	if !st.State.Terminal() {
		switch p.kind {
		case kindCancelWaiting:
			_, err = h.send(p, stepAmount, request{method: "POST", path: "/v1/sale/cancel"})
		case kindPaidElsewhere:
			var as []answer
			as, err = h.send(p, stepAmount, request{method: "POST", path: "/v1/sale/paid-elsewhere", body: `{"receipt": ` + receiptJSON(p.amount) + `}`})
			if acked(as) {
				cur.paidElsewhere = true
			}
		case kindReplaced:
			if err = h.replace(p, cur); err == nil && !p.amountFirst {
				_, err = h.send(p, stepAmount, request{method: "POST", path: "/v1/sale", body: amountBody(p.amount), idempotent: true})
			}
		default:
			if !p.amountFirst {
				_, err = h.send(p, stepAmount, request{method: "POST", path: "/v1/sale", body: amountBody(p.amount), idempotent: true})
			}
		}
		if err != nil {
			return err
		}
	}

	// Paying: the hand-over, or a cancel.
	want := []payment.State{payment.Paid}
	if p.kind == kindProcessingCancel {
		want = append(want, payment.Paying, payment.Checking)
	}
	st, err = h.waitSale(cur, "the payment", want...)
	if err != nil {
		return err
	}
	if err := h.step(p, stepPaid); err != nil {
		return err
	}
	if !st.State.Terminal() {
		switch p.kind {
		case kindProcessingCancel, kindCancelPaid:
			_, err = h.send(p, stepPaid, request{method: "POST", path: "/v1/sale/cancel"})
		case kindHandoverRefused:
			cur.handoverFalse = true
			var as []answer
			as, err = h.send(p, stepPaid, request{method: "POST", path: "/v1/sale/handover", body: `{"ok": false}`})
			cur.handoverFalseAcked = acked(as)
		default:
			// A host calls this after the goods are out: from here they are given.
			cur.handover = true
			var as []answer
			as, err = h.send(p, stepPaid, request{method: "POST", path: "/v1/sale/handover", body: `{"ok": true}`, idempotent: true})
			cur.handoverAcked = acked(as)
		}
		if err != nil {
			return err
		}
	}
	if st, err = h.waitSale(cur, "the end of the sale"); err != nil {
		return err
	}
	if st.State != payment.Completed {
		return nil
	}

	// Completed: the fiscal record and refunds.
	if err := h.step(p, stepFiscal); err != nil {
		return err
	}
	if p.fiscal > 0 {
		if err := h.fiscal(p, cur); err != nil {
			return err
		}
	}
	if err := h.step(p, stepRefund); err != nil {
		return err
	}
	time.Sleep(p.refundDelay)
	for _, rp := range p.refunds {
		if err := h.refund(p, cur, rp); err != nil {
			return err
		}
	}
	return nil
}

// adopt makes id the sale the host is driving.
func (h *host) adopt(cur *sale, id, user string) {
	h.lastSale = id
	cur.id, cur.user = id, user
	h.book.sales[id] = cur
}

// scan delivers qr over the serial pty (when the plan says so and the
// scanner is up) or POST /v1/scan.
func (h *host) scan(p plan, step int, qr string) error {
	h.lastScan = time.Now()
	if p.viaPTY {
		if ready, reasons, err := h.k.health(); err == nil && (ready || !mentions(reasons, "scanner")) {
			f := scanForms[p.scanForm]
			h.book.ptyScans[f.name]++
			_, err := h.pty.Master.Write(f.wrap(qr))
			return err
		}
	}
	f := apiForms[p.apiForm]
	h.book.apiScans[f.name]++
	body, _ := json.Marshal(map[string]string{"data": string(f.wrap(qr))})
	_, err := h.send(p, step, request{method: "POST", path: "/v1/scan", body: string(body)})
	return err
}

func mentions(reasons []string, word string) bool {
	for _, r := range reasons {
		if strings.Contains(r, word) {
			return true
		}
	}
	return false
}

// replace scans a second QR while the sale waits for its amount: the
// first is cancelled and the second becomes the sale.
func (h *host) replace(p plan, cur *sale) error {
	user := fmt.Sprintf("chaos-%d-%dr", h.seed, p.index)
	qr, err := h.s.qr(user)
	if err != nil {
		return err
	}
	if err := h.scan(p, stepAmount, qr); err != nil {
		return err
	}
	st, err := h.wait("the replacing sale", func(st payment.Status) bool { return st.SaleID != "" && st.SaleID != cur.id })
	if err != nil {
		return err
	}
	first := *cur
	h.book.sales[first.id] = &first
	cur.replaced = first.id
	h.adopt(cur, st.SaleID, user)
	_, err = h.waitSale(cur, "the replacing commit", payment.WaitingAmount, payment.Releasing)
	return err
}

func (h *host) fiscal(p plan, cur *sale) error {
	pid := h.book.obs[cur.id].purchaseID
	body := `{"kkt_reg_number": "0000000012345678", "fiscal_sign": "` + fmt.Sprint(1000+p.index) + `"`
	if p.fiscal == 2 {
		body = `{"receipt": ` + receiptJSON(p.amount) + ``
	}
	if p.fiscalByID {
		body += fmt.Sprintf(`, "purchase_id": %q`, pid)
	}
	body += "}"
	r := request{method: "POST", path: "/v1/sale/fiscal", body: body}
	as, err := h.send(p, stepFiscal, r)
	if !p.fiscalByID {
		// A retry after a restart must name the purchase: "the last
		// sale" may be another one by then.
		r.body = strings.TrimSuffix(body, "}") + fmt.Sprintf(`, "purchase_id": %q}`, pid)
	}
	f := &fiscalRec{purchaseID: pid, version: p.fiscal, acked: acked(as)}
	h.book.fiscal = append(h.book.fiscal, f)
	if !f.acked {
		h.retries = append(h.retries, func() {
			if a := h.k.do(withTransport(r, p.tcp), nil); a.ok && a.code == http.StatusOK {
				f.acked = true
			}
		})
	}
	return err
}

func (h *host) refund(p plan, cur *sale, rp refundPlan) error {
	pid := h.book.obs[cur.id].purchaseID
	rr := &refundRec{purchaseID: pid, amount: rp.amount, ids: map[string]bool{}}
	h.book.refunds = append(h.book.refunds, rr)
	r := request{method: "POST", path: "/v1/refunds", idempotent: rp.requestID}
	if rp.requestID {
		rr.requestID = fmt.Sprintf("req-%d-%d-%d", h.seed, p.index, len(h.book.refunds))
		if rp.header {
			r.header = map[string]string{"Idempotency-Key": rr.requestID}
			r.body = fmt.Sprintf(`{"purchase_id": %q, "amount": %d}`, pid, rp.amount)
		} else {
			r.body = fmt.Sprintf(`{"purchase_id": %q, "amount": %d, "request_id": %q}`, pid, rp.amount, rr.requestID)
		}
	} else {
		r.body = fmt.Sprintf(`{"purchase_id": %q, "amount": %d}`, pid, rp.amount)
	}
	pp := p
	pp.twice[stepRefund] = rp.twice
	as, err := h.send(pp, stepRefund, r)
	rr.note(as)
	if rp.repeat && rp.requestID && err == nil {
		rr.note([]answer{h.k.do(withTransport(r, p.tcp), nil)})
	}
	if rp.requestID && !rr.answered {
		// No answer (kioskd killed): the host asks again with the same
		// key once kioskd is back; it must get the same refund.
		h.retries = append(h.retries, func() { rr.note([]answer{h.k.do(withTransport(r, p.tcp), nil)}) })
	}
	return err
}

func withTransport(r request, tcp bool) request {
	r.tcp = tcp
	return r
}

// step injects the faults planned before step s and carries out a kill
// planned between the requests.
func (h *host) step(p plan, s int) error {
	for _, f := range p.faults[s] {
		if err := h.s.inject(f); err != nil {
			h.t.Fatal(err)
		}
	}
	if p.kill.step != s {
		return nil
	}
	switch p.kill.mode {
	case killBetween:
		h.k.kill()
		h.book.countKill(p.kill.String())
		h.restart()
		return errKilled
	case killAtCall:
		h.s.arm(p.kill)
	}
	return nil
}

// send sends r, twice at once when the plan says so, and with the kill
// "right after the request was written" when it is planned for this step.
// It returns errKilled (after a restart) when kioskd died meanwhile.
func (h *host) send(p plan, step int, r request) ([]answer, error) {
	r.tcp = p.tcp
	var wrote func()
	if p.kill.mode == killAfterSend && p.kill.step == step {
		var once sync.Once
		wrote = func() {
			once.Do(func() {
				time.AfterFunc(p.kill.delay, func() {
					h.k.kill()
					h.book.countKill(p.kill.String())
				})
			})
		}
	}
	n := 1
	if p.twice[step] {
		n = 2
		h.book.twice++
	}
	out := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = h.k.do(r, wrote)
		}()
	}
	wg.Wait()
	for _, a := range out {
		if a.ok {
			h.observeBody(a.body)
		}
	}
	if wrote != nil {
		// The kill fires at most a few milliseconds after the write;
		// wait for it, so the next request does not race it.
		for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if ended, _ := h.k.down(); ended {
				break
			}
		}
	}
	if err := h.checkAlive(); err != nil {
		return out, err
	}
	if r.idempotent && n == 2 && out[0].ok && out[1].ok && out[0].code != out[1].code {
		h.book.violation("sale %d: %s %s %s sent twice at once: answers differ: %s / %s", p.index, r.method, r.path, r.body, out[0], out[1])
	}
	for _, a := range out {
		if !a.ok {
			h.book.violation("sale %d: %s %s got no answer from a running kioskd", p.index, r.method, r.path)
		} else if a.code >= 500 && a.code != http.StatusServiceUnavailable {
			h.book.violation("sale %d: %s %s: %s", p.index, r.method, r.path, a)
		}
	}
	return out, nil
}

func acked(as []answer) bool {
	for _, a := range as {
		if a.ok && a.code == http.StatusOK {
			return true
		}
	}
	return false
}

// checkAlive restarts kioskd if it died; errKilled tells the sale.
func (h *host) checkAlive() error {
	ended, byTest := h.k.down()
	if !ended {
		return nil
	}
	if !byTest {
		h.book.violation("kioskd exited on its own; log tail:\n%s", h.k.logTail(4000))
	}
	h.restart()
	return errKilled
}

// restart starts kioskd again on the same journal. A kill armed at a call
// may land during its recovery: then it starts again.
func (h *host) restart() {
	for {
		h.book.restarts++
		err := h.k.start()
		if err == nil {
			return
		}
		if ended, byTest := h.k.down(); ended && byTest {
			continue
		}
		h.t.Fatalf("restart %d: %v; log tail:\n%s", h.book.restarts, err, h.k.logTail(6000))
	}
}

// retry repeats the host requests that got no answer before a kill.
func (h *host) retry() {
	pending := h.retries
	h.retries = nil
	for _, f := range pending {
		f()
	}
}

// waitSale waits until the current sale is in one of want or has ended.
func (h *host) waitSale(cur *sale, what string, want ...payment.State) (payment.Status, error) {
	return h.wait(what, kiosktest.SaleReached(cur.id, want...))
}

// waitQuiet waits until kioskd takes a new sale.
func (h *host) waitQuiet() (payment.Status, error) {
	st, err := h.wait("kioskd to be quiet", kiosktest.Quiet)
	for errors.Is(err, errKilled) { // an armed kill landed: wait for the new process
		st, err = h.wait("kioskd to be quiet", kiosktest.Quiet)
	}
	if err == nil && st.SaleID != "" {
		h.lastSale = st.SaleID // perhaps a sale recovered after a kill, never adopted
	}
	return st, err
}

// wait polls the state until ok; errKilled when kioskd died meanwhile.
func (h *host) wait(what string, ok func(payment.Status) bool) (payment.Status, error) {
	deadline := time.Now().Add(3*saleTimeouts + 10*time.Second)
	for {
		st, err := h.k.state()
		if err == nil {
			h.observe(st)
			if ok(st) {
				return st, nil
			}
		} else if err := h.checkAlive(); err != nil {
			return st, err
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("waited too long for %s; state %+v", what, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// dropPendingAmount clears an amount sent before a scan that started no
// sale, so it does not stick to the next one.
func (h *host) dropPendingAmount(err error) error {
	if !errors.Is(err, errKilled) {
		h.k.do(request{method: "POST", path: "/v1/sale/cancel"}, nil)
	}
	return err
}

func (h *host) observeBody(b []byte) {
	var st payment.Status
	if json.Unmarshal(b, &st) == nil && st.SaleID != "" {
		h.observe(st)
	}
}

// observe notes what the API says about a sale.
func (h *host) observe(st payment.Status) {
	if st.SaleID == "" {
		return
	}
	o := h.book.obs[st.SaleID]
	if o == nil {
		o = &observed{ends: map[payment.State]bool{}}
		h.book.obs[st.SaleID] = o
	}
	if st.PurchaseID != "" {
		o.purchaseID = st.PurchaseID
	}
	if st.State.Terminal() {
		o.ends[st.State] = true
	}
}

func amountBody(a int64) string { return fmt.Sprintf(`{"amount": %d}`, a) }

func receiptJSON(total int64) string {
	return fmt.Sprintf(`{"kkt_reg_number":"0000000012345678","fn_number":"9999078900001234","fd_number":42,
"fiscal_sign":"3522683461","datetime":"2025-03-01T12:00:00+03:00","operation":"income","total":%d,
"items":[{"name":"Вода","price":%d,"quantity":1,"amount":%d,"vat":"vat20"}]}`, total, total, total)
}

// simulator is the Smart Pay simulator in the test process, with the
// admin API on loopback and the trap that kills kioskd at a call: before
// the call takes effect, or after (the call takes effect, the answer is
// lost).
type simulator struct {
	srv      *simtest.Server
	adminURL string
	k        *kioskd
	book     *book
	trap     proctest.Trap
}

func (s *simulator) arm(k killPlan) { s.trap.Arm(proctest.At{Method: k.method, After: k.after}) }

func (s *simulator) disarm() {
	if s.trap.Disarm() {
		s.book.count(&s.book.killsMissed)
	}
}
