package payment_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

const v2Receipt = `{"kkt_reg_number":"0000000012345678","fn_number":"9999078900001234","fd_number":42,
	"fiscal_sign":"3522207798","datetime":"2026-11-26T10:00:00Z","operation":"income","total":100,
	"items":[{"name":"Кофе","price":100,"quantity":1,"amount":100,"vat":"vat20"}]}`

// PaidElsewhere racing the release the amount starts: either it wins (the
// sale is cancelled and its receipt queued) or it is refused and queues
// nothing. A refused call must never leave a v2 receipt queued for a sale
// whose QR payment goes ahead.
func TestPaidElsewhereRefusedQueuesNoReceipt(t *testing.T) {
	a := startAgent(t, sim.Config{}, payment.Config{})
	accepted := 0
	for i := range 30 {
		a.flow.Scan([]byte(a.sim.QR(t, fmt.Sprintf("race%d", i))), "test", time.Now())
		a.wait(t, payment.WaitingAmount)
		if err := a.flow.StartSale(100); err != nil {
			t.Fatal(err)
		}
		if err := a.flow.PaidElsewhere(json.RawMessage(v2Receipt)); err == nil {
			accepted++
		} else if err := a.flow.Cancel(); err != nil {
			t.Fatalf("cancel after a refused paid-elsewhere: %v", err)
		}
		a.wait(t, payment.Idle)
	}
	deadline := time.Now().Add(10 * time.Second)
	for a.flow.Snapshot().FiscalPending > 0 {
		if time.Now().After(deadline) {
			t.Fatal("fiscal queue never drained")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := len(a.sim.Sim.State().Fiscal); n != accepted {
		t.Fatalf("%d v2 receipts reached the service for %d accepted paid-elsewhere calls", n, accepted)
	}
}
