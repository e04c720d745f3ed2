package journal

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

var (
	bucketMeta    = []byte("meta")
	bucketSales   = []byte("sales")
	bucketRefunds = []byte("refunds")
	bucketFiscal  = []byte("fiscal")
	keyLastID     = []byte("last_id")
)

// ErrNotFound is returned when a record with the given id does not exist.
var ErrNotFound = errors.New("journal: record not found")

// ErrLocked is returned by Open when another process (another kioskd) has
// the journal open: its file lock was not granted in time.
var ErrLocked = errors.New("journal: in use by another process")

// Phase is where a sale or a refund stands. It names the call that comes
// next (or is in flight), so a crash between the write and the answer tells
// recovery exactly which call to repeat. Stored as text so a journal stays
// readable with bbolt tooling.
type Phase string

// Sale phases, in the order a sale normally goes through them.
const (
	PhaseCommitting  Phase = "committing"  // commit may have been sent; retry it with the same id
	PhaseCommitted   Phase = "committed"   // purchase id known, no amount released yet
	PhaseReleasing   Phase = "releasing"   // release may have been sent
	PhaseReleased    Phase = "released"    // release answered: poll the status
	PhasePaid        Phase = "paid"        // service said success, goods not handed over yet
	PhaseHandedOver  Phase = "handed_over" // goods handed over: kassa/status success may have been sent
	PhaseCancelling  Phase = "cancelling"  // kassa/status cancel may have been sent
	PhaseDone        Phase = "done"        // nothing left to do
	PhaseRequesting  Phase = "requesting"  // refund: refund request may have been sent
	PhaseRequested   Phase = "requested"   // refund: refund id known, poll its status
	PhaseConfirming  Phase = "confirming"  // refund: refund kassa/status success may have been sent
	PhaseRefundAbort Phase = "aborting"    // refund: refund kassa/status cancel may have been sent
)

// Sale is one purchase as the journal keeps it.
type Sale struct {
	ID         string    `json:"id"`          // kassa_purchase_id
	Code       []byte    `json:"code"`        // raw QR payload: needed to repeat the commit and for v2 fiscal
	PurchaseID string    `json:"purchase_id"` // the service's id, once committed
	Amount     int64     `json:"amount"`      // kopecks, once known
	Phase      Phase     `json:"phase"`
	Outcome    string    `json:"outcome,omitempty"` // when done: success, cancelled, failed, expired, rejected
	SvcCode    int       `json:"svc_code,omitempty"`
	SvcMessage string    `json:"svc_message,omitempty"`
	Created    time.Time `json:"created"`
	Updated    time.Time `json:"updated"`
}

// Refund is one refund as the journal keeps it.
type Refund struct {
	ID         string    `json:"id"`          // kassa_refund_id
	PurchaseID string    `json:"purchase_id"` // the service's purchase id
	Amount     int64     `json:"amount"`
	RefundID   string    `json:"refund_id"` // the service's id, once requested
	Phase      Phase     `json:"phase"`
	Outcome    string    `json:"outcome,omitempty"` // when done: success, failed, cancelled, rejected
	SvcCode    int       `json:"svc_code,omitempty"`
	SvcMessage string    `json:"svc_message,omitempty"`
	Created    time.Time `json:"created"`
	Updated    time.Time `json:"updated"`
	RequestID  string    `json:"request_id,omitempty"` // the host's idempotency key, if it sent one
}

// Fiscal is one queued fiscal record: v1 (purchase id, KKT number, fiscal
// sign) or v2 (QR and full receipt).
type Fiscal struct {
	Seq          uint64          `json:"seq"`
	Version      int             `json:"version"` // 1 or 2
	SaleID       string          `json:"sale_id,omitempty"`
	PurchaseID   string          `json:"purchase_id,omitempty"`
	KKTRegNumber string          `json:"kkt_reg_number,omitempty"`
	FiscalSign   string          `json:"fiscal_sign,omitempty"`
	Code         []byte          `json:"code,omitempty"`    // raw QR payload (v2)
	Receipt      json.RawMessage `json:"receipt,omitempty"` // v2 receipt, as the host sent it
	Delivered    bool            `json:"delivered"`
	Rejected     string          `json:"rejected,omitempty"` // the service refused it for good: why
	Attempts     int             `json:"attempts"`
	Created      time.Time       `json:"created"`
	Updated      time.Time       `json:"updated"`
}

