package journal

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketReceipts = []byte("receipts")  // by sequence
	bucketByOrigin = []byte("by_origin") // "sale:<id>" / "refund:<id>" → receipt key
)

// Receipt is a fiscal receipt (54-ФЗ) the kassa issues itself for a sale
// or a refund. It is stored in the same transaction as the record that
// ends the sale or refund, with its id fixed, so that a crash can neither
// lose it nor make a second one; it stays pending until the ККТ confirmed
// it, and then its fiscal records for the service are queued with it.
type Receipt struct {
	Seq        uint64          `json:"seq"`
	ID         string          `json:"id"`     // the receipt's id at the ККТ, fixed before the first attempt
	Return     bool            `json:"return"` // a return receipt (for a refund); else a sale receipt
	SaleID     string          `json:"sale_id,omitempty"`
	RefundID   string          `json:"refund_id,omitempty"` // kassa_refund_id of a return
	PurchaseID string          `json:"purchase_id"`
	Item       string          `json:"item,omitempty"` // what was sold; empty: the configured default
	Amount     int64           `json:"amount"`         // kopecks
	Result     json.RawMessage `json:"result,omitempty"`
	Attempts   int             `json:"attempts"`
	Problem    string          `json:"problem,omitempty"` // why the last attempt failed
	Created    time.Time       `json:"created"`
	Updated    time.Time       `json:"updated"`
}

// Pending reports whether the ККТ has not yet confirmed the receipt.
func (r Receipt) Pending() bool { return len(r.Result) == 0 }

// origin is the index key of what the receipt is for.
func (r Receipt) origin() []byte {
	if r.Return {
		return []byte("refund:" + r.RefundID)
	}
	return []byte("sale:" + r.SaleID)
}

// addReceipts stores the receipts of a record being written in tx, once:
// a receipt for the same sale or refund is never made twice.
func addReceipts(tx *bolt.Tx, now time.Time, rs []Receipt) error {
	idx := tx.Bucket(bucketByOrigin)
	b := tx.Bucket(bucketReceipts)
	for _, r := range rs {
		if idx.Get(r.origin()) != nil {
			continue
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		r.Seq, r.Created, r.Updated = seq, now, now
		if err := idx.Put(r.origin(), seqKey(seq)); err != nil {
			return err
		}
		if err := put(tx, bucketReceipts, seqKey(seq), r); err != nil {
			return err
		}
	}
	return nil
}

// Receipts returns the receipts in order; when pending is true only those
// the ККТ has not confirmed.
func (j *Journal) Receipts(pending bool) ([]Receipt, error) {
	return list(j.db, bucketReceipts, "receipts", func(r Receipt) bool { return !pending || r.Pending() })
}

// PutReceipt stores r (an attempt that failed), durably.
func (j *Journal) PutReceipt(r Receipt) error {
	err := j.update(func(tx *bolt.Tx) error {
		return replace(tx, bucketReceipts, seqKey(r.Seq), r, fmt.Sprintf("receipt %d", r.Seq))
	})
	if err != nil {
		return fmt.Errorf("journal: put receipt %s: %w", r.ID, err)
	}
	return nil
}

// ReceiptIssued stores r with its Result and queues the fiscal records
// that carry it to the service, in one transaction: a receipt confirmed by
// the ККТ always has its records queued, and never twice.
func (j *Journal) ReceiptIssued(r Receipt, forward []Fiscal, now time.Time) error {
	err := j.update(func(tx *bolt.Tx) error {
		if err := replace(tx, bucketReceipts, seqKey(r.Seq), r, fmt.Sprintf("receipt %d", r.Seq)); err != nil {
			return err
		}
		for _, f := range forward {
			if _, err := enqueueFiscal(tx, f, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("journal: receipt %s issued: %w", r.ID, err)
	}
	return nil
}
