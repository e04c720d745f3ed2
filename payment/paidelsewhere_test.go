package payment_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

const v2Receipt = `{"kkt_reg_number":"0000000012345678","fn_number":"9999078900001234","fd_number":42,
	"fiscal_sign":"3522207798","datetime":"2026-11-26T10:00:00Z","operation":"income","total":100,
	"items":[{"name":"Кофе","price":100,"quantity":1,"amount":100,"vat":"vat20"}]}`

// eventCount counts the events of one kind from the time it was made.
type eventCount struct {
	mu      sync.Mutex
	n       int
	changed chan struct{} // closed at the next count
}

func countEvents(t *testing.T, f *payment.Flow, k payment.EventKind) *eventCount {
	c := &eventCount{changed: make(chan struct{})}
	ch, unsub := f.Subscribe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range ch {
			if e.Kind == k {
				c.mu.Lock()
				c.n++
				close(c.changed)
				c.changed = make(chan struct{})
				c.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { unsub(); <-done })
	return c
}

// atLeast waits until n events were counted; false after guard.
func (c *eventCount) atLeast(n int) bool {
	deadline := time.After(guard)
	for {
		c.mu.Lock()
		got, changed := c.n, c.changed
		c.mu.Unlock()
		if got >= n {
			return true
		}
		select {
		case <-changed:
		case <-deadline:
			return false
		}
	}
}

// PaidElsewhere racing the release the amount starts: either it wins (the
// sale is cancelled and its receipt queued) or it is refused and queues
// nothing. A refused call must never leave a v2 receipt queued for a sale
// whose QR payment goes ahead.
func TestPaidElsewhereRefusedQueuesNoReceipt(t *testing.T) {
	t.Parallel()
	a := startAgent(t, sim.Config{}, payment.Config{})
	ctx := context.Background()
	delivered := countEvents(t, a.flow, payment.KindFiscal)
	accepted := 0
	for i := range 20 {
		a.scan(a.sim.Payload(t, fmt.Sprintf("race%d", i)))
		a.state(payment.WaitingAmount)
		if err := a.flow.SetAmount(ctx, 100, ""); err != nil {
			t.Fatal(err)
		}
		if err := a.flow.PaidElsewhere(ctx, json.RawMessage(v2Receipt)); err == nil {
			accepted++
		} else if err := a.flow.Cancel(ctx); err != nil {
			t.Fatalf("cancel after a refused paid-elsewhere: %v", err)
		}
		a.state(payment.Idle)
	}
	if !delivered.atLeast(accepted) {
		t.Fatalf("fewer than %d receipts delivered", accepted)
	}
	if n := len(a.sim.State().Fiscal); n != accepted {
		t.Fatalf("%d v2 receipts reached the service for %d accepted paid-elsewhere calls", n, accepted)
	}
	if p := a.flow.Snapshot().FiscalPending; p != 0 {
		t.Fatalf("%d receipts still pending", p)
	}
}