// Pending reports whether the record still has to be sent.
func (f Fiscal) Pending() bool { return !f.Delivered && f.Rejected == "" }

// Journal is an open journal file. Its methods are safe for concurrent use;
// each write is one fsynced bbolt transaction.
type Journal struct {
	db *bolt.DB
}

// Open opens (creating if needed) the journal at path. The file mode is
// 0600: it holds QR payloads.
func Open(path string) (*Journal, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s", ErrLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("journal: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketSales, bucketRefunds, bucketFiscal} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("journal: init %s: %w", path, err)
	}
	return &Journal{db: db}, nil
}

// Close closes the file.
func (j *Journal) Close() error { return j.db.Close() }

// Size is the size of the journal file in bytes (for metrics).
func (j *Journal) Size() int64 {
	var n int64
	_ = j.db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	if n == 0 {
		if fi, err := os.Stat(j.db.Path()); err == nil {
			n = fi.Size()
		}
	}
	return n
}

// nextIDLocked issues the next kassa id inside tx: max(now in ms, last+1),
// so ids stay increasing when the clock steps back or two come in one ms.
func nextIDLocked(tx *bolt.Tx, now time.Time) (string, error) {
	meta := tx.Bucket(bucketMeta)
	var last uint64
	if v := meta.Get(keyLastID); len(v) == 8 {
		last = binary.BigEndian.Uint64(v)
	}
	id := uint64(max(now.UnixMilli(), 0))
	if id <= last {
		id = last + 1
	}
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], id)
	if err := meta.Put(keyLastID, buf[:]); err != nil {
		return "", err
	}
	return strconv.FormatUint(id, 10), nil
}

// idKey turns a decimal id into a key that sorts in numeric order.
func idKey(id string) ([]byte, error) {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("journal: bad id %q: %w", id, err)
	}
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], n)
	return buf[:], nil
}

func put(tx *bolt.Tx, bucket []byte, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put(key, b)
}

// NewSale issues a kassa_purchase_id and stores a sale in PhaseCommitting
// with the scanned payload, durably, before the commit call is made.
func (j *Journal) NewSale(code []byte, now time.Time) (Sale, error) {
	var s Sale
	err := j.db.Update(func(tx *bolt.Tx) error {
		id, err := nextIDLocked(tx, now)
		if err != nil {
			return err
		}
		s = Sale{ID: id, Code: append([]byte(nil), code...), Phase: PhaseCommitting, Created: now, Updated: now}
		key, err := idKey(id)
		if err != nil {
			return err
		}
		return put(tx, bucketSales, key, s)
	})
	if err != nil {
		return Sale{}, fmt.Errorf("journal: new sale: %w", err)
	}
	return s, nil
}

// PutSale stores s (which must come from NewSale), durably.
func (j *Journal) PutSale(s Sale) error {
	key, err := idKey(s.ID)
	if err != nil {
		return err
	}
	err = j.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketSales).Get(key) == nil {
			return fmt.Errorf("sale %s: %w", s.ID, ErrNotFound)
		}
		return put(tx, bucketSales, key, s)
	})
	if err != nil {
		return fmt.Errorf("journal: put sale %s: %w", s.ID, err)
	}
	return nil
}

// Sale returns the sale with kassa_purchase_id id.
func (j *Journal) Sale(id string) (Sale, error) {
	key, err := idKey(id)
	if err != nil {
		return Sale{}, err
	}
	var s Sale
	err = j.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketSales).Get(key)
		if v == nil {
			return fmt.Errorf("sale %s: %w", id, ErrNotFound)
		}
		return json.Unmarshal(v, &s)
	})
	if err != nil {
		return Sale{}, fmt.Errorf("journal: %w", err)
	}
	return s, nil
}

