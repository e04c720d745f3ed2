package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kioskd/kioskd/payment/proctest"
	"github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
	"github.com/kioskd/kioskd/payment/smartpay/sim/simtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestServeAndQR(t *testing.T) {
	dir := t.TempDir()
	api, admin := simtest.FreeAddr(t), simtest.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs proctest.Output
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "-listen", api, "-admin", admin, "-dir", dir, "-kassas", "2", "-success-delay", "10ms"}, nil, &logs)
	}()

	var resp *http.Response
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err = http.Get("http://" + admin + "/sim/state"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	// A payload from the qr command commits through the real client.
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"qr", "-dir", dir, "-user", "u1"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if strings.Count(out.String(), "\n") != 1 || errOut.Len() != 0 {
		t.Fatalf("qr printed %q / %q", out.String(), errOut.String())
	}
	q, err := smartpay.ParseQR(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	ca, cert, key := sim.KassaFiles(dir, 2)
	c, err := smartpay.NewClient(smartpay.Config{URL: "https://" + api, CAFile: ca, CertFile: cert, KeyFile: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithCancel(ctx)
	if err := c.Start(cctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Commit(ctx, smartpay.CommitRequest{KassaPurchaseID: "1", QR: q}); err != nil {
		t.Fatal(err)
	}
	ccancel()
	c.Close()

	resp, err = http.Get("http://" + admin + "/sim/state")
	if err != nil {
		t.Fatal(err)
	}
	var st sim.State
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || len(st.Purchases) != 1 || st.Purchases[0].Kassa != sim.KassaID(2) {
		t.Fatalf("state %+v %v", st, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if !strings.Contains(logs.String(), `"msg":"serving"`) {
		t.Fatalf("logs: %s", logs.String())
	}
	for _, secret := range []string{q.Encrypted[:24], q.Sign[:24], sim.SessionCookie} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("logs contain %q", secret)
		}
	}
}

func TestServeFlags(t *testing.T) {
	ctx := context.Background()
	var errOut bytes.Buffer
	if err := run(ctx, []string{"serve", "-dir", t.TempDir(), "-admin", "0.0.0.0:0"}, nil, &errOut); err == nil ||
		!strings.Contains(err.Error(), "loopback") {
		t.Fatalf("non-loopback admin: %v", err)
	}
	if err := run(ctx, []string{"serve"}, nil, &errOut); err == nil {
		t.Fatal("serve without -dir")
	}
	if err := run(ctx, []string{"qr", "-dir", t.TempDir()}, nil, &errOut); err == nil {
		t.Fatal("qr without key material")
	}
	if err := run(ctx, []string{"bogus"}, nil, &errOut); err == nil {
		t.Fatal("unknown command")
	}
}
