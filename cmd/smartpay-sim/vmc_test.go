package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment/proctest"
	"github.com/kioskd/kioskd/payment/vending"
	"github.com/kioskd/kioskd/payment/vending/qibixx"
	"github.com/kioskd/kioskd/payment/vending/vmcsim"
)

// TestVMC runs `smartpay-sim vmc` with typed commands, the real qibixx
// driver playing kioskd on the other end of the pty.
func TestVMC(t *testing.T) {
	pr, pw := io.Pipe()
	orig := openStdin
	openStdin = func() (io.ReadCloser, error) { return pr, nil }
	t.Cleanup(func() { openStdin = orig })

	link := filepath.Join(t.TempDir(), "mdb0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &proctest.Output{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"vmc", "-link", link, "-product", "7:Сок: яблочный:6000", "-dispense", "10ms", "-trace"}, out, out)
	}()
	cfg := qibixx.DefaultConfig()
	cfg.Port = link
	dev, err := qibixx.New(cfg, nil, qibixx.Options{MinBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	devDone := make(chan error, 1)
	go func() { devDone <- dev.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-devDone; !errors.Is(err, context.Canceled) {
			t.Errorf("device Run = %v", err)
		}
	}()
	out.Contains(t, "the machine accepts cashless payment", 15*time.Second)
	out.Contains(t, "Сок: яблочный", 15*time.Second)
	if _, err := io.WriteString(pw, "7\n"); err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := dev.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if req, ok := ev.(vending.VendRequest); ok {
			if req.Amount != 6000 || req.Item != 7 {
				t.Fatalf("request %+v", req)
			}
			if err := dev.Approve(ctx, req.ID, req.Amount); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	out.Contains(t, "-> c,VEND,SUCCESS", 15*time.Second)
	out.Contains(t, "vend success: Сок: яблочный dropped", 15*time.Second)
	if _, err := io.WriteString(pw, "quit\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("vmc = %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("quit did not end vmc")
	}
}

func TestVMCFlags(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"vmc"}, &out, &out); err == nil || !strings.Contains(err.Error(), "-link") {
		t.Errorf("no -link: %v", err)
	}
	for _, bad := range []string{"7", "7:x", "x:Water:100", "7:Water:1.50", ":Water:100"} {
		if _, err := parseProduct(bad); err == nil {
			t.Errorf("parseProduct(%q) accepted", bad)
		}
	}
	p, err := parseProduct("12:Кофе: большой:12000")
	if err != nil || p != (vmcsim.Product{Item: 12, Name: "Кофе: большой", Price: 12000}) {
		t.Errorf("parseProduct = %+v, %v", p, err)
	}
}

// TestVMCWithoutREPL: -repl=false runs until the context ends.
func TestVMCWithoutREPL(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &proctest.Output{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"vmc", "-link", filepath.Join(t.TempDir(), "mdb0"), "-repl=false"}, out, out)
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("vmc = %v, want a clean exit", err)
	}
	if !strings.Contains(out.String(), "vending machine with a Qibixx adapter at") {
		t.Errorf("output %q", out.String())
	}
}