// Sales returns every sale in id order; when open is true only those not
// done.
func (j *Journal) Sales(open bool) ([]Sale, error) {
	var out []Sale
	err := j.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSales).ForEach(func(_, v []byte) error {
			var s Sale
			if err := json.Unmarshal(v, &s); err != nil {
				return err
			}
			if !open || s.Phase != PhaseDone {
				out = append(out, s)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("journal: sales: %w", err)
	}
	return out, nil
}

// SaleByPurchase returns the sale the service knows as purchaseID.
func (j *Journal) SaleByPurchase(purchaseID string) (Sale, error) {
	var found *Sale
	err := j.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketSales).Cursor()
		for k, v := c.Last(); k != nil && found == nil; k, v = c.Prev() {
			var s Sale
			if err := json.Unmarshal(v, &s); err != nil {
				return err
			}
			if s.PurchaseID == purchaseID {
				found = &s
			}
		}
		return nil
	})
	if err != nil {
		return Sale{}, fmt.Errorf("journal: %w", err)
	}
	if found == nil {
		return Sale{}, fmt.Errorf("journal: sale of purchase %s: %w", purchaseID, ErrNotFound)
	}
	return *found, nil
}

// ErrRequestReused is returned when a host's refund request id comes again
// with a different purchase or amount.
var ErrRequestReused = errors.New("journal: refund request id reused with different parameters")

// NewRefund issues a kassa_refund_id and stores a refund in
// PhaseRequesting, durably, before the refund call is made.
func (j *Journal) NewRefund(purchaseID string, amount int64, now time.Time) (Refund, error) {
	r, _, err := j.NewRefundOnce(purchaseID, amount, "", now)
	return r, err
}

// NewRefundOnce is NewRefund with the host's idempotency key requestID:
// when a refund with that key is already stored (a host repeating a
// request whose answer it lost) it is returned with existed true and
// nothing is stored. The look-up and the insert are one transaction, so
// concurrent repeats make one refund. An empty requestID never matches.
func (j *Journal) NewRefundOnce(purchaseID string, amount int64, requestID string, now time.Time) (r Refund, existed bool, err error) {
	err = j.db.Update(func(tx *bolt.Tx) error {
		if requestID != "" {
			err := tx.Bucket(bucketRefunds).ForEach(func(_, v []byte) error {
				var old Refund
				if err := json.Unmarshal(v, &old); err != nil {
					return err
				}
				if old.RequestID == requestID && !existed {
					r, existed = old, true
				}
				return nil
			})
			if err != nil {
				return err
			}
			if existed {
				if r.PurchaseID != purchaseID || r.Amount != amount {
					return fmt.Errorf("%w: %q is refund %s", ErrRequestReused, requestID, r.ID)
				}
				return nil
			}
		}
		id, err := nextIDLocked(tx, now)
		if err != nil {
			return err
		}
		r = Refund{ID: id, PurchaseID: purchaseID, Amount: amount, Phase: PhaseRequesting, Created: now, Updated: now, RequestID: requestID}
		key, err := idKey(id)
		if err != nil {
			return err
		}
		return put(tx, bucketRefunds, key, r)
	})
	if err != nil {
		return Refund{}, false, fmt.Errorf("journal: new refund: %w", err)
	}
	return r, existed, nil
}

// PutRefund stores r (which must come from NewRefund), durably.
func (j *Journal) PutRefund(r Refund) error {
	key, err := idKey(r.ID)
	if err != nil {
		return err
	}
	err = j.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRefunds).Get(key) == nil {
			return fmt.Errorf("refund %s: %w", r.ID, ErrNotFound)
		}
		return put(tx, bucketRefunds, key, r)
	})
	if err != nil {
		return fmt.Errorf("journal: put refund %s: %w", r.ID, err)
	}
	return nil
}

// Refund returns the refund with kassa_refund_id id.
func (j *Journal) Refund(id string) (Refund, error) {
	key, err := idKey(id)
	if err != nil {
		return Refund{}, fmt.Errorf("refund %s: %w", id, ErrNotFound)
	}
	var r Refund
	err = j.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRefunds).Get(key)
		if v == nil {
			return fmt.Errorf("refund %s: %w", id, ErrNotFound)
		}
		return json.Unmarshal(v, &r)
	})
	if err != nil {
		return Refund{}, fmt.Errorf("journal: %w", err)
	}
	return r, nil
}

