package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment/proctest"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

// The README's vending demo: `kioskd run -demo vending` lists the emulated
// machine's products; typing a number selects one, and the customer
// display shows it with its price; the printed QR, pasted in the same
// terminal, pays it; the machine dispenses and the simulator holds the
// payment confirmed at the product's price.
func TestVendingDemo(t *testing.T) {
	bin, err := buildBinaries()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out proctest.Output
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "kioskd"), "run", "-demo", "vending", "-demo-dir", t.TempDir())
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	payload := out.Match(t, regexp.MustCompile(`\n(\{"id_loyalty":[^\n]*\})\n`), 30*time.Second)[1]
	admin := out.Match(t, regexp.MustCompile(`curl (http://127\.0\.0\.1:\d+)/sim/state`), 5*time.Second)[1]
	out.Match(t, regexp.MustCompile(`12  Кофе американо`), 5*time.Second)
	out.Match(t, regexp.MustCompile(`the machine accepts cashless payment`), 20*time.Second)
	io.WriteString(stdin, "12\n")
	out.Match(t, regexp.MustCompile(`\[selected\] Кофе американо \| 120,00 ₽ \| Покажите QR-код для оплаты`), 20*time.Second)
	io.WriteString(stdin, payload+"\n")
	out.Match(t, regexp.MustCompile(`vend success: Кофе американо dropped`), 30*time.Second)

	deadline := time.Now().Add(10 * time.Second)
	for st := simStateAt(t, admin); len(st.Purchases) != 1 || !st.Purchases[0].Confirmed || st.Purchases[0].Amount != 12000; st = simStateAt(t, admin) {
		if time.Now().After(deadline) {
			t.Fatalf("simulator state after the vend: %+v\noutput:\n%s", st, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The vend's receipt (the demo's ККТ) shows; the next customer's
	// selection replaces it at once.
	out.Match(t, regexp.MustCompile(`\[receipt\] [^\n]*120,00 ₽`), 20*time.Second)
	io.WriteString(stdin, "11\n")
	out.Match(t, regexp.MustCompile(`\[selected\] Вода 0,5 л \| 80,00 ₽`), 10*time.Second)

	cancel()
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		t.Fatal("kioskd did not stop on SIGINT")
	}
}

// simStateAt is GET /sim/state of the simulator whose admin API is at admin.
func simStateAt(t *testing.T, admin string) sim.State {
	t.Helper()
	resp, err := http.Get(admin + "/sim/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st sim.State
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("sim state: %v", err)
	}
	return st
}
