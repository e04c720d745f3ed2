package atol_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
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
	cfg := atol.Config{URL: srv.URL, Wait: 5 * time.Second, PollFirst: 5 * time.Millisecond, PollMax: 50 * time.Millisecond,
		Login: "kiosk", Password: "pa55word"}
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
	return fiscal.Receipt{
		ID:       fiscal.NewID(),
		Taxation: fiscal.TaxUSNIncome,
		Items: []fiscal.Item{
			{Name: "Капучино 0,3", Price: 14950, Quantity: fiscal.One, Amount: 14950, VAT: fiscal.VATNone},
			{Name: "Сахар", Price: 333, Quantity: 1500, Amount: 500, VAT: fiscal.VAT20, Object: fiscal.ObjectCommodity},
		},
		Total:           15450,
		MachineNumber:   "VM-0042",
		PaymentsPlace:   "Вендинговый автомат, холл 1 этажа",
		PaymentsAddress: "г. Москва, ул. Примерная, д. 1",
		Electronic:      true,
		CustomerContact: "buyer@example.com",
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// checkAgainstSim verifies that res is the simulator's document for id and
// returns that document.
func checkAgainstSim(t *testing.T, e *env, res fiscal.Result, id string) fiscalsim.Receipt {
	t.Helper()
	st := e.sim.Sim.State()
	rc, ok := st.Receipt(id)
	if !ok {
		t.Fatalf("the simulator has no receipt %s: %+v", id, st.Receipts)
	}
	f := rc.Fiscal
	if res.ID != id || res.RegistrationNumber != f.RegistrationNumber || res.FNNumber != f.FNNumber ||
		res.FDNumber != f.FDNumber || res.FiscalSign != f.FiscalSign || !res.DateTime.Equal(f.DateTime) ||
		res.ShiftNumber != f.ShiftNumber || res.ReceiptNumber != f.ReceiptNumber || res.Total != rc.Total {
		t.Fatalf("result %+v is not the simulator's document %+v", res, rc)
	}
	if f.FiscalSign != fiscalsim.Sign(rc) {
		t.Fatalf("the simulator's sign %s is not derived from the receipt", f.FiscalSign)
	}
	return rc
}

func TestSellOnceAndRetry(t *testing.T) {
	e := newEnv(t, nil)
	r := newReceipt()
	res, err := e.client.Sell(ctx(t), r)
	if err != nil {
		t.Fatal(err)
	}
	rc := checkAgainstSim(t, e, res, r.ID)
	if rc.Type != "sell" || !rc.Electronic || rc.MachineNumber != r.MachineNumber || rc.PaymentsPlace != r.PaymentsPlace ||
		rc.PaymentsAddress != r.PaymentsAddress || rc.Taxation != "usnIncome" || len(rc.Items) != 2 ||
		rc.Items[1] != (fiscalsim.Item{Name: "Сахар", Price: 333, Quantity: "1.5", Amount: 500, VAT: "vat20", PaymentObject: "commodity"}) {
		t.Fatalf("the ККТ registered %+v", rc)
	}
	f := rc.Fiscal
	want := "t=" + f.DateTime.Format("20060102T1504") + "&s=154.50&fn=" + f.FNNumber + "&i=" +
		strconv.FormatInt(f.FDNumber, 10) + "&fp=" + f.FiscalSign + "&n=1"
	if res.QR() != want {
		t.Fatalf("QR %q, want %q", res.QR(), want)
	}

	again, err := e.client.Sell(ctx(t), r)
	if err != nil || again != res {
		t.Fatalf("retry: %+v %v, want %+v", again, err, res)
	}
	st := e.sim.Sim.State()
	task, _ := st.Task(r.ID)
	if len(st.Receipts) != 1 || task.Posts != 2 {
		t.Fatalf("after a retry: %d receipts, %d posts of the id", len(st.Receipts), task.Posts)
	}
	for _, entry := range e.logs.All() {
		for _, secret := range []string{"buyer@example.com", "pa55word"} {
			if strings.Contains(entry.Message, secret) || strings.Contains(fmt.Sprint(entry.ContextMap()), secret) {
				t.Fatalf("a log line holds %q: %v", secret, entry)
			}
		}
	}
}

func TestLostAnswerToPost(t *testing.T) {
	e := newEnv(t, nil)
	r := newReceipt()
	if err := e.sim.Sim.InjectFault(fiscalsim.Fault{Method: fiscalsim.AtolPost, Kind: fiscalsim.FaultLoseAnswer}); err != nil {
		t.Fatal(err)
	}
	_, err := e.client.Sell(ctx(t), r)
	if !errors.Is(err, fiscal.ErrUnreachable) {
		t.Fatalf("lost answer: %v", err)
	}
	if st := e.sim.Sim.State(); len(st.Receipts) != 1 {
		t.Fatalf("the task ran before its answer was lost: %d receipts", len(st.Receipts))
	}
	res, err := e.client.Sell(ctx(t), r)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstSim(t, e, res, r.ID)
	st := e.sim.Sim.State()
	task, _ := st.Task(r.ID)
	if len(st.Receipts) != 1 || task.Posts != 2 {
		t.Fatalf("after the retry: %d receipts, %d posts", len(st.Receipts), task.Posts)
	}
}

func TestLostAnswerWhilePolling(t *testing.T) {
	e := newEnv(t, nil)
	r := newReceipt()
	for _, k := range []fiscalsim.FaultKind{fiscalsim.FaultLoseAnswer, fiscalsim.FaultDrop, fiscalsim.FaultStatus} {
		if err := e.sim.Sim.InjectFault(fiscalsim.Fault{Method: fiscalsim.AtolGet, Kind: k}); err != nil {
			t.Fatal(err)
		}
	}
	// Three bad polls in a row are ridden out within the wait.
	res, err := e.client.Sell(ctx(t), r)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstSim(t, e, res, r.ID)
	if st := e.sim.Sim.State(); st.Requests[fiscalsim.AtolGet] != 4 || len(st.Receipts) != 1 {
		t.Fatalf("requests %v, %d receipts", st.Requests, len(st.Receipts))
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
		if _, err := e.client.Sell(ctx(t), r); fiscal.KindOf(err) != fiscal.Unreachable {
			t.Fatalf("%s: %v", f.Kind, err)
		}
	}
	if st := e.sim.Sim.State(); len(st.Receipts) != 0 || len(st.Tasks) != 0 {
		t.Fatalf("a refused post made %+v", st)
	}
	res, err := e.client.Sell(ctx(t), r)
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
	c, err := atol.New(atol.Config{URL: "http://" + addr + "/api/v2", CallTimeout: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := c.Sell(ctx(t), newReceipt()); !errors.Is(err, fiscal.ErrUnreachable) || !strings.HasPrefix(err.Error(), "atol: sell ") {
		t.Fatalf("closed port: %v", err)
	}
	if _, err := c.Check(ctx(t)); !errors.Is(err, fiscal.ErrUnreachable) {
		t.Fatalf("check: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a refused connection took %v", d)
	}
}

func TestSellReturn(t *testing.T) {
	e := newEnv(t, nil)
	sale := newReceipt()
	if _, err := e.client.Sell(ctx(t), sale); err != nil {
		t.Fatal(err)
	}
	ret := sale
	ret.ID = fiscal.NewID()
	res, err := e.client.SellReturn(ctx(t), ret)
	if err != nil {
		t.Fatal(err)
	}
	rc := checkAgainstSim(t, e, res, ret.ID)
	if rc.Type != "sellReturn" || res.Operation != fiscal.SellReturn || !strings.HasSuffix(res.QR(), "&n=2") {
		t.Fatalf("return: %+v %s", rc, res.QR())
	}
	if res.FDNumber <= 2 || res.ReceiptNumber != 2 {
		t.Fatalf("FD %d, receipt %d: numbers do not grow", res.FDNumber, res.ReceiptNumber)
	}
}

func TestPollsUntilReady(t *testing.T) {
	e := newEnv(t, nil)
	r := newReceipt()
	if err := e.sim.Sim.InjectFault(fiscalsim.Fault{Method: fiscalsim.AtolPost, Kind: fiscalsim.FaultPending, Polls: 4}); err != nil {
		t.Fatal(err)
	}
	res, err := e.client.Sell(ctx(t), r)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstSim(t, e, res, r.ID)
	if task, _ := e.sim.Sim.State().Task(r.ID); task.Polls != 4 {
		t.Fatalf("polls %d, want 4", task.Polls)
	}
}

func TestNeverCompletes(t *testing.T) {
	e := newEnv(t, func(c *atol.Config) { c.Wait = 300 * time.Millisecond })
	r := newReceipt()
	if err := e.sim.Sim.InjectFault(fiscalsim.Fault{Method: fiscalsim.AtolPost, Kind: fiscalsim.FaultPending, Polls: -1}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		res, err := e.client.Sell(ctx(t), r)
		var fe *fiscal.Error
		if !errors.As(err, &fe) || fe.Kind != fiscal.Pending || res != (fiscal.Result{}) || !strings.Contains(fe.Text, "same receipt id") {
			t.Fatalf("call %d: %+v %v", i, res, err)
		}
	}
	st := e.sim.Sim.State()
	task, _ := st.Task(r.ID)
	if len(st.Receipts) != 0 || len(st.Tasks) != 1 || task.Posts != 2 || task.Status != "inProgress" {
		t.Fatalf("state %+v", st)
	}
}

func TestMalformedAnswer(t *testing.T) {
	e := newEnv(t, nil)
	r := newReceipt()
	if err := e.sim.Sim.InjectFault(fiscalsim.Fault{Method: fiscalsim.AtolGet, Kind: fiscalsim.FaultMalformed}); err != nil {
		t.Fatal(err)
	}
	_, err := e.client.Sell(ctx(t), r)
	if !errors.Is(err, fiscal.ErrMalformed) || !strings.Contains(err.Error(), "not JSON") {
		t.Fatalf("malformed: %v", err)
	}
	res, err := e.client.Sell(ctx(t), r)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstSim(t, e, res, r.ID)
	if n := len(e.sim.Sim.State().Receipts); n != 1 {
		t.Fatalf("%d receipts", n)
	}
}

func TestKKTErrorThenRetry(t *testing.T) {
	e := newEnv(t, nil)
	r := newReceipt()
	if err := e.sim.Sim.InjectFault(fiscalsim.Fault{Method: fiscalsim.AtolPost, Kind: fiscalsim.FaultKKTError,
		Code: atol.CodeFNFault, Text: "Неисправимая ошибка ФН"}); err != nil {
		t.Fatal(err)
	}
	_, err := e.client.Sell(ctx(t), r)
	var fe *fiscal.Error
	if !errors.As(err, &fe) || fe.Kind != fiscal.Refused || fe.Code != atol.CodeFNFault || !fe.FN || fe.Text != "Неисправимая ошибка ФН" {
		t.Fatalf("FN fault: %#v", err)
	}
	if n := len(e.sim.Sim.State().Receipts); n != 0 {
		t.Fatalf("a refused receipt was registered: %d", n)
	}
	// The cause is gone: the same receipt id tries anew under attempt 1.
	res, err := e.client.Sell(ctx(t), r)
	if err != nil {
		t.Fatal(err)
	}
	next := fiscal.AttemptID(r.ID, 1)
	checkAgainstSim(t, e, res, next)
	// A restarted client walks the chain again and finds the same document.
	fresh, err := atol.New(atol.Config{URL: e.sim.URL, PollFirst: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	again, err := fresh.Sell(ctx(t), r)
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

func TestMissingFiscalSign(t *testing.T) {
	e := newEnv(t, nil)
	r := newReceipt()
	if err := e.sim.Sim.InjectFault(fiscalsim.Fault{Method: fiscalsim.AtolGet, Kind: fiscalsim.FaultNoSign}); err != nil {
		t.Fatal(err)
	}
	res, err := e.client.Sell(ctx(t), r)
	if !errors.Is(err, fiscal.ErrMalformed) || !strings.Contains(err.Error(), "fiscal sign missing") || res != (fiscal.Result{}) {
		t.Fatalf("no sign: %+v %v", res, err)
	}
	// The ККТ made the document; asking again gets its complete data.
	res, err = e.client.Sell(ctx(t), r)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstSim(t, e, res, r.ID)
	if n := len(e.sim.Sim.State().Receipts); n != 1 {
		t.Fatalf("%d receipts", n)
	}
}

func TestExpiredShift(t *testing.T) {
	e := newEnv(t, nil)
	first, err := e.client.Sell(ctx(t), newReceipt())
	if err != nil {
		t.Fatal(err)
	}
	e.sim.Sim.AdvanceClock(24*time.Hour + time.Minute)

	r := newReceipt()
	_, err = e.client.Sell(ctx(t), r)
	var fe *fiscal.Error
	if !errors.As(err, &fe) || fe.Kind != fiscal.ShiftExpired || fe.Code != atol.CodeShiftExpired {
		t.Fatalf("expired shift: %v", err)
	}
	if sh, err := e.client.Shift(ctx(t)); err != nil || sh.State != fiscal.ShiftIsExpired {
		t.Fatalf("shift %+v %v", sh, err)
	}
	// Issue closes and opens the shift and makes the same receipt. Attempts
	// 0 and 1 (Issue's first try) met the expired shift; 2 is made.
	res, err := fiscal.Issue(ctx(t), e.client, fiscal.Sell, r)
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
	res3, err := fiscal.Issue(ctx(t), e.client, fiscal.Sell, r3)
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
	sh, err := e.client.Shift(ctx(t))
	if err != nil || sh.State != fiscal.ShiftIsClosed {
		t.Fatalf("fresh ККТ: %+v %v", sh, err)
	}
	opened, err := e.client.OpenShift(ctx(t))
	if err != nil || opened.State != fiscal.ShiftIsOpen || opened.Number != 1 {
		t.Fatalf("open: %+v %v", opened, err)
	}
	simNow := e.sim.Sim.State().Now
	if d := opened.Expires.Sub(simNow); d < 23*time.Hour || d > 24*time.Hour {
		t.Fatalf("expires %v, now %v", opened.Expires, simNow)
	}
	if again, err := e.client.OpenShift(ctx(t)); err != nil || again.Number != 1 {
		t.Fatalf("open twice: %+v %v", again, err)
	}
	// An hour before the end KeepShift renews the shift.
	e.sim.Sim.AdvanceClock(23*time.Hour + 30*time.Minute)
	sh, act, err := fiscal.KeepShift(ctx(t), e.client, e.sim.Sim.State().Now, time.Hour)
	if err != nil || act != fiscal.ShiftRenew || sh.Number != 2 || sh.State != fiscal.ShiftIsOpen {
		t.Fatalf("keep: %+v %v %v", sh, act, err)
	}
	if _, act, err := fiscal.KeepShift(ctx(t), e.client, e.sim.Sim.State().Now, time.Hour); err != nil || act != fiscal.ShiftKeep {
		t.Fatalf("keep a fresh shift: %v %v", act, err)
	}
	closed, err := e.client.CloseShift(ctx(t))
	if err != nil || closed.State != fiscal.ShiftIsClosed || closed.Number != 2 {
		t.Fatalf("close: %+v %v", closed, err)
	}
	if again, err := e.client.CloseShift(ctx(t)); err != nil || again.State != fiscal.ShiftIsClosed {
		t.Fatalf("close twice: %+v %v", again, err)
	}
	st, err := e.client.Check(ctx(t))
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
	if _, err := e.client.Sell(ctx(t), r); fiscal.KindOf(err) != fiscal.Refused || !strings.Contains(err.Error(), "total") {
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
