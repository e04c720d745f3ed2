// Package simtest starts the fiscal simulators on loopback ports for a
// test, shaped like net/http/httptest: the API's URL, the admin URL and
// the simulator itself. Both stop at the test's cleanup.
package simtest

import (
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/fiscal"
	"github.com/kioskd/kioskd/payment/fiscal/fiscalsim"
	"github.com/kioskd/kioskd/payment/internal/loopback"
)

// Timing polls a simulator fast, for a backend's tests: the simulators
// answer at once, and a call gives up after five seconds.
var Timing = fiscal.Timing{Wait: 5 * time.Second, PollFirst: 5 * time.Millisecond, PollMax: 50 * time.Millisecond}

// AtolServer is a running web server simulator.
type AtolServer struct {
	URL      string // the API's base URL, as atol.Config.URL wants it (…/api/v2)
	AdminURL string // http://host:port; the admin API is under /sim/
	Sim      *fiscalsim.Atol
}

// OnlineServer is a running cloud simulator.
type OnlineServer struct {
	URL      string // the API's base URL, as atolonline.Config.URL wants it (…/possystem/v4)
	AdminURL string
	Sim      *fiscalsim.Online
}

// NewAtol serves a web server simulator with cfg on a loopback port.
func NewAtol(t testing.TB, cfg fiscalsim.Config, log *zap.Logger) *AtolServer {
	t.Helper()
	s := fiscalsim.NewAtol(cfg, log)
	host := "http://" + loopback.Serve(t, s.Serve).Addr
	return &AtolServer{URL: host + fiscalsim.AtolBase, AdminURL: host, Sim: s}
}

// NewOnline serves a cloud simulator with cfg on a loopback port.
func NewOnline(t testing.TB, cfg fiscalsim.OnlineConfig, log *zap.Logger) *OnlineServer {
	t.Helper()
	s := fiscalsim.NewOnline(cfg, log)
	host := "http://" + loopback.Serve(t, s.Serve).Addr
	return &OnlineServer{URL: host + fiscalsim.OnlineBase, AdminURL: host, Sim: s}
}

// Confirmed checks that res is the document the simulator made under id
// (every fiscal field equal, the sign the one Sign derives from the
// receipt) and returns that document.
func Confirmed(t testing.TB, st fiscalsim.State, res fiscal.Result, id string) fiscalsim.Receipt {
	t.Helper()
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
