package journal

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Look-ups by purchase id, host request id and fiscal content go through
// indexes that compaction keeps in step with the records.
func TestIndexes(t *testing.T) {
	j := open(t, filepath.Join(t.TempDir(), "j.db"))
	defer j.Close()
	now := time.Now()
	s, err := j.NewSale([]byte("qr"), now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.SaleByPurchase("P-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("before the commit: %v", err)
	}
	s.PurchaseID, s.Phase, s.Updated = "P-1", SaleDone, now.Add(-time.Hour)
	if err := j.PutSale(s); err != nil {
		t.Fatal(err)
	}
	if got, err := j.SaleByPurchase("P-1"); err != nil || got.ID != s.ID {
		t.Fatalf("by purchase: %+v, %v", got, err)
	}
	r, _, err := j.NewRefund("P-1", 100, "req-1", now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	r.Phase, r.Updated = RefundDone, now.Add(-time.Hour)
	if err := j.PutRefund(r); err != nil {
		t.Fatal(err)
	}
	f, err := j.EnqueueFiscal(Fiscal{Version: 1, PurchaseID: "P-1", KKTRegNumber: "1", FiscalSign: "2"}, now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	f.Delivered = true
	if err := j.PutFiscal(f); err != nil {
		t.Fatal(err)
	}
	if n, err := j.Compact(now); err != nil || n != 3 {
		t.Fatalf("compact: %d, %v", n, err)
	}
	if _, err := j.SaleByPurchase("P-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("index entry outlived its sale: %v", err)
	}
	// The request id and the fiscal record are free again.
	r2, existed, err := j.NewRefund("P-2", 5, "req-1", now)
	if err != nil || existed || r2.ID == r.ID {
		t.Fatalf("request id after compaction: %+v %v %v", r2, existed, err)
	}
	f2, err := j.EnqueueFiscal(Fiscal{Version: 1, PurchaseID: "P-1", KKTRegNumber: "1", FiscalSign: "2"}, now)
	if err != nil || f2.Seq == f.Seq || !f2.Pending() {
		t.Fatalf("fiscal record after compaction: %+v %v", f2, err)
	}
}

// A journal written before the indexes existed gets them on open.
func TestIndexesBuiltForOldJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	j := open(t, path)
	s, _ := j.NewSale([]byte("qr"), time.Now())
	s.PurchaseID = "P-old"
	if err := j.PutSale(s); err != nil {
		t.Fatal(err)
	}
	if _, _, err := j.NewRefund("P-old", 1, "req-old", time.Now()); err != nil {
		t.Fatal(err)
	}
	err := j.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketByPurch, bucketByRequest, bucketByFiscal} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	j = open(t, path)
	defer j.Close()
	if got, err := j.SaleByPurchase("P-old"); err != nil || got.ID != s.ID {
		t.Fatalf("old sale by purchase: %+v %v", got, err)
	}
	if _, existed, err := j.NewRefund("P-old", 1, "req-old", time.Now()); err != nil || !existed {
		t.Fatalf("old request id not found: %v %v", existed, err)
	}
}
