// Package simenv is the payment tests' former simulator harness, now a thin
// layer over simtest kept until those tests call simtest directly.
//
// Deprecated: use payment/smartpay/sim/simtest.
package simenv

import (
	"testing"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
	"github.com/kioskd/kioskd/payment/smartpay/sim/simtest"
)

// Env is a running simulator and a started client connected to it.
type Env struct {
	Sim          *sim.Server
	URL          string
	ClientConfig smartpay.Config
	Client       *smartpay.Client
	srv          *simtest.Server
}

// Start serves a simulator with cfg and starts a client of kassa 1 that
// does not retry (the flow's tests count requests). Both stop at t's
// cleanup. cfg.Dir may be empty: simtest shares its key material.
func Start(t testing.TB, cfg sim.Config, _ *zap.Logger) *Env {
	t.Helper()
	srv := simtest.NewServer(t, cfg)
	noRetry := func(c *smartpay.Config) { c.Retries = -1 }
	ccfg := srv.ClientConfig(1)
	noRetry(&ccfg)
	return &Env{Sim: srv.Server, URL: srv.URL, ClientConfig: ccfg, Client: srv.NewClient(t, noRetry), srv: srv}
}

// QR returns a fresh payment QR of user.
func (e *Env) QR(t testing.TB, user string) string { return e.srv.Payload(t, user) }