// Refunds returns every refund in id order; when open is true only those
// not done.
func (j *Journal) Refunds(open bool) ([]Refund, error) {
	var out []Refund
	err := j.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRefunds).ForEach(func(_, v []byte) error {
			var r Refund
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			if !open || r.Phase != PhaseDone {
				out = append(out, r)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("journal: refunds: %w", err)
	}
	return out, nil
}

// EnqueueFiscal stores f as a pending fiscal record and returns it with
// its sequence number. A record equal to one already queued (a host
// repeating a request whose answer it lost) is not stored twice: the
// existing one is returned.
func (j *Journal) EnqueueFiscal(f Fiscal, now time.Time) (Fiscal, error) {
	err := j.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFiscal)
		var dup *Fiscal
		err := b.ForEach(func(_, v []byte) error {
			var old Fiscal
			if err := json.Unmarshal(v, &old); err != nil {
				return err
			}
			if old.Version == f.Version && old.SaleID == f.SaleID && old.PurchaseID == f.PurchaseID &&
				old.KKTRegNumber == f.KKTRegNumber && old.FiscalSign == f.FiscalSign &&
				bytes.Equal(old.Code, f.Code) && bytes.Equal(old.Receipt, f.Receipt) {
				dup = &old
			}
			return nil
		})
		if err != nil {
			return err
		}
		if dup != nil {
			f = *dup
			return nil
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		f.Seq, f.Created, f.Updated = seq, now, now
		f.Delivered, f.Rejected, f.Attempts = false, "", 0
		var key [8]byte
		binary.BigEndian.PutUint64(key[:], seq)
		return put(tx, bucketFiscal, key[:], f)
	})
	if err != nil {
		return Fiscal{}, fmt.Errorf("journal: enqueue fiscal: %w", err)
	}
	return f, nil
}

// PutFiscal stores f (which must come from EnqueueFiscal), durably.
func (j *Journal) PutFiscal(f Fiscal) error {
	var key [8]byte
	binary.BigEndian.PutUint64(key[:], f.Seq)
	err := j.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketFiscal).Get(key[:]) == nil {
			return fmt.Errorf("fiscal %d: %w", f.Seq, ErrNotFound)
		}
		return put(tx, bucketFiscal, key[:], f)
	})
	if err != nil {
		return fmt.Errorf("journal: put fiscal %d: %w", f.Seq, err)
	}
	return nil
}

// Fiscals returns the fiscal records in queue order; when pending is true
// only those still to be sent.
func (j *Journal) Fiscals(pending bool) ([]Fiscal, error) {
	var out []Fiscal
	err := j.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFiscal).ForEach(func(_, v []byte) error {
			var f Fiscal
			if err := json.Unmarshal(v, &f); err != nil {
				return err
			}
			if !pending || f.Pending() {
				out = append(out, f)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("journal: fiscal queue: %w", err)
	}
	return out, nil
}

// Compact deletes finished sales and refunds last updated before cutoff,
// and fiscal records delivered or rejected before it. Open records are
// never deleted, however old. It returns how many records went.
func (j *Journal) Compact(cutoff time.Time) (int, error) {
	n := 0
	err := j.db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketSales, bucketRefunds, bucketFiscal} {
			var dead [][]byte
			err := tx.Bucket(name).ForEach(func(k, v []byte) error {
				var r struct {
					Phase     Phase     `json:"phase"`
					Delivered bool      `json:"delivered"`
					Rejected  string    `json:"rejected"`
					Version   int       `json:"version"`
					Updated   time.Time `json:"updated"`
				}
				if err := json.Unmarshal(v, &r); err != nil {
					return err
				}
				finished := r.Phase == PhaseDone
				if r.Version != 0 { // a fiscal record
					finished = r.Delivered || r.Rejected != ""
				}
				if finished && r.Updated.Before(cutoff) {
					dead = append(dead, append([]byte(nil), k...))
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, k := range dead {
				if err := tx.Bucket(name).Delete(k); err != nil {
					return err
				}
			}
			n += len(dead)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("journal: compact: %w", err)
	}
	return n, nil
}
