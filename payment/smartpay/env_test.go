package smartpay_test

import (
	"context"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a simulator serving the kassa API over real mTLS on loopback, with
// every request and answer validated against openapi.yaml.
type env struct {
	t   testing.TB
	ct  *contract
	sim *sim.Server
	url string
	dir string
}

func newEnv(t testing.TB, cfg sim.Config) *env {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.Kassas == 0 {
		cfg.Kassas = 2
	}
	if cfg.SuccessDelay == 0 {
		cfg.SuccessDelay = 50 * time.Millisecond
	}
	ct := loadContract(t)
	cfg.Middleware = ct.middleware
	s, err := sim.New(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		ct.check(t)
	})
	return &env{t: t, ct: ct, sim: s, url: "https://" + ln.Addr().String(), dir: cfg.Dir}
}

func (e *env) config(kassa int) smartpay.Config {
	ca, cert, key := sim.KassaFiles(e.dir, kassa)
	return smartpay.Config{URL: e.url, CAFile: ca, CertFile: cert, KeyFile: key,
		CallTimeout: 2 * time.Second, RetryBackoff: 10 * time.Millisecond}
}

// client returns a started client for kassa n, closed at cleanup.
func (e *env) client(n int, mod ...func(*smartpay.Config)) *smartpay.Client {
	e.t.Helper()
	cfg := e.config(n)
	for _, m := range mod {
		m(&cfg)
	}
	c, err := smartpay.NewClient(cfg, zaptest.NewLogger(e.t))
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(func() { cancel(); c.Close() })
	if err := c.Start(ctx); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// qr returns a fresh, valid QR as the scanner path would: parsed by ParseQR.
func (e *env) qr(user string) smartpay.QR {
	e.t.Helper()
	return e.qrWith(sim.QRParams{UserID: user})
}

func (e *env) qrWith(p sim.QRParams) smartpay.QR {
	e.t.Helper()
	payload, err := e.sim.AppKeys().QR(p)
	if err != nil {
		e.t.Fatal(err)
	}
	q, err := smartpay.ParseQR([]byte(payload))
	if err != nil {
		e.t.Fatal(err)
	}
	return q
}

// invalid runs f, whose requests break the contract on purpose to test the
// simulator's own checks; answers are still validated.
func (e *env) invalid(f func()) {
	e.ct.lenient.Store(true)
	defer e.ct.lenient.Store(false)
	f()
}

func (e *env) requests(method string) int { return e.sim.State().Requests[method] }

func (e *env) fault(f sim.Fault) {
	e.t.Helper()
	if err := e.sim.InjectFault(f); err != nil {
		e.t.Fatal(err)
	}
}

// commit commits a fresh QR for kassa id kid and returns the purchase id.
func commit(t testing.TB, e *env, c *smartpay.Client, kid string) string {
	t.Helper()
	r, err := c.Commit(context.Background(), smartpay.CommitRequest{KassaPurchaseID: kid, QR: e.qr("user-" + kid)})
	if err != nil {
		t.Fatalf("commit %s: %v", kid, err)
	}
	return r.PurchaseID
}

// waitStatus polls until the purchase reaches want (or fails the test).
func waitStatus(t testing.TB, c *smartpay.Client, id string, want smartpay.PurchaseStatus) smartpay.StatusResponse {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := c.Status(context.Background(), id)
		if err != nil {
			t.Fatalf("status: %v", err)
		}
		if st.Status == want {
			return st
		}
		if st.Status.Final() || time.Now().After(deadline) {
			t.Fatalf("status %s, want %s", st.Status, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// paid runs a purchase to success and returns its id.
func paid(t testing.TB, e *env, c *smartpay.Client, kid string, amount int64) string {
	t.Helper()
	id := commit(t, e, c, kid)
	if _, err := c.Release(context.Background(), id, amount); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, id, smartpay.Success)
	return id
}

func wantCode(t testing.TB, err error, code int) {
	t.Helper()
	if got := smartpay.CodeOf(err); got != code {
		t.Fatalf("error %v: code %d, want %d", err, got, code)
	}
}
