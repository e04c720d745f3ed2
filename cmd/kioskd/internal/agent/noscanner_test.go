package agent

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/kioskd/kioskd/cmd/kioskd/internal/config"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
	"github.com/kioskd/kioskd/payment/smartpay/sim/simtest"
)

// TestNoScanner: a kiosk whose own application owns the scanner and hands
// codes over with POST /v1/scan has no scanners section. The agent runs,
// /healthz is ready without asking for a scanner, and a scan handed over
// through the API is committed at the service.
func TestNoScanner(t *testing.T) {
	srv := simtest.NewServer(t, sim.Config{})
	cfg, err := config.Parse(filepath.Join(srv.Dir, "devices.yaml"),
		[]byte("kassa:\n  id: "+sim.KassaID(1)+"\n"+srv.ServiceYAML()+"journal: journal.db\napi:\n  socket: api.sock\n"))
	if err != nil {
		t.Fatal(err)
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
	runAgent(t, cfg, zaptest.NewLogger(t), Options{})
	until("health without scanners", "/healthz", `"ready":true`)
	body, _ := json.Marshal(map[string]string{"data": srv.Payload(t, "no-scanner")})
	c := k.client()
	defer c.CloseIdleConnections()
	resp, err := c.Post("http://kioskd/v1/scan", "application/json", bytes.NewReader(body))
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/scan: %v %v", resp, err)
	}
	resp.Body.Close()
	until("the scan committed", "/v1/state", `"state":"waiting_amount"`)
}
