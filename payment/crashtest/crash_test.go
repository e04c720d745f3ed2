package crashtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/journal"
	"github.com/kioskd/kioskd/payment/localapi"
	"github.com/kioskd/kioskd/payment/proctest"
	sp "github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
	"github.com/kioskd/kioskd/payment/smartpay/sim/simtest"
)

const childEnv = "KIOSKD_CRASHTEST_AGENT"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(agentMain())
	}
	goleak.VerifyTestMain(m)
}

// agentMain is the agent process: the real wiring of client, journal, flow
// and local API, configured from the environment, until SIGTERM.
func agentMain() int {
	log, _ := zap.NewDevelopment()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	var cfg sp.Config
	if err := json.Unmarshal([]byte(os.Getenv("CRASH_CLIENT")), &cfg); err != nil {
		log.Error("client config", zap.Error(err))
		return 2
	}
	c, err := sp.NewClient(cfg, log)
	if err != nil {
		log.Error("client", zap.Error(err))
		return 2
	}
	if err := c.Start(ctx); err != nil {
		log.Error("client start", zap.Error(err))
		return 2
	}
	defer c.Close()
	j, err := journal.Open(os.Getenv("CRASH_JOURNAL"))
	if err != nil {
		log.Error("journal", zap.Error(err))
		return 2
	}
	defer j.Close()
	receipts, err := ownReceipts()
	if err != nil {
		log.Error("fiscal provider", zap.Error(err))
		return 2
	}
	f, err := payment.New(payment.Config{KassaID: "crash", Linger: 10 * time.Millisecond, Receipts: receipts,
		Timeouts: payment.Timeouts{Amount: 10 * time.Second, Payment: 10 * time.Second, Handover: 10 * time.Second, Call: 2 * time.Second}}, c, j, log)
	if err != nil {
		log.Error("flow", zap.Error(err))
		return 2
	}
	api, err := localapi.New(localapi.Config{Socket: os.Getenv("CRASH_SOCK")}, f, log)
	if err != nil {
		log.Error("api", zap.Error(err))
		return 2
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = api.Serve(ctx) }()
	err = f.Run(ctx)
	wg.Wait()
	if ctx.Err() == nil {
		log.Error("flow ended", zap.Error(err))
		return 1
	}
	return 0
}

// killName names a kill point for the test: "before_commit",
// "after_kassa_status_success" (the body's status, when it picks one).
func killName(at proctest.At) string {
	if at.Body == "" {
		return at.String()
	}
	return at.String() + "_" + strings.Trim(at.Body, `"`)
}

// agent runs and kills the agent process; its trap kills it at a call of
// the simulator.
type agent struct {
	t    *testing.T
	env  []string
	sock string
	hc   *http.Client
	tr   *http.Transport
	out  *os.File // the agent writes its output here directly: no copier goroutine
	proc proctest.Process
	trap proctest.Trap
}

