package journal

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"
)

// A sale's receipt is stored with the record that ends it, once however
// often that record is written; issuing it queues its fiscal records in the
// same transaction; compaction removes it once issued and old.
func TestReceipts(t *testing.T) {
	j := open(t, filepath.Join(t.TempDir(), "j.db"))
	defer j.Close()
	now := time.Now()
	s, err := j.NewSale([]byte("qr"), now)
	if err != nil {
		t.Fatal(err)
	}
	s.PurchaseID, s.Phase, s.Outcome, s.Updated = "P-1", SaleDone, "completed", now
	rc := Receipt{ID: "r-1", SaleID: s.ID, PurchaseID: "P-1", Amount: 500}
	for range 2 { // a repeated write (recovery) makes no second receipt
		if err := j.PutSale(s, rc); err != nil {
			t.Fatal(err)
		}
	}
	pending, err := j.Receipts(true)
	if err != nil || len(pending) != 1 || pending[0].ID != "r-1" || pending[0].Seq == 0 {
		t.Fatalf("pending receipts: %+v %v", pending, err)
	}
	got := pending[0]
	got.Result = json.RawMessage(`{"FiscalSign":"1"}`)
	v1 := Fiscal{Version: 1, SaleID: s.ID, PurchaseID: "P-1", KKTRegNumber: "0000000012345678", FiscalSign: "1"}
	if err := j.ReceiptIssued(got, []Fiscal{v1}, now); err != nil {
		t.Fatal(err)
	}
	if p, _ := j.Receipts(true); len(p) != 0 {
		t.Fatalf("issued receipt still pending: %+v", p)
	}
	if f, _ := j.Fiscals(true); len(f) != 1 || f[0].FiscalSign != "1" {
		t.Fatalf("fiscal queue: %+v", f)
	}
	if n, err := j.Compact(now.Add(time.Second)); err != nil || n != 2 { // the sale and the receipt; the fiscal record is pending
		t.Fatalf("compact: %d %v", n, err)
	}
	if all, _ := j.Receipts(false); len(all) != 0 {
		t.Fatalf("receipts after compaction: %+v", all)
	}
}
