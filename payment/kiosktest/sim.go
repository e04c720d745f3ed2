package kiosktest

import (
	"context"
	"fmt"
	"net"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

// Sim is the Smart Pay simulator served over mTLS on a TCP listener, with
// the kassa's files for the agent's devices.yaml.
type Sim struct {
	*sim.Server
	Addr   string // host:port it listens on
	Dir    string // key material
	cancel context.CancelFunc
	done   chan error
}

// ServeSim creates the simulator (keys in cfg.Dir, made on first use) and
// serves it on addr ("127.0.0.1:0" for any port) until Close.
func ServeSim(cfg sim.Config, addr string, log *zap.Logger) (*Sim, error) {
	srv, err := sim.New(cfg, log)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("kiosktest: simulator: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sim{Server: srv, Addr: ln.Addr().String(), Dir: cfg.Dir, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- srv.Serve(ctx, ln) }() // owner: Close
	return s, nil
}

// KassaFiles are the CA, the kassa's certificate and its key.
func (s *Sim) KassaFiles() (ca, cert, key string) { return sim.KassaFiles(s.Dir, 1) }

// Close stops serving and waits for the server to end.
func (s *Sim) Close() error {
	s.cancel()
	return <-s.done
}
