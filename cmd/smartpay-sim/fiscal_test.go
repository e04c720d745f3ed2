package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment/fiscal"
	"github.com/kioskd/kioskd/payment/fiscal/atol"
	"github.com/kioskd/kioskd/payment/fiscal/atolonline"
	"github.com/kioskd/kioskd/payment/fiscal/fiscalsim"
	fsimtest "github.com/kioskd/kioskd/payment/fiscal/fiscalsim/simtest"
	"github.com/kioskd/kioskd/payment/proctest"
	"github.com/kioskd/kioskd/payment/smartpay/sim/simtest"
)

// startFiscal runs a fiscal subcommand until the test ends and waits for
// its admin API.
func startFiscal(t *testing.T, args ...string) (api, admin string, logs func() string) {
	t.Helper()
	api, admin = simtest.FreeAddr(t), simtest.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	out := &proctest.Output{}
	logs = out.String
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append(args, "-listen", api, "-admin", admin), nil, out)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", args[0], err)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + admin + "/sim/state")
		if err == nil {
			resp.Body.Close()
			return api, admin, logs
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
}

func simState(t *testing.T, admin string) fiscalsim.State {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/sim/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st fiscalsim.State
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// sellOnce sells a receipt through p and checks that the simulator behind
// admin holds exactly that document.
func sellOnce(t *testing.T, p fiscal.Provider, admin string) (fiscal.Result, fiscalsim.State) {
	t.Helper()
	r := fiscal.Receipt{ID: fiscal.NewID(), Taxation: fiscal.TaxUSNIncome, Total: 5000, Electronic: true, PaymentsPlace: "Автомат",
		Items: []fiscal.Item{{Name: "Батончик", Price: 5000, Quantity: fiscal.One, Amount: 5000, VAT: fiscal.VATNone}}}
	res, err := p.Sell(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	st := simState(t, admin)
	fsimtest.Confirmed(t, st, res, r.ID)
	return res, st
}

func TestServeAtol(t *testing.T) {
	api, admin, logs := startFiscal(t, "atol", "-shift-limit", "1h")
	c, err := atol.New(atol.Config{URL: "http://" + api + fiscalsim.AtolBase, Timing: fiscal.Timing{PollFirst: time.Millisecond}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, st := sellOnce(t, c, admin)
	if sh, err := c.Shift(context.Background()); err != nil || sh.Expires.Sub(st.Shift.OpenedAt) != time.Hour {
		t.Fatalf("shift limit: %+v %v", sh, err)
	}
	if !strings.Contains(logs(), `"msg":"serving"`) {
		t.Fatalf("logs: %s", logs())
	}
}

func TestServeAtolOnline(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	api, admin, logs := startFiscal(t, "atol-online", "-login", "op", "-password-file", pw, "-group", "g1")
	c, err := atolonline.New(atolonline.Config{URL: "http://" + api + fiscalsim.OnlineBase, Group: "g1", Login: "op",
		Password: "from-a-file", INN: "7700000000", CompanyEmail: "s@example.com", ClientEmail: "r@example.com",
		Timing: fiscal.Timing{PollFirst: time.Millisecond}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sellOnce(t, c, admin)
	if strings.Contains(logs(), "from-a-file") {
		t.Fatalf("the password is in the logs: %s", logs())
	}
}

func TestFiscalFlags(t *testing.T) {
	ctx := context.Background()
	var errOut bytes.Buffer
	for _, args := range [][]string{
		{"atol", "-listen", "0.0.0.0:0"},
		{"atol-online", "-admin", "192.0.2.1:80"},
		{"atol-online", "-password-file", filepath.Join(t.TempDir(), "missing")},
		{"atol", "-bogus"},
	} {
		if err := run(ctx, args, nil, &errOut); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
