package journal

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Buckets. Records are JSON under an 8-byte big-endian key (the numeric id,
// or the fiscal sequence), so a bucket iterates in id order. The by_*
// buckets are indexes: a value is the key of the record it points to.
var (
	bucketMeta      = []byte("meta")
	bucketSales     = []byte("sales")
	bucketRefunds   = []byte("refunds")
	bucketFiscal    = []byte("fiscal")
	bucketByPurch   = []byte("by_purchase") // purchase_id → sale key
	bucketByRequest = []byte("by_request")  // host request id → refund key
	bucketByFiscal  = []byte("by_fiscal")   // fiscal record content hash → fiscal key
)

var (
	// ErrNotFound is returned when a record with the given id does not exist.
	ErrNotFound = errors.New("journal: record not found")
	// ErrLocked is returned by Open when another process holds the file.
	ErrLocked = errors.New("journal: the file is held by another process")
	// ErrRequestReused is returned when a host's refund request id comes
	// again with a different purchase or amount.
	ErrRequestReused = errors.New("journal: refund request id reused with different parameters")
)

// SalePhase is where a sale stands. It names the call that comes next (or
// is in flight), so a crash between the write and the answer tells recovery
// exactly which call to repeat. Stored as text so a journal stays readable
// with bbolt tooling.
type SalePhase string

// Sale phases, in the order a sale normally goes through them.
const (
	SaleCommitting SalePhase = "committing"  // commit may have been sent; retry it with the same id
	SaleCommitted  SalePhase = "committed"   // purchase id known, no amount released yet
	SaleReleasing  SalePhase = "releasing"   // release may have been sent
	SaleReleased   SalePhase = "released"    // release answered: poll the status
	SalePaid       SalePhase = "paid"        // service said success, goods not handed over yet
	SaleDispensing SalePhase = "dispensing"  // the goods are being handed over (vend approved): a crash confirms
	SaleHandedOver SalePhase = "handed_over" // goods handed over: kassa/status success may have been sent
	SaleCancelling SalePhase = "cancelling"  // kassa/status cancel may have been sent
	SaleDone       SalePhase = "done"        // nothing left to do
)

// RefundPhase is where a refund stands; like SalePhase it names the call
// that may be in flight.
type RefundPhase string

// Refund phases.
const (
	RefundRequesting RefundPhase = "requesting" // the refund request may have been sent
	RefundRequested  RefundPhase = "requested"  // refund id known: poll its status
	RefundConfirming RefundPhase = "confirming" // refund kassa/status success may have been sent
	RefundAborting   RefundPhase = "aborting"   // refund kassa/status cancel may have been sent
	RefundDone       RefundPhase = "done"       // nothing left to do
)

// RefundOutcome is how a refund ended (or is ending, in RefundConfirming
// and RefundAborting).
type RefundOutcome string

// Refund outcomes.
const (
	RefundRejected  RefundOutcome = "rejected"  // the service refused the request
	RefundSucceeded RefundOutcome = "success"   // the service refunded it
	RefundFailed    RefundOutcome = "failed"    // the service could not refund it
	RefundCancelled RefundOutcome = "cancelled" // the service cancelled it
	RefundTimedOut  RefundOutcome = "timeout"   // not final in time: cancelled by the kassa
)

// Sale is one purchase as the journal keeps it.
type Sale struct {
	ID         string    `json:"id"`             // kassa_purchase_id
	Code       []byte    `json:"code"`           // raw QR payload: needed to repeat the commit and for v2 fiscal
	PurchaseID string    `json:"purchase_id"`    // the service's id, once committed
	Amount     int64     `json:"amount"`         // kopecks, once known
	Item       string    `json:"item,omitempty"` // what is sold, when the host or machine named it (for the receipt)
	Phase      SalePhase `json:"phase"`
	Outcome    string    `json:"outcome,omitempty"` // when done: the sale's final state (completed, declined, cancelled)
	SvcCode    int       `json:"svc_code,omitempty"`
	SvcMessage string    `json:"svc_message,omitempty"`
	Created    time.Time `json:"created"`
	Updated    time.Time `json:"updated"`
}

// Refund is one refund as the journal keeps it.
type Refund struct {
	ID         string        `json:"id"`          // kassa_refund_id
	PurchaseID string        `json:"purchase_id"` // the service's purchase id
	Amount     int64         `json:"amount"`
	RefundID   string        `json:"refund_id"` // the service's id, once requested
	Phase      RefundPhase   `json:"phase"`
	Outcome    RefundOutcome `json:"outcome,omitempty"`
	SvcCode    int           `json:"svc_code,omitempty"`
	SvcMessage string        `json:"svc_message,omitempty"`
	Created    time.Time     `json:"created"`
	Updated    time.Time     `json:"updated"`
	RequestID  string        `json:"request_id,omitempty"` // the host's idempotency key, if it sent one
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
	// LostAnswers counts the sends that got no answer (the service may
	// have stored the record); at the forwarder's bound the record is
	// Unconfirmed: assumed stored, not sent again.
	LostAnswers int       `json:"lost_answers,omitempty"`
	Unconfirmed bool      `json:"unconfirmed,omitempty"`
	Attempts    int       `json:"attempts"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
}

// Pending reports whether the record still has to be sent.
func (f Fiscal) Pending() bool { return !f.Delivered && f.Rejected == "" && !f.Unconfirmed }

// contentKey identifies a fiscal record by what it says, so a host that
// repeats a request whose answer it lost does not queue it twice.
func (f Fiscal) contentKey() []byte {
	h := sha256.New()
	for _, p := range [][]byte{{byte(f.Version)}, []byte(f.SaleID), []byte(f.PurchaseID),
		[]byte(f.KKTRegNumber), []byte(f.FiscalSign), f.Code, f.Receipt} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	return h.Sum(nil)
}

// Journal is an open journal file. Its methods are safe for concurrent use;
// each write is one fsynced bbolt transaction.
type Journal struct {
	db      *bolt.DB
	ids     ids
	onWrite atomic.Pointer[func(error)]
}

// OnWrite sets a function called after every write with its outcome (nil
// when it is on disk), on the writer's goroutine: the flow learns from it
// that the disk is full or failing, and that it is back.
func (j *Journal) OnWrite(f func(error)) { j.onWrite.Store(&f) }

// update is the one way a write reaches the file.
func (j *Journal) update(fn func(*bolt.Tx) error) error {
	err := j.db.Update(fn)
	if f := j.onWrite.Load(); f != nil {
		(*f)(err)
	}
	return err
}

// Close closes the file.
func (j *Journal) Close() error { return j.db.Close() }

// Path is the journal file.
func (j *Journal) Path() string { return j.db.Path() }

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

// The generic record store: every record kind is JSON under its key.

func decode[T any](v []byte) (T, error) {
	var r T
	err := json.Unmarshal(v, &r)
	return r, err
}

func get[T any](tx *bolt.Tx, bucket, key []byte, what string) (T, error) {
	v := tx.Bucket(bucket).Get(key)
	if v == nil {
		var zero T
		return zero, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return decode[T](v)
}

func put(tx *bolt.Tx, bucket, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put(key, b)
}

// replace stores v under an existing key.
func replace(tx *bolt.Tx, bucket, key []byte, v any, what string) error {
	if tx.Bucket(bucket).Get(key) == nil {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return put(tx, bucket, key, v)
}

// list returns the records of bucket that keep accepts, in key order; what
// names them in an error.
func list[T any](db *bolt.DB, bucket []byte, what string, keep func(T) bool) ([]T, error) {
	var out []T
	err := db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(_, v []byte) error {
			r, err := decode[T](v)
			if err != nil {
				return err
			}
			if keep(r) {
				out = append(out, r)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("journal: %s: %w", what, err)
	}
	return out, nil
}

// view returns what read finds in a read-only transaction.
func view[T any](db *bolt.DB, read func(*bolt.Tx) (T, error)) (T, error) {
	var v T
	err := db.View(func(tx *bolt.Tx) (err error) {
		v, err = read(tx)
		return err
	})
	if err != nil {
		var zero T
		return zero, fmt.Errorf("journal: %w", err)
	}
	return v, nil
}

func seqKey(n uint64) []byte {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], n)
	return buf[:]
}

// idKey turns a decimal id into a key that sorts in numeric order.
func idKey(id string) ([]byte, error) {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("journal: bad id %q: %w", id, ErrNotFound)
	}
	return seqKey(n), nil
}

// NewSale issues a kassa_purchase_id and stores a sale in SaleCommitting
// with the scanned payload, durably.
func (j *Journal) NewSale(code []byte, now time.Time) (Sale, error) {
	id, err := j.IssueID(now)
	if err != nil {
		return Sale{}, err
	}
	s := FirstSaleRecord(id, code, now)
	return s, j.CreateSale(s)
}

// FirstSaleRecord is the record of a sale whose commit is about to be
// sent: id from IssueID, the scanned payload, SaleCommitting.
func FirstSaleRecord(id string, code []byte, now time.Time) Sale {
	return Sale{ID: id, Code: append([]byte(nil), code...), Phase: SaleCommitting, Created: now, Updated: now}
}

// CreateSale stores the first record of sale s.ID, durably. The flow makes
// this write alongside the commit, which moves no money: IssueID explains
// why the id stays unique even if the power goes before it is on disk.
func (j *Journal) CreateSale(s Sale) error {
	key, err := idKey(s.ID)
	if err != nil {
		return err
	}
	err = j.update(func(tx *bolt.Tx) error {
		if err := noteIssued(tx, key); err != nil {
			return err
		}
		return put(tx, bucketSales, key, s)
	})
	if err != nil {
		return fmt.Errorf("journal: new sale %s: %w", s.ID, err)
	}
	return nil
}

// PutSale stores s (which must come from NewSale), durably, and indexes it
// by its purchase id. Receipts, when given, are stored in the same
// transaction (once: see Receipt).
func (j *Journal) PutSale(s Sale, receipts ...Receipt) error {
	key, err := idKey(s.ID)
	if err != nil {
		return err
	}
	err = j.update(func(tx *bolt.Tx) error {
		if err := replace(tx, bucketSales, key, s, "sale "+s.ID); err != nil {
			return err
		}
		if err := addReceipts(tx, s.Updated, receipts); err != nil {
			return err
		}
		if s.PurchaseID == "" {
			return nil
		}
		return tx.Bucket(bucketByPurch).Put([]byte(s.PurchaseID), key)
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
	return view(j.db, func(tx *bolt.Tx) (Sale, error) { return get[Sale](tx, bucketSales, key, "sale "+id) })
}

// SaleByPurchase returns the sale the service knows as purchaseID.
func (j *Journal) SaleByPurchase(purchaseID string) (Sale, error) {
	what := "sale of purchase " + purchaseID
	return view(j.db, func(tx *bolt.Tx) (Sale, error) {
		key := tx.Bucket(bucketByPurch).Get([]byte(purchaseID))
		if key == nil {
			return Sale{}, fmt.Errorf("%s: %w", what, ErrNotFound)
		}
		return get[Sale](tx, bucketSales, key, what)
	})
}

// Sales returns every sale in id order; when open is true only those not
// done.
func (j *Journal) Sales(open bool) ([]Sale, error) {
	return list(j.db, bucketSales, "sales", func(s Sale) bool { return !open || s.Phase != SaleDone })
}

// NewRefund issues a kassa_refund_id and stores a refund in
// RefundRequesting, durably, before the refund call is made. requestID is
// the host's idempotency key (may be empty, which never matches): when a
// refund with that key is already stored (a host repeating a request whose
// answer it lost) it is returned with existed true and nothing is stored.
// The look-up and the insert are one transaction, so concurrent repeats
// make one refund.
func (j *Journal) NewRefund(purchaseID string, amount int64, requestID string, now time.Time) (r Refund, existed bool, err error) {
	id, err := j.IssueID(now) // unused when the request id is known: a gap is harmless
	if err != nil {
		return Refund{}, false, fmt.Errorf("journal: new refund: %w", err)
	}
	key, err := idKey(id)
	if err != nil {
		return Refund{}, false, err
	}
	err = j.update(func(tx *bolt.Tx) error {
		if requestID != "" {
			if key := tx.Bucket(bucketByRequest).Get([]byte(requestID)); key != nil {
				old, err := get[Refund](tx, bucketRefunds, key, "refund of request "+requestID)
				if err != nil {
					return err
				}
				if old.PurchaseID != purchaseID || old.Amount != amount {
					return fmt.Errorf("%w: %q is refund %s", ErrRequestReused, requestID, old.ID)
				}
				r, existed = old, true
				return nil
			}
		}
		if err := noteIssued(tx, key); err != nil {
			return err
		}
		r = Refund{ID: id, PurchaseID: purchaseID, Amount: amount, Phase: RefundRequesting, Created: now, Updated: now, RequestID: requestID}
		if requestID != "" {
			if err := tx.Bucket(bucketByRequest).Put([]byte(requestID), key); err != nil {
				return err
			}
		}
		return put(tx, bucketRefunds, key, r)
	})
	if err != nil {
		return Refund{}, false, fmt.Errorf("journal: new refund: %w", err)
	}
	return r, existed, nil
}

// PutRefund stores r (which must come from NewRefund), durably, with its
// receipts when given (as PutSale).
func (j *Journal) PutRefund(r Refund, receipts ...Receipt) error {
	key, err := idKey(r.ID)
	if err != nil {
		return err
	}
	err = j.update(func(tx *bolt.Tx) error {
		if err := replace(tx, bucketRefunds, key, r, "refund "+r.ID); err != nil {
			return err
		}
		return addReceipts(tx, r.Updated, receipts)
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
		return Refund{}, err
	}
	return view(j.db, func(tx *bolt.Tx) (Refund, error) { return get[Refund](tx, bucketRefunds, key, "refund "+id) })
}

// Refunds returns every refund in id order; when open is true only those
// not done.
func (j *Journal) Refunds(open bool) ([]Refund, error) {
	return list(j.db, bucketRefunds, "refunds", func(r Refund) bool { return !open || r.Phase != RefundDone })
}

// EnqueueFiscal stores f as a pending fiscal record and returns it with
// its sequence number. A record equal to one already queued (a host
// repeating a request whose answer it lost) is not stored twice: the
// existing one is returned.
func (j *Journal) EnqueueFiscal(f Fiscal, now time.Time) (Fiscal, error) {
	err := j.update(func(tx *bolt.Tx) (err error) {
		f, err = enqueueFiscal(tx, f, now)
		return err
	})
	if err != nil {
		return Fiscal{}, fmt.Errorf("journal: enqueue fiscal: %w", err)
	}
	return f, nil
}

func enqueueFiscal(tx *bolt.Tx, f Fiscal, now time.Time) (Fiscal, error) {
	ck := f.contentKey()
	if key := tx.Bucket(bucketByFiscal).Get(ck); key != nil {
		return get[Fiscal](tx, bucketFiscal, key, "fiscal record")
	}
	seq, err := tx.Bucket(bucketFiscal).NextSequence()
	if err != nil {
		return Fiscal{}, err
	}
	f.Seq, f.Created, f.Updated = seq, now, now
	f.Delivered, f.Rejected, f.Attempts = false, "", 0
	if err := tx.Bucket(bucketByFiscal).Put(ck, seqKey(seq)); err != nil {
		return Fiscal{}, err
	}
	return f, put(tx, bucketFiscal, seqKey(seq), f)
}

// PutFiscal stores f (which must come from EnqueueFiscal), durably.
func (j *Journal) PutFiscal(f Fiscal) error {
	err := j.update(func(tx *bolt.Tx) error {
		return replace(tx, bucketFiscal, seqKey(f.Seq), f, fmt.Sprintf("fiscal %d", f.Seq))
	})
	if err != nil {
		return fmt.Errorf("journal: put fiscal %d: %w", f.Seq, err)
	}
	return nil
}

// Fiscals returns the fiscal records in queue order; when pending is true
// only those still to be sent.
func (j *Journal) Fiscals(pending bool) ([]Fiscal, error) {
	return list(j.db, bucketFiscal, "fiscal queue", func(f Fiscal) bool { return !pending || f.Pending() })
}

// Compact deletes finished sales and refunds last updated before cutoff,
// and fiscal records delivered or rejected before it, with their index
// entries. Open records are never deleted, however old. It returns how
// many records went.
func (j *Journal) Compact(cutoff time.Time) (int, error) {
	n := 0
	err := j.update(func(tx *bolt.Tx) error {
		steps := []func() (int, error){
			func() (int, error) {
				return compact(tx, bucketSales, bucketByPurch, func(s Sale) ([]byte, bool) {
					return []byte(s.PurchaseID), s.Phase == SaleDone && s.Updated.Before(cutoff)
				})
			},
			func() (int, error) {
				return compact(tx, bucketRefunds, bucketByRequest, func(r Refund) ([]byte, bool) {
					return []byte(r.RequestID), r.Phase == RefundDone && r.Updated.Before(cutoff)
				})
			},
			func() (int, error) {
				return compact(tx, bucketFiscal, bucketByFiscal, func(f Fiscal) ([]byte, bool) {
					return f.contentKey(), !f.Pending() && f.Updated.Before(cutoff)
				})
			},
			func() (int, error) {
				return compact(tx, bucketReceipts, bucketByOrigin, func(r Receipt) ([]byte, bool) {
					return r.origin(), !r.Pending() && r.Updated.Before(cutoff)
				})
			},
		}
		for _, step := range steps {
			k, err := step()
			if err != nil {
				return err
			}
			n += k
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("journal: compact: %w", err)
	}
	return n, nil
}

// compact deletes the records of bucket that dead says are finished, and
// their entries in index.
func compact[T any](tx *bolt.Tx, bucket, index []byte, dead func(T) (indexKey []byte, ok bool)) (int, error) {
	type gone struct{ key, ik []byte }
	var del []gone
	err := tx.Bucket(bucket).ForEach(func(k, v []byte) error {
		r, err := decode[T](v)
		if err != nil {
			return err
		}
		if ik, ok := dead(r); ok {
			del = append(del, gone{append([]byte(nil), k...), ik})
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, g := range del {
		if err := tx.Bucket(bucket).Delete(g.key); err != nil {
			return 0, err
		}
		if len(g.ik) == 0 {
			continue
		}
		// Only the index entry that points at this record: a purchase id
		// could in principle be indexed to a newer sale.
		ib := tx.Bucket(index)
		if v := ib.Get(g.ik); v != nil && string(v) == string(g.key) {
			if err := ib.Delete(g.ik); err != nil {
				return 0, err
			}
		}
	}
	return len(del), nil
}
