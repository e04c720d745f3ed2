// Package simtest starts the fiscal simulators on loopback ports for a
// test, shaped like net/http/httptest: the API's URL, the admin URL and
// the simulator itself. Both stop at the test's cleanup.
package simtest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/fiscal"
	"github.com/kioskd/kioskd/payment/fiscal/fiscalsim"
)

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
	host := serve(t, s.Handler(), s.AdminHandler())
	return &AtolServer{URL: host + fiscalsim.AtolBase, AdminURL: host, Sim: s}
}

// NewOnline serves a cloud simulator with cfg on a loopback port.
func NewOnline(t testing.TB, cfg fiscalsim.OnlineConfig, log *zap.Logger) *OnlineServer {
	t.Helper()
	s := fiscalsim.NewOnline(cfg, log)
	host := serve(t, s.Handler(), s.AdminHandler())
	return &OnlineServer{URL: host + fiscalsim.OnlineBase, AdminURL: host, Sim: s}
}

// serve runs api and admin (under /sim/) on one loopback listener until
// t's cleanup, and returns http://host:port.
func serve(t testing.TB, api, admin http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/sim/", admin)
	mux.Handle("/", api)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("simtest: serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
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