func (a *agent) start() {
	a.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), a.env...)
	cmd.Stdout, cmd.Stderr = a.out, a.out
	if err := a.proc.Start(cmd); err != nil {
		a.t.Fatal(err)
	}
	exited := a.proc.Exited()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, err := a.state(); err == nil && st.Ready {
			return // recovered and taking sales
		}
		select {
		case <-exited:
			a.t.Fatalf("agent exited at start; output:\n%s", a.output())
		default:
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("agent did not come up; output:\n%s", a.output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (a *agent) output() string {
	b, _ := os.ReadFile(a.out.Name())
	return string(b)
}

// kill SIGKILLs the agent and waits until it is gone.
func (a *agent) kill() {
	a.proc.Kill()
	a.tr.CloseIdleConnections()
}

// stop ends the agent cleanly (SIGTERM).
func (a *agent) stop() {
	if err := a.proc.Stop(10 * time.Second); err != nil {
		a.t.Error(err)
	}
	a.tr.CloseIdleConnections()
}

// do sends an API request; ok is false when the agent is gone.
func (a *agent) do(method, path, body string) (int, []byte, bool) {
	req, _ := http.NewRequest(method, "http://agent"+path, strings.NewReader(body))
	resp, err := a.hc.Do(req)
	if err != nil {
		return 0, nil, false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err == nil
}

func (a *agent) state() (payment.Status, error) {
	code, b, ok := a.do("GET", "/v1/state", "")
	if !ok || code != 200 {
		return payment.Status{}, fmt.Errorf("agent gone")
	}
	var st payment.Status
	return st, json.Unmarshal(b, &st)
}

// waitState polls until the agent is in one of want; false when it died.
func (a *agent) waitState(want ...payment.State) (payment.Status, bool) {
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		st, err := a.state()
		if err != nil {
			return st, false
		}
		for _, w := range want {
			if st.State == w {
				return st, true
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	a.t.Fatalf("agent never reached %v; output:\n%s", want, a.output())
	return payment.Status{}, false
}

// host is what the host application did and was told.
type host struct {
	handedOver  map[string]bool // purchase id → the host gave the goods and said so
	handAcked   map[string]bool // ...and the agent answered 200
	fiscalAcked map[string]bool
	refunds     int // refund requests sent
}

type scenario struct {
	kill   proctest.At
	refund bool  // run a paid sale first, then a refund
	amount int64 // ...52 makes the host cancel during the payment
}

func scenarios() []scenario {
	var out []scenario
	for _, after := range []bool{false, true} {
		for _, m := range []string{sim.MethodCommit, sim.MethodRelease, sim.MethodStatus} {
			out = append(out, scenario{kill: proctest.At{Method: m, After: after}, amount: 10000})
		}
		out = append(out,
			scenario{kill: proctest.At{Method: sim.MethodKassaStatus, Body: `"success"`, After: after}, amount: 10000},
			scenario{kill: proctest.At{Method: sim.MethodKassaStatus, Body: `"cancel"`, After: after}, amount: 10052},
			scenario{kill: proctest.At{Method: sim.MethodFiscalV1, After: after}, amount: 10000})
		for _, m := range []string{sim.MethodRefund, sim.MethodRefundStatus} {
			out = append(out, scenario{kill: proctest.At{Method: m, After: after}, refund: true, amount: 10000})
		}
		out = append(out, scenario{kill: proctest.At{Method: sim.MethodRefundKassaStatus, Body: `"success"`, After: after}, refund: true, amount: 10000})
	}
	return out
}

func TestKillAtEveryStep(t *testing.T) {
	for _, sc := range scenarios() {
		name := killName(sc.kill)
		if sc.refund {
			name = "refund_" + name
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runScenario(t, sc)
		})
	}
}

// newAgent prepares (does not start) the agent process of a scenario, with
// its output in a file of the test's directory, and the simulator whose
// middleware kills it. A commit whose sale record was not yet on disk when
// the agent died is left to the service to expire (the record is written
// beside the commit): a short CommitTTL lets the scenario settle.
func newAgent(t *testing.T, successDelay time.Duration) (*agent, *simtest.Server) {
	dir := t.TempDir()
	out, err := os.OpenFile(filepath.Join(dir, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	a := &agent{t: t, sock: filepath.Join(dir, "api.sock"), out: out}
	a.trap.Kill = func(proctest.At) { a.kill() }
	a.tr = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", a.sock)
	}}
	a.hc = &http.Client{Transport: a.tr, Timeout: 5 * time.Second}
	srv := simtest.NewServer(t, sim.Config{SuccessDelay: successDelay, CommitTTL: 2 * time.Second, Middleware: a.trap.Middleware})
	// The agent does not retry: the flow repeats what needs repeating, and
	// the scenarios count the requests.
	ccfg := srv.ClientConfig(1)
	ccfg.Retries = -1
	client, err := json.Marshal(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	a.env = []string{childEnv + "=1", "CRASH_CLIENT=" + string(client),
		"CRASH_JOURNAL=" + filepath.Join(dir, "journal.db"), "CRASH_SOCK=" + a.sock}
	return a, srv
}

func runScenario(t *testing.T, sc scenario) {
	a, srv := newAgent(t, 150*time.Millisecond)
	a.start()
	h := &host{handedOver: map[string]bool{}, handAcked: map[string]bool{}, fiscalAcked: map[string]bool{}}

	var paidID string
	if sc.refund {
		paidID = sale(t, a, srv, h, 10000, true) // no kill armed yet
		if paidID == "" {
			t.Fatalf("the preparatory sale did not complete; output:\n%s", a.output())
		}
	}
	a.trap.Arm(sc.kill)
	if sc.refund {
		h.refunds++
		a.do("POST", "/v1/refunds", fmt.Sprintf(`{"purchase_id": %q, "amount": 4000}`, paidID))
	} else {
		sale(t, a, srv, h, sc.amount, false)
	}
	// Calls go on in the background (polls, fiscal); wait for the kill.
	waitFor(t, a, "the kill at "+killName(sc.kill), a.proc.Killed)

	// Restart on the same journal and let recovery finish.
	a.start()
	waitFor(t, a, "recovery and the simulator to converge", func() bool {
		st, err := a.state()
		return err == nil && st.Ready && (st.State == payment.Idle || st.State.Terminal()) && settled(srv.State(), h)
	})
	// The host sends fiscal data it could not deliver before the crash.
	for pid := range h.handedOver {
		if p, _ := srv.State().Purchase(pid); p.Confirmed && !h.fiscalAcked[pid] {
			code, _, _ := a.do("POST", "/v1/sale/fiscal", fmt.Sprintf(`{"purchase_id": %q, "kkt_reg_number": "0000000012345678", "fiscal_sign": "77"}`, pid))
			h.fiscalAcked[pid] = code == 200
		}
	}
	waitFor(t, a, "fiscal delivery", func() bool {
		st, err := a.state()
		return err == nil && st.FiscalPending == 0 && fiscalDelivered(srv.State(), h)
	})
	a.stop()
	check(t, sc, srv.State(), h, a.output())
}

// sale drives one sale as the host would; it returns the purchase id when
// the sale completed, "" when the agent died on the way.
func sale(t *testing.T, a *agent, srv *simtest.Server, h *host, amount int64, fiscal bool) string {
	b, _ := json.Marshal(map[string]string{"data": srv.Payload(t, "crash-user")})
	if code, _, ok := a.do("POST", "/v1/scan", string(b)); !ok || code != http.StatusAccepted {
		return ""
	}
	if _, ok := a.waitState(payment.WaitingAmount); !ok {
		return ""
	}
	if code, _, ok := a.do("POST", "/v1/sale", fmt.Sprintf(`{"amount": %d}`, amount)); !ok || code != 200 {
		return ""
	}
	if amount%100 == 52 { // stays processing: the host gives up
		if _, ok := a.waitState(payment.Paying, payment.Checking); !ok {
			return ""
		}
		a.do("POST", "/v1/sale/cancel", "")
		a.waitState(payment.Cancelled, payment.Idle)
		return ""
	}
	st, ok := a.waitState(payment.Paid)
	if !ok {
		return ""
	}
	// A host calls this after the goods are out: from here they are given.
	h.handedOver[st.PurchaseID] = true
	code, _, ok := a.do("POST", "/v1/sale/handover", `{"ok": true}`)
	h.handAcked[st.PurchaseID] = ok && code == 200
	if _, ok := a.waitState(payment.Completed, payment.Idle); !ok {
		return ""
	}
	if code, _, ok := a.do("POST", "/v1/sale/fiscal", `{"kkt_reg_number": "0000000012345678", "fiscal_sign": "77"}`); ok && code == 200 {
		h.fiscalAcked[st.PurchaseID] = true
	}
	if fiscal {
		// Delivered and journaled as such, so the kill that follows cannot
		// fall in between.
		waitFor(t, a, "fiscal delivery", func() bool {
			st, err := a.state()
			return err == nil && st.FiscalPending == 0 && fiscalDelivered(srv.State(), h)
		})
	}
	return st.PurchaseID
}

func waitFor(t *testing.T, a *agent, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; agent output:\n%s", what, a.output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// settled: every purchase and refund is at an end the kassa has told the
// service about.
func settled(st sim.State, h *host) bool {
	if len(st.Unsettled()) > 0 {
		return false
	}
	for _, r := range st.Refunds {
		if r.Status == sp.RefundPending || (r.Status == sp.RefundSuccess && !r.Confirmed) {
			return false
		}
	}
	return len(st.Refunds) >= h.refunds
}

func fiscalDelivered(st sim.State, h *host) bool {
	for pid, acked := range h.fiscalAcked {
		if !acked {
			continue
		}
		n := 0
		for _, f := range st.Fiscal {
			if f.PurchaseID == pid {
				n++
			}
		}
		if n == 0 {
			return false
		}
	}
	return true
}

func check(t *testing.T, sc scenario, st sim.State, h *host, out string) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
	}
	seen := map[string]bool{}
	for _, p := range st.Purchases {
		if seen[p.KassaPurchaseID] {
			fail("double commit of kassa_purchase_id %s", p.KassaPurchaseID)
		}
		seen[p.KassaPurchaseID] = true
		if p.Status == sp.Success && !p.Confirmed {
			fail("purchase %s paid but neither confirmed nor cancelled", p.ID)
		}
		if p.Confirmed && !h.handedOver[p.ID] {
			fail("purchase %s: money kept although the host never handed the goods over", p.ID)
		}
		if h.handAcked[p.ID] && !p.Confirmed {
			fail("purchase %s: goods handed over but the payment was not confirmed (%s)", p.ID, p.Status)
		}
		nf := 0
		for _, f := range st.Fiscal {
			if f.PurchaseID == p.ID {
				nf++
			}
		}
		want := 0
		if h.fiscalAcked[p.ID] {
			want = 1
		}
		// The fiscal methods carry no idempotency key: a crash after the
		// service stored the record and before the journal noted it sends
		// it again. That is the only case allowed a second delivery.
		if nf != want && !(sc.kill.Method == sim.MethodFiscalV1 && sc.kill.After && nf == 2) {
			fail("purchase %s: %d fiscal deliveries, want %d", p.ID, nf, want)
		}
	}
	// Killed before the commit reached the service, the agent may not yet
	// have the sale's record (it is written beside the commit): then
	// nothing was committed and nothing is to recover.
	lostBeforeCommit := sc.kill.Method == sim.MethodCommit && !sc.kill.After && len(st.Purchases) == 0
	if len(st.Purchases) != 1 && !lostBeforeCommit {
		fail("%d purchases, want 1", len(st.Purchases))
	}
	if sc.refund {
		if len(st.Refunds) != h.refunds {
			fail("%d refunds at the service, want %d (one per request)", len(st.Refunds), h.refunds)
		}
		for _, r := range st.Refunds {
			if r.Status != sp.RefundSuccess || !r.Confirmed {
				fail("refund %s ended %s confirmed=%v", r.ID, r.Status, r.Confirmed)
			}
		}
	}
	if t.Failed() {
		b, _ := json.MarshalIndent(st, "", "  ")
		t.Logf("simulator state:\n%s\nagent output:\n%s", b, out)
	}
}
