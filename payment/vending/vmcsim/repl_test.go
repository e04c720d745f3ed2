package vmcsim_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kioskd/kioskd/payment/proctest"
	"github.com/kioskd/kioskd/payment/vending"
	"github.com/kioskd/kioskd/payment/vending/qibixx"
	"github.com/kioskd/kioskd/payment/vending/vmcsim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestREPL drives the machine by typed commands while the real driver
// answers it over the pty.
func TestREPL(t *testing.T) {
	link := filepath.Join(t.TempDir(), "mdb0")
	var out proctest.Output // written by the machine's and the REPL's goroutines
	m, err := vmcsim.New(vmcsim.Config{Link: link, Narrate: &out, DispenseTime: 20 * time.Millisecond,
		SetupDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cfg := qibixx.DefaultConfig()
	cfg.Port = link
	dev, err := qibixx.New(cfg, nil, qibixx.Options{MinBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for _, run := range []func() error{
		func() error { return m.Run(ctx) },
		func() error { return dev.Run(ctx) },
		func() error { return m.REPL(ctx, pr, &out) },
		func() error { // kioskd's side: approve every request
			for {
				ev, err := dev.Next(ctx)
				if err != nil {
					return err
				}
				if req, ok := ev.(vending.VendRequest); ok {
					if err := dev.Approve(ctx, req.ID, req.Amount); err != nil {
						return err
					}
				}
			}
		},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- run()
		}()
	}
	out.Contains(t, "the machine accepts cashless payment", 15*time.Second)
	out.Contains(t, "Шоколад", 15*time.Second)
	if _, err := io.WriteString(pw, "21\n"); err != nil {
		t.Fatal(err)
	}
	out.Contains(t, "kioskd approved 95.50 ₽: dispensing Шоколад", 15*time.Second)
	out.Contains(t, "vend success: Шоколад dropped", 15*time.Second)
	if _, err := io.WriteString(pw, "dispense sideways\nstatus\nquit\n"); err != nil {
		t.Fatal(err)
	}
	out.Contains(t, "error: dispense ok|fail|hang", 15*time.Second)
	out.Contains(t, "vended", 15*time.Second)
	if err := <-errs; err != nil { // quit ends the REPL first
		t.Errorf("REPL = %v", err)
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v", err)
		}
	}
}
