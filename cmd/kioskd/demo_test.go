package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment/proctest"
)

// buildBinaries builds kioskd and smartpay-sim once per test run.
var buildBinaries = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "kioskd-bin-")
	if err != nil {
		return "", err
	}
	for _, pkg := range []string{"./", "../smartpay-sim"} {
		name := filepath.Base(pkg)
		if pkg == "./" {
			name = "kioskd"
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", &buildError{pkg: pkg, out: string(out), err: err}
		}
	}
	return dir, nil
})

type buildError struct {
	pkg, out string
	err      error
}

func (e *buildError) Error() string { return "build " + e.pkg + ": " + e.err.Error() + "\n" + e.out }

// The README's first command: `kioskd run` with no configuration starts the
// demo. A payload from `smartpay-sim qr`, written into the printed pty as a
// person would with echo, ends in a paid sale on the terminal display and in
// the simulator; the agent's log holds none of the payload's secrets.
func TestDemoPaidSaleThroughThePty(t *testing.T) {
	if _, err := os.Stat(defaultConfig); err == nil {
		t.Skipf("%s exists: kioskd run would use it instead of the demo", defaultConfig)
	}
	bin, err := buildBinaries()
	if err != nil {
		t.Fatal(err)
	}
	demoDir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out proctest.Output
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "kioskd"), "run", "-demo-dir", demoDir)
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	m := out.Match(t, regexp.MustCompile(`> (/dev/pts/\d+)\n`), 30*time.Second)
	input := m[1]
	admin := out.Match(t, regexp.MustCompile(`curl (http://127\.0\.0\.1:\d+)/sim/state`), 5*time.Second)[1]
	out.Match(t, regexp.MustCompile(`Покажите QR-код`), 5*time.Second)

	qr := exec.Command(filepath.Join(bin, "smartpay-sim"), "qr", "-dir", demoDir)
	payload, err := qr.Output()
	if err != nil {
		t.Fatalf("smartpay-sim qr: %v", err)
	}
	var fields map[string]string
	if err := json.Unmarshal(payload, &fields); err != nil {
		t.Fatalf("smartpay-sim qr printed %q: %v", payload, err)
	}
	// echo "$(smartpay-sim qr …)" > /dev/pts/N
	pty, err := os.OpenFile(input, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pty.Write(append(bytes.TrimSpace(payload), '\n')); err != nil {
		t.Fatal(err)
	}
	pty.Close()

	out.Match(t, regexp.MustCompile(`Оплата прошла`), 30*time.Second)
	// The demo's ККТ issues the receipt, and the display shows its QR string.
	receipt := out.Match(t, regexp.MustCompile(`\[receipt\] Ваш чек \| 149,00 ₽ \| [^|]+ \| (t=\d{8}T\d{4}&s=149\.00&fn=\d{16}&i=(\d+)&fp=(\d+)&n=1)\n`), 30*time.Second)
	kktState := out.Match(t, regexp.MustCompile(`receipts: curl (http://127\.0\.0\.1:\d+/sim/state)`), time.Second)[1]
	resp, err := http.Get(kktState)
	if err != nil {
		t.Fatal(err)
	}
	var kkt struct {
		Receipts []struct {
			Type   string `json:"type"`
			Fiscal struct {
				FDNumber   int64  `json:"fd_number"`
				FiscalSign string `json:"fiscal_sign"`
			} `json:"fiscal"`
		} `json:"receipts"`
	}
	err = json.NewDecoder(resp.Body).Decode(&kkt)
	resp.Body.Close()
	if err != nil || len(kkt.Receipts) != 1 || kkt.Receipts[0].Type != "sell" ||
		fmt.Sprint(kkt.Receipts[0].Fiscal.FDNumber) != receipt[2] || kkt.Receipts[0].Fiscal.FiscalSign != receipt[3] {
		t.Fatalf("the ККТ simulator holds %+v (%v); the display shows %s", kkt.Receipts, err, receipt[1])
	}

	// The simulator agrees: one purchase, paid and confirmed by the kassa.
	var state struct {
		Purchases []struct {
			Status    string `json:"status"`
			Amount    int64  `json:"amount"`
			Confirmed bool   `json:"confirmed"`
		} `json:"purchases"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(admin + "/sim/state")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err := json.Unmarshal(body, &state); err != nil {
			t.Fatalf("sim state %s: %v", body, err)
		}
		if len(state.Purchases) == 1 && state.Purchases[0].Status == "success" && state.Purchases[0].Confirmed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("simulator state after the sale: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := state.Purchases[0].Amount; got != 14900 {
		t.Errorf("paid amount %d, want the demo price 14900", got)
	}

	cancel()
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		t.Fatal("kioskd did not stop on SIGINT")
	}

	// The log of the whole flow holds no part of the QR's secrets.
	logData, err := os.ReadFile(filepath.Join(demoDir, "kioskd.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(logData, []byte("->")) {
		t.Fatalf("the log does not look like a flow's log:\n%s", logData)
	}
	for _, key := range []string{"encrypted", "sign"} {
		secret := fields[key]
		if len(secret) < 16 {
			t.Fatalf("payload field %s too short to search for: %q", key, secret)
		}
		// Any 16-character piece of the secret would be a leak.
		for i := 0; i+16 <= len(secret); i += 8 {
			if bytes.Contains(logData, []byte(secret[i:i+16])) {
				t.Fatalf("the log contains part of the QR's %s", key)
			}
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(logData))
	for sc.Scan() {
		if l := strings.ToLower(sc.Text()); strings.Contains(l, "kdpay_session=") || strings.Contains(l, "set-cookie") {
			t.Fatalf("the log contains a session cookie: %s", sc.Text())
		}
	}
}
