package demo

import (
	"context"
	"fmt"
	"net"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/fiscal/fiscalsim"
)

// kkt is the demo's ККТ: the ATOL web-server simulator in-process on a
// loopback port, its admin API (/sim/state lists the receipts) beside it,
// so a sale ends with a real receipt and its QR code on the display.
type kkt struct {
	ln  net.Listener
	sim *fiscalsim.Atol
}

func startKKT(log *zap.Logger) (*kkt, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo: ККТ simulator: %w", err)
	}
	return &kkt{ln: ln, sim: fiscalsim.NewAtol(fiscalsim.Config{}, log)}, nil
}

// serve serves the simulator until ctx ends.
func (k *kkt) serve(ctx context.Context) error { return k.sim.Serve(ctx, k.ln) }

// url is the web server's API, as fiscal.url wants it.
func (k *kkt) url() string { return "http://" + k.ln.Addr().String() + fiscalsim.AtolBase }

// state is where the simulator lists its receipts.
func (k *kkt) state() string { return "http://" + k.ln.Addr().String() + "/sim/state" }

// yaml is the demo's fiscal section: receipts through the simulator.
func (k *kkt) yaml(item string) string {
	return fmt.Sprintf(`fiscal:
  provider: atol
  url: %s
  taxation: usn_income
  vat: none
  item: %q
  machine_number: DEMO-1
  place: Демонстрация kioskd
  address: 127.0.0.1
`, k.url(), item)
}
