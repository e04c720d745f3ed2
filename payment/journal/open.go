package journal

import (
	"errors"
	"fmt"
	"hash/crc32"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Open opens (creating if needed) the journal at path. The file mode is
// 0600: it holds QR payloads. A file another process holds open (another
// kioskd) fails with ErrLocked after a short wait.
func Open(path string) (*Journal, error) {
	db, err := openChecked(path)
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s", ErrLocked, path)
	}
	var damaged *DamagedError
	if errors.As(err, &damaged) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("journal: open %s: %w", path, err)
	}
	j := &Journal{db: db}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := initBuckets(tx); err != nil {
			return err
		}
		return j.ids.load(tx)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("journal: init %s: %w", path, err)
	}
	return j, nil
}

// ErrDamaged is wrapped by the error Open returns for a journal file that
// is truncated or corrupt.
var ErrDamaged = errors.New("journal: damaged")

// DamagedError is a journal file Open refuses because it is truncated or
// corrupt. A fresh journal in its place would forget the payments in
// flight it may hold, so kioskd does not start on it; the message says
// what to do.
type DamagedError struct {
	Path  string
	Cause error
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("journal: %s is damaged (%v): kioskd does not start on it, so that no payment in flight is forgotten. "+
		"Keep the file for support; check this kassa's recent sales and refunds with the service (GET /v1/state of a backup, "+
		"or the service's own records), then move it aside (mv %s %s.damaged) and start again with a fresh journal",
		e.Path, e.Cause, e.Path, e.Path)
}

// Unwrap lets errors.Is match ErrDamaged and the cause.
func (e *DamagedError) Unwrap() []error { return []error{ErrDamaged, e.Cause} }

// openChecked opens the bbolt file and checks it page by page. bbolt
// panics on some damage (a truncated file, a page that is not what its
// parent says); both the panics and the errors of its checks become a
// *DamagedError. A file of zero bytes is a journal whose creation never
// reached the disk: it holds nothing and starts fresh.
func openChecked(path string) (db *bolt.DB, err error) {
	// A page past the end of a truncated file faults in bbolt's mmap:
	// recoverable only with panic-on-fault, and only on this goroutine,
	// which is why every page is read here first.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				db.Close()
			}
			db, err = nil, &DamagedError{Path: path, Cause: fmt.Errorf("%v", r)}
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	switch {
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum), errors.Is(err, bolterrors.ErrVersionMismatch),
		err != nil && strings.Contains(err.Error(), "file size too small"):
		return nil, &DamagedError{Path: path, Cause: err}
	case err != nil:
		return nil, err
	}
	err = db.View(func(tx *bolt.Tx) error {
		if err := tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return readAll(b) }); err != nil {
			return err
		}
		var first error
		for cerr := range tx.Check() { // its own goroutine: the pages are known readable by now
			if first == nil {
				first = cerr
			}
		}
		return first
	})
	if err != nil {
		db.Close()
		return nil, &DamagedError{Path: path, Cause: err}
	}
	return db, nil
}

// readAll reads every key and value of b and its nested buckets (into a
// checksum nobody needs: reading is the point, and a hash is not elided).
func readAll(b *bolt.Bucket) error {
	h := crc32.NewIEEE()
	return b.ForEach(func(k, v []byte) error {
		if v == nil {
			if nested := b.Bucket(k); nested != nil {
				return readAll(nested)
			}
		}
		h.Write(k)
		h.Write(v)
		return nil
	})
}

// initBuckets creates the buckets, and the indexes from the records when
// a journal written before they existed is opened.
func initBuckets(tx *bolt.Tx) error {
	for _, b := range [][]byte{bucketMeta, bucketSales, bucketRefunds, bucketFiscal, bucketReceipts, bucketByOrigin} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	type index struct {
		name []byte
		of   []byte
		key  func(v []byte) ([]byte, error)
	}
	indexes := []index{
		{bucketByPurch, bucketSales, func(v []byte) ([]byte, error) {
			s, err := decode[Sale](v)
			return []byte(s.PurchaseID), err
		}},
		{bucketByRequest, bucketRefunds, func(v []byte) ([]byte, error) {
			r, err := decode[Refund](v)
			return []byte(r.RequestID), err
		}},
		{bucketByFiscal, bucketFiscal, func(v []byte) ([]byte, error) {
			f, err := decode[Fiscal](v)
			return f.contentKey(), err
		}},
	}
	for _, ix := range indexes {
		if tx.Bucket(ix.name) != nil {
			continue
		}
		b, err := tx.CreateBucket(ix.name)
		if err != nil {
			return err
		}
		err = tx.Bucket(ix.of).ForEach(func(k, v []byte) error {
			ik, err := ix.key(v)
			if err != nil || len(ik) == 0 {
				return err
			}
			return b.Put(ik, k)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
