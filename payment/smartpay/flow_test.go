package smartpay_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

// env is a simulator serving on loopback and a started client for kassa 1.
type env struct {
	t   testing.TB
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
	})
	return &env{t: t, sim: s, url: "https://" + ln.Addr().String(), dir: cfg.Dir}
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
	if err := c.Start(ctx); err != nil {
		cancel()
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cancel(); c.Close() })
	return c
}

func (e *env) qr(user string) smartpay.QR {
	e.t.Helper()
	p, err := e.sim.QR(user)
	if err != nil {
		e.t.Fatal(err)
	}
	q, err := smartpay.ParseQR([]byte(p))
	if err != nil {
		e.t.Fatal(err)
	}
	return q
}

func TestPaySmoke(t *testing.T) {
	e := newEnv(t, sim.Config{})
	c := e.client(1)
	ctx := context.Background()
	cr, err := c.Commit(ctx, smartpay.CommitRequest{KassaPurchaseID: "1", QR: e.qr("u1")})
	if err != nil {
		t.Fatal(err)
	}
	rr, err := c.Release(ctx, cr.PurchaseID, 10000)
	if err != nil || rr.Status != smartpay.Released {
		t.Fatal(rr, err)
	}
	var st smartpay.StatusResponse
	for st.Status != smartpay.Success {
		time.Sleep(20 * time.Millisecond)
		if st, err = c.Status(ctx, cr.PurchaseID); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.KassaStatus(ctx, cr.PurchaseID, smartpay.KassaSuccess); err != nil {
		t.Fatal(err)
	}
	_, err = c.Refund(ctx, smartpay.RefundRequest{PurchaseID: cr.PurchaseID, KassaRefundID: "2", Amount: 20000})
	if !errors.Is(err, err) || smartpay.CodeOf(err) != smartpay.CodeRefundExceedsAmount {
		t.Fatal(err)
	}
}
