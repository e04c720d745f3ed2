package atolonline_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kioskd/kioskd/payment/fiscal"
	"github.com/kioskd/kioskd/payment/fiscal/atolonline"
	"github.com/kioskd/kioskd/payment/fiscal/fiscalsim"
	"github.com/kioskd/kioskd/payment/fiscal/fiscalsim/simtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const password = "cl0ud-pa55"

type env struct {
	sim    *simtest.OnlineServer
	cfg    atolonline.Config
	client *atolonline.Client
	logs   *observer.ObservedLogs
}

func newEnv(t *testing.T, tweak func(*atolonline.Config)) *env {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	log := zap.New(core)
	srv := simtest.NewOnline(t, fiscalsim.OnlineConfig{Login: "kiosk", Password: password, Group: "vending-1"}, log)
	cfg := atolonline.Config{URL: srv.URL, Group: "vending-1", Login: "kiosk", Password: password, INN: "7700000000",
		CompanyEmail: "shop@example.com", ClientEmail: "receipts@example.com", Timing: simtest.Timing}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := atolonline.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &env{sim: srv, cfg: cfg, client: c, logs: logs}
}

func newReceipt() fiscal.Receipt {
	r := simtest.NewReceipt()
	r.Taxation = fiscal.TaxOSN
	return r
}

func checkAgainstSim(t *testing.T, e *env, res fiscal.Result, id string) fiscalsim.Receipt {
	t.Helper()
	rc := simtest.Confirmed(t, e.sim.Sim.State(), res, id)
	checkOFDURL(t, res, rc)
	return rc
}

// checkOFDURL: the cloud's result links the receipt at the OFD.
func checkOFDURL(t *testing.T, res fiscal.Result, rc fiscalsim.Receipt) {
	t.Helper()
	if !strings.HasSuffix(res.OFDReceiptURL, "/"+rc.DocUUID) {
		t.Fatalf("OFD URL %q, document %s", res.OFDReceiptURL, rc.DocUUID)
	}
}

func inject(t *testing.T, e *env, f fiscalsim.Fault) {
	t.Helper()
	if err := e.sim.Sim.InjectFault(f); err != nil {
		t.Fatal(err)
	}
}

func TestConformance(t *testing.T) {
	simtest.Conformance(t, func(t *testing.T, wait time.Duration) simtest.Backend {
		e := newEnv(t, func(c *atolonline.Config) { c.Wait = wait })
		return simtest.Backend{Provider: e.client, Sim: e.sim.Sim, Submit: fiscalsim.OnlineOperation, Query: fiscalsim.OnlineReport,
			Extra: checkOFDURL}
	})
}

// TestSellRequest checks what the cloud registers from a receipt, that the
// token is cached, and that the password is not logged.
func TestSellRequest(t *testing.T) {
	e := newEnv(t, nil)
	r := newReceipt()
	res, err := e.client.Sell(simtest.Context(t), r)
	if err != nil {
		t.Fatal(err)
	}
	rc := checkAgainstSim(t, e, res, r.ID)
	if rc.Type != "sell" || rc.Taxation != "osn" || rc.PaymentsPlace != r.PaymentsPlace || len(rc.Items) != 2 ||
		rc.Items[1] != (fiscalsim.Item{Name: "Сахар", Price: 333, Quantity: "1.5", Amount: 500, VAT: "vat20", PaymentObject: "commodity"}) {
		t.Fatalf("the cloud registered %+v", rc)
	}
	if !strings.HasPrefix(res.QR(), "t="+rc.Fiscal.DateTime.Format("20060102T1504")+"&s=154.50&fn=") {
		t.Fatalf("QR %q", res.QR())
	}
	again, err := e.client.Sell(simtest.Context(t), r)
	if err != nil || again != res {
		t.Fatalf("retry: %+v %v", again, err)
	}
	st := e.sim.Sim.State()
	task, _ := st.Task(r.ID)
	if len(st.Receipts) != 1 || task.Posts != 2 || st.Tokens != 1 {
		t.Fatalf("%d receipts, %d posts, %d tokens", len(st.Receipts), task.Posts, st.Tokens)
	}
	for _, entry := range e.logs.All() {
		if strings.Contains(entry.Message+fmt.Sprint(entry.ContextMap()), password) {
			t.Fatalf("a log line holds the password: %v", entry)
		}
	}
}

