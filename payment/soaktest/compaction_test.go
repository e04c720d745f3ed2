package soaktest

import (
	"net/http"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment/kiosktest"
)

// TestCompactionKeepsRetention: a finished sale stays in the journal for
// the retention and is compacted soon after (the flow compacts every
// quarter of the retention). Seen through the API: v2 fiscal data needs the
// sale's QR from the journal, so it is accepted for a retained sale and
// refused ("not in the journal") for a compacted one.
//
// It found that Flow.housekeep compacted only when its ticker fired, every
// journal.ReserveAhead/4 (2.5 min), so finished records outlived a
// retention under 10 minutes by up to 2.5 min; it now guards the fix.
func TestCompactionKeepsRetention(t *testing.T) {
	const retention = 4 * time.Second
	r := newRig(t, retention)
	ctx, h := r.ctx, r.host
	for _, u := range []string{"old", "new"} {
		if err := h.Sell(ctx, kiosktest.ScriptPaid, "compaction-"+u, 10000); err != nil {
			t.Fatalf("sale %s: %v\n%s", u, err, r.logTail())
		}
	}
	old, _ := h.Ledger.Sale("compaction-old")
	if !old.SawCompleted || old.PurchaseID == "" {
		t.Fatalf("the first sale did not complete: %+v", old)
	}
	v2 := func() error {
		return r.api.SendFiscal(ctx, kiosktest.Fiscal{PurchaseID: old.PurchaseID, Receipt: kiosktest.Receipt(10000, time.Now().UnixNano()%1e9+1)})
	}
	// Still retained: the journal has its QR.
	if err := v2(); err != nil {
		t.Fatalf("v2 fiscal for a sale finished just now: %v\n%s", err, r.logTail())
	}
	// Retention, a quarter of it for the compaction pass, and a margin.
	time.Sleep(retention + retention/4 + 10*time.Second)
	err := v2()
	if kiosktest.StatusOf(err) != http.StatusBadRequest {
		t.Errorf("v2 fiscal for a sale finished %s ago with a %s retention: %v; want 400, not in the journal",
			retention+retention/4+10*time.Second, retention, err)
	}
	if err := r.stop(); err != nil {
		t.Error(err)
	}
}
