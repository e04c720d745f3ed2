package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/kioskd/kioskd/cmd/kioskd/internal/config"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

// TestNoScanner: a kiosk whose own application owns the scanner and hands
// codes over with POST /v1/scan has no scanners section. The agent runs,
// /healthz is ready without asking for a scanner, and a scan handed over
// through the API is committed at the service.
func TestNoScanner(t *testing.T) {
	dir := t.TempDir()
	srv, err := sim.New(sim.Config{Dir: dir}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(filepath.Join(dir, "devices.yaml"), []byte(fmt.Sprintf(`kassa:
  id: %s
service: {url: "https://%s", ca: ca.crt, cert: kassa.crt, key: kassa.key}
journal: journal.db
api: {socket: api.sock}
`, sim.KassaID(1), ln.Addr())))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	simDone, agentDone := make(chan error, 1), make(chan error, 1)
	ready := make(chan struct{})
	go func() { simDone <- srv.Serve(ctx, ln) }()
	go func() { agentDone <- Run(ctx, cfg, zaptest.NewLogger(t), Options{Ready: func() { close(ready) }}) }()
	defer func() {
		cancel()
		if err := <-agentDone; err != nil {
			t.Errorf("agent: %v", err)
		}
		<-simDone
	}()
	select {
	case <-ready:
	case err := <-agentDone:
		t.Fatalf("agent ended before it was ready: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("agent not ready within 20s")
	}
	k := &kiosk{socket: cfg.API.Socket}
	until := func(what, path, want string) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, body := k.get(t, path)
			if code == http.StatusOK && strings.Contains(body, want) && !strings.Contains(body, "scanner") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s = %d %s", what, path, code, body)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	until("health without scanners", "/healthz", `"ready":true`)
	qr, err := srv.QR("no-scanner")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"data": qr})
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", k.socket)
	}}}
	defer c.CloseIdleConnections()
	resp, err := c.Post("http://kioskd/v1/scan", "application/json", bytes.NewReader(body))
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/scan: %v %v", resp, err)
	}
	resp.Body.Close()
	until("the scan committed", "/v1/state", `"state":"waiting_amount"`)
}