func TestTokenRenewal(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := newEnv(t, func(c *atolonline.Config) { c.Now = clock })
	if _, err := e.client.Sell(simtest.Context(t), newReceipt()); err != nil {
		t.Fatal(err)
	}
	// The cloud forgets the token: the next call gets 401, logs in again
	// and is repeated once.
	e.sim.Sim.ExpireTokens()
	r := newReceipt()
	res, err := e.client.Sell(simtest.Context(t), r)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstSim(t, e, res, r.ID)
	if st := e.sim.Sim.State(); st.Tokens != 2 {
		t.Fatalf("%d tokens after expiry, want 2", st.Tokens)
	}
	// An old token is renewed before use, without a 401.
	mu.Lock()
	now = now.Add(23*time.Hour + time.Minute)
	mu.Unlock()
	if _, err := e.client.Sell(simtest.Context(t), newReceipt()); err != nil {
		t.Fatal(err)
	}
	if st := e.sim.Sim.State(); st.Tokens != 3 || len(st.Receipts) != 3 {
		t.Fatalf("%d tokens, %d receipts", st.Tokens, len(st.Receipts))
	}
	// Concurrent calls that meet an expired token log in once.
	e.sim.Sim.ExpireTokens()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.client.Sell(simtest.Context(t), newReceipt())
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if st := e.sim.Sim.State(); st.Tokens != 4 {
		t.Fatalf("%d tokens after concurrent 401s, want 4", st.Tokens)
	}
}

func TestWrongPassword(t *testing.T) {
	e := newEnv(t, func(c *atolonline.Config) { c.Password = "wrong" })
	var fe *fiscal.Error
	if _, err := e.client.Sell(simtest.Context(t), newReceipt()); !errors.As(err, &fe) || fe.Kind != fiscal.Refused ||
		fe.Code != atolonline.CodeWrongLogin || !strings.Contains(fe.Text, "check the cloud kassa's login and password") {
		t.Fatalf("sell: %v", err)
	}
	if _, err := e.client.Check(simtest.Context(t)); fiscal.KindOf(err) != fiscal.Refused {
		t.Fatalf("check: %v", err)
	}
	if n := len(e.sim.Sim.State().Tasks); n != 0 {
		t.Fatalf("%d documents without a token", n)
	}
}

func TestCheck(t *testing.T) {
	e := newEnv(t, nil)
	st, err := e.client.Check(simtest.Context(t))
	if err != nil || st.Provider != "atolonline" || st.Shift != nil || !strings.Contains(st.Detail, "vending-1") {
		t.Fatalf("check: %+v %v", st, err)
	}
}

func TestBuyerContact(t *testing.T) {
	// Without the operator's mailbox and without the buyer's contact the
	// cloud refuses the receipt (validation, code 32).
	e := newEnv(t, func(c *atolonline.Config) { c.ClientEmail = "" })
	var fe *fiscal.Error
	if _, err := e.client.Sell(simtest.Context(t), newReceipt()); !errors.As(err, &fe) || fe.Code != atolonline.CodeIncomingValidation {
		t.Fatalf("no contact: %v", err)
	}
	r := newReceipt()
	r.CustomerContact = "+79990000000"
	if _, err := e.client.Sell(simtest.Context(t), r); err != nil {
		t.Fatalf("a phone: %v", err)
	}
}

func TestCloudRenewsItsShift(t *testing.T) {
	e := newEnv(t, nil)
	first, err := e.client.Sell(simtest.Context(t), newReceipt())
	if err != nil {
		t.Fatal(err)
	}
	e.sim.Sim.AdvanceClock(25 * time.Hour)
	r := newReceipt()
	res, err := e.client.Sell(simtest.Context(t), r)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstSim(t, e, res, r.ID)
	if res.ShiftNumber != first.ShiftNumber+1 || res.ReceiptNumber != 1 {
		t.Fatalf("shift %d receipt %d", res.ShiftNumber, res.ReceiptNumber)
	}
}

func TestConfig(t *testing.T) {
	if _, err := atolonline.New(atolonline.Config{Login: "x"}, nil); err == nil ||
		err.Error() != "atolonline: group, password, INN, company e-mail required" {
		t.Fatalf("missing fields: %v", err)
	}
	full := atolonline.Config{Group: "g", Login: "l", Password: "p", INN: "1", CompanyEmail: "e@x"}
	full.URL = "http://online.atol.ru/possystem/v4"
	if _, err := atolonline.New(full, nil); err == nil {
		t.Fatal("plain http to the cloud accepted")
	}
	full.URL = ""
	c, err := atolonline.New(full, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}
