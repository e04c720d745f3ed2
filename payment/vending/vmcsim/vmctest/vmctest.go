// Package vmctest runs the emulated vending machine for tests the way
// simtest runs the Smart Pay simulator: NewMachine plays it until the test
// ends.
//
//	m := vmctest.NewMachine(t, vmcsim.Config{Link: filepath.Join(t.TempDir(), "mdb0")})
//	// kioskd opens m.Link() as its vending.port; m.Select(11) …
package vmctest

import (
	"context"
	"errors"
	"testing"

	"github.com/kioskd/kioskd/payment/vending/vmcsim"
)

// NewMachine creates the machine of cfg and runs it until tb ends (its
// cleanup waits for it); a Run that ends for another reason fails tb.
func NewMachine(tb testing.TB, cfg vmcsim.Config) *vmcsim.Machine {
	tb.Helper()
	m, err := vmcsim.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			tb.Errorf("vmctest: the machine ended: %v", err)
		}
	})
	return m
}
