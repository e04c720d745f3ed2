// Package simenv starts the Smart Pay simulator on loopback and a real
// mTLS client for it, for the payment tests, crash harness and benchmarks.
package simenv

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

// Env is a running simulator and a started client connected to it.
type Env struct {
	Sim          *sim.Server
	URL          string
	ClientConfig smartpay.Config
	Client       *smartpay.Client
}

// Start serves a simulator with cfg (cfg.Dir holds the key material; share
// one across tests, key generation is slow) on a loopback port and starts a
// client with the kassa certificate it wrote. Both stop at t's cleanup.
func Start(t testing.TB, cfg sim.Config, log *zap.Logger) *Env {
	t.Helper()
	srv, url := Serve(t, cfg, log)
	ca, cert, key := sim.KassaFiles(cfg.Dir, 1)
	ccfg := smartpay.Config{URL: url, CAFile: ca, CertFile: cert, KeyFile: key,
		CallTimeout: 2 * time.Second, Retries: -1}
	c, err := smartpay.NewClient(ccfg, log)
	if err != nil {
		t.Fatal(err)
	}
	// The client's keep-warm goroutine lives as long as cctx.
	cctx, ccancel := context.WithCancel(context.Background())
	t.Cleanup(func() { ccancel(); c.Close() })
	if err := c.Start(cctx); err != nil {
		t.Fatal(err)
	}
	return &Env{Sim: srv, URL: ccfg.URL, ClientConfig: ccfg, Client: c}
}

// Serve serves a simulator with cfg on a loopback port over mTLS until t's
// cleanup and returns it with its https:// URL.
func Serve(t testing.TB, cfg sim.Config, log *zap.Logger) (*sim.Server, string) {
	t.Helper()
	srv, err := sim.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ctx, ln); err != nil {
			t.Errorf("sim: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return srv, "https://" + ln.Addr().String()
}

// QR returns a fresh payment QR of user.
func (e *Env) QR(t testing.TB, user string) string {
	t.Helper()
	q, err := e.Sim.QR(user)
	if err != nil {
		t.Fatal(err)
	}
	return q
}
