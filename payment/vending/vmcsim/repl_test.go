package vmcsim_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kioskd/kioskd/payment/vending"
	"github.com/kioskd/kioskd/payment/vending/qibixx"
	"github.com/kioskd/kioskd/payment/vending/vmcsim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is written by the machine's and the REPL's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) waitFor(t *testing.T, text string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(s.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("output has no %q:\n%s", text, s.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestREPL drives the machine by typed commands while the real driver
// answers it over the pty.
func TestREPL(t *testing.T) {
	link := filepath.Join(t.TempDir(), "mdb0")
	var out syncBuffer
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
	out.waitFor(t, "the machine accepts cashless payment")
	out.waitFor(t, "Шоколад")
	if _, err := io.WriteString(pw, "21\n"); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "kioskd approved 95.50 ₽: dispensing Шоколад")
	out.waitFor(t, "vend success: Шоколад dropped")
	if _, err := io.WriteString(pw, "dispense sideways\nstatus\nquit\n"); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "error: dispense ok|fail|hang")
	out.waitFor(t, "vended")
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
