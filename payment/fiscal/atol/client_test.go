package atol_test

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kioskd/kioskd/payment/fiscal"
	"github.com/kioskd/kioskd/payment/fiscal/atol"
	"github.com/kioskd/kioskd/payment/fiscal/fiscalsim"
	"github.com/kioskd/kioskd/payment/fiscal/fiscalsim/simtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type env struct {
	sim    *simtest.AtolServer
	client *atol.Client
	logs   *observer.ObservedLogs
}

// newEnv starts a web server simulator and a client for it. tweak edits the
// client's configuration.
func newEnv(t *testing.T, tweak func(*atol.Config)) *env {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	log := zap.New(core)
	srv := simtest.NewAtol(t, fiscalsim.Config{}, log)
	cfg := atol.Config{URL: srv.URL, Timing: simtest.Timing, Login: "kiosk", Password: "pa55word"}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := atol.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &env{sim: srv, client: c, logs: logs}
}

func newReceipt() fiscal.Receipt {
	r := simtest.NewReceipt()
	r.CustomerContact = "buyer@example.com"
	return r
}

func checkAgainstSim(t *testing.T, e *env, res fiscal.Result, id string) fiscalsim.Receipt {
	t.Helper()
	return simtest.Confirmed(t, e.sim.Sim.State(), res, id)
}

func TestConformance(t *testing.T) {
	simtest.Conformance(t, func(t *testing.T, wait time.Duration) simtest.Backend {
		e := newEnv(t, func(c *atol.Config) { c.Wait = wait })
		return simtest.Backend{Provider: e.client, Sim: e.sim.Sim, Submit: fiscalsim.AtolPost, Query: fiscalsim.AtolGet}
	})
}

// TestSellTask checks what the ККТ registers from a receipt, and that
// neither the buyer's contact nor the web server's password is logged.
func TestSellTask(t *testing.T) {
	e := newEnv(t, nil)
	r := newReceipt()
	res, err := e.client.Sell(simtest.Context(t), r)
	if err != nil {
		t.Fatal(err)
	}
	rc := checkAgainstSim(t, e, res, r.ID)
	if rc.Type != "sell" || !rc.Electronic || rc.MachineNumber != r.MachineNumber || rc.PaymentsPlace != r.PaymentsPlace ||
		rc.PaymentsAddress != r.PaymentsAddress || rc.Taxation != "usnIncome" || len(rc.Items) != 2 ||
		rc.Items[1] != (fiscalsim.Item{Name: "Сахар", Price: 333, Quantity: "1.5", Amount: 500, VAT: "vat20", PaymentObject: "commodity"}) {
		t.Fatalf("the ККТ registered %+v", rc)
	}
	if !strings.HasPrefix(res.QR(), "t="+rc.Fiscal.DateTime.Format("20060102T1504")+"&s=154.50&fn=") {
		t.Fatalf("QR %q", res.QR())
	}
	for _, entry := range e.logs.All() {
		for _, secret := range []string{"buyer@example.com", "pa55word"} {
			if strings.Contains(entry.Message, secret) || strings.Contains(fmt.Sprint(entry.ContextMap()), secret) {
				t.Fatalf("a log line holds %q: %v", secret, entry)
			}
		}
	}
}

func TestPostFailuresAreUnreachable(t *testing.T) {
	e := newEnv(t, nil)
	r := newReceipt()
	for _, f := range []fiscalsim.Fault{
		{Method: fiscalsim.AtolPost, Kind: fiscalsim.FaultDrop},
		{Method: fiscalsim.AtolPost, Kind: fiscalsim.FaultStatus, Status: 503},
	} {
		if err := e.sim.Sim.InjectFault(f); err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.Sell(simtest.Context(t), r); fiscal.KindOf(err) != fiscal.Unreachable {
			t.Fatalf("%s: %v", f.Kind, err)
		}
	}
	if st := e.sim.Sim.State(); len(st.Receipts) != 0 || len(st.Tasks) != 0 {
		t.Fatalf("a refused post made %+v", st)
	}
	res, err := e.client.Sell(simtest.Context(t), r)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstSim(t, e, res, r.ID)
}

func TestUnreachableServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := atol.New(atol.Config{URL: "http://" + addr + "/api/v2", Timing: fiscal.Timing{CallTimeout: time.Second}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := c.Sell(simtest.Context(t), newReceipt()); !errors.Is(err, fiscal.ErrUnreachable) || !strings.HasPrefix(err.Error(), "atol: sell ") {
		t.Fatalf("closed port: %v", err)
	}
	if _, err := c.Check(simtest.Context(t)); !errors.Is(err, fiscal.ErrUnreachable) {
		t.Fatalf("check: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a refused connection took %v", d)
	}
}

// TestRefusalsAcrossRestart: an FN fault is marked as such, and a client
// started afresh walks the refused attempt again to the one document.
func TestRefusalsAcrossRestart(t *testing.T) {
	e := newEnv(t, nil)
	r := newReceipt()
	if err := e.sim.Sim.InjectFault(fiscalsim.Fault{Method: fiscalsim.AtolPost, Kind: fiscalsim.FaultKKTError,
		Code: atol.CodeFNFault, Text: "Неисправимая ошибка ФН"}); err != nil {
		t.Fatal(err)
	}
	_, err := e.client.Sell(simtest.Context(t), r)
	var fe *fiscal.Error
	if !errors.As(err, &fe) || fe.Kind != fiscal.Refused || fe.Code != atol.CodeFNFault || !fe.FN || fe.Text != "Неисправимая ошибка ФН" {
		t.Fatalf("FN fault: %#v", err)
	}
	if n := len(e.sim.Sim.State().Receipts); n != 0 {
		t.Fatalf("a refused receipt was registered: %d", n)
	}
	// The cause is gone: the same receipt id tries anew under attempt 1.
	res, err := e.client.Sell(simtest.Context(t), r)
	if err != nil {
		t.Fatal(err)
	}
	next := fiscal.AttemptID(r.ID, 1)
	checkAgainstSim(t, e, res, next)
	// A restarted client walks the chain again and finds the same document.
	fresh, err := atol.New(atol.Config{URL: e.sim.URL, Timing: fiscal.Timing{PollFirst: time.Millisecond}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	again, err := fresh.Sell(simtest.Context(t), r)
	if err != nil || again != res {
		t.Fatalf("after a restart: %+v %v", again, err)
	}
	st := e.sim.Sim.State()
	first, _ := st.Task(r.ID)
	second, _ := st.Task(next)
	if len(st.Receipts) != 1 || first.Posts != 2 || second.Posts != 2 || first.Code != atol.CodeFNFault {
		t.Fatalf("state: %d receipts, tasks %+v %+v", len(st.Receipts), first, second)
	}
}

func TestExpiredShift(t *testing.T) {
	e := newEnv(t, nil)
	first, err := e.client.Sell(simtest.Context(t), newReceipt())
	if err != nil {
		t.Fatal(err)
	}
	e.sim.Sim.AdvanceClock(24*time.Hour + time.Minute)

	r := newReceipt()
	_, err = e.client.Sell(simtest.Context(t), r)
	var fe *fiscal.Error
	if !errors.As(err, &fe) || fe.Kind != fiscal.ShiftExpired || fe.Code != atol.CodeShiftExpired {
		t.Fatalf("expired shift: %v", err)
	}
	if sh, err := e.client.Shift(simtest.Context(t)); err != nil || sh.State != fiscal.ShiftIsExpired {
		t.Fatalf("shift %+v %v", sh, err)
	}
	// Issue closes and opens the shift and makes the same receipt. Attempts
	// 0 and 1 (Issue's first try) met the expired shift; 2 is made.
	res, err := fiscal.Issue(simtest.Context(t), e.client, fiscal.Sell, r)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstSim(t, e, res, fiscal.AttemptID(r.ID, 2))
	if res.ShiftNumber != first.ShiftNumber+1 || res.ReceiptNumber != 1 {
		t.Fatalf("shift %d receipt %d after renewal (first shift %d)", res.ShiftNumber, res.ReceiptNumber, first.ShiftNumber)
	}
	// Issue on a receipt that meets the expired shift in the same call.
	e.sim.Sim.AdvanceClock(25 * time.Hour)
	r3 := newReceipt()
	res3, err := fiscal.Issue(simtest.Context(t), e.client, fiscal.Sell, r3)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstSim(t, e, res3, fiscal.AttemptID(r3.ID, 1))
	st := e.sim.Sim.State()
	if len(st.Receipts) != 3 || st.Shift.Number != 3 || !st.Shift.Open {
		t.Fatalf("state: %d receipts, shift %+v", len(st.Receipts), st.Shift)
	}
}

func TestShiftOperations(t *testing.T) {
	e := newEnv(t, nil)
	sh, err := e.client.Shift(simtest.Context(t))
	if err != nil || sh.State != fiscal.ShiftIsClosed {
		t.Fatalf("fresh ККТ: %+v %v", sh, err)
	}
	opened, err := e.client.OpenShift(simtest.Context(t))
	if err != nil || opened.State != fiscal.ShiftIsOpen || opened.Number != 1 {
		t.Fatalf("open: %+v %v", opened, err)
	}
	simNow := e.sim.Sim.State().Now
	if d := opened.Expires.Sub(simNow); d < 23*time.Hour || d > 24*time.Hour {
		t.Fatalf("expires %v, now %v", opened.Expires, simNow)
	}
	if again, err := e.client.OpenShift(simtest.Context(t)); err != nil || again.Number != 1 {
		t.Fatalf("open twice: %+v %v", again, err)
	}
	// An hour before the end KeepShift renews the shift.
	e.sim.Sim.AdvanceClock(23*time.Hour + 30*time.Minute)
	sh, act, err := fiscal.KeepShift(simtest.Context(t), e.client, e.sim.Sim.State().Now, time.Hour)
	if err != nil || act != fiscal.ShiftRenew || sh.Number != 2 || sh.State != fiscal.ShiftIsOpen {
		t.Fatalf("keep: %+v %v %v", sh, act, err)
	}
	if _, act, err := fiscal.KeepShift(simtest.Context(t), e.client, e.sim.Sim.State().Now, time.Hour); err != nil || act != fiscal.ShiftKeep {
		t.Fatalf("keep a fresh shift: %v %v", act, err)
	}
	closed, err := e.client.CloseShift(simtest.Context(t))
	if err != nil || closed.State != fiscal.ShiftIsClosed || closed.Number != 2 {
		t.Fatalf("close: %+v %v", closed, err)
	}
	if again, err := e.client.CloseShift(simtest.Context(t)); err != nil || again.State != fiscal.ShiftIsClosed {
		t.Fatalf("close twice: %+v %v", again, err)
	}
	st, err := e.client.Check(simtest.Context(t))
	if err != nil || st.Provider != "atol" || st.Shift == nil || st.Shift.State != fiscal.ShiftIsClosed {
		t.Fatalf("check: %+v %v", st, err)
	}
	if fd := e.sim.Sim.State().FDNumber; fd != 4 {
		t.Fatalf("FD %d after open, close, open, close", fd)
	}
}

func TestInvalidReceiptMakesNoCall(t *testing.T) {
	e := newEnv(t, nil)
	r := newReceipt()
	r.Total++
	if _, err := e.client.Sell(simtest.Context(t), r); fiscal.KindOf(err) != fiscal.Refused || !strings.Contains(err.Error(), "total") {
		t.Fatalf("invalid receipt: %v", err)
	}
	if st := e.sim.Sim.State(); len(st.Requests) != 0 {
		t.Fatalf("calls made: %v", st.Requests)
	}
}

func TestConfig(t *testing.T) {
	for _, cfg := range []atol.Config{
		{URL: "http://192.0.2.1:16732/api/v2"}, // plain http off the machine
		{URL: "ftp://127.0.0.1/"},
		{URL: "http://127.0.0.1:16732/api/v2", Password: "x"},
	} {
		if _, err := atol.New(cfg, nil); err == nil || !strings.HasPrefix(err.Error(), "atol: ") {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
	c, err := atol.New(atol.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}
