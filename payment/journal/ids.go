package journal

import (
	"path/filepath"

	"encoding/binary"
	"fmt"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	bolt "go.etcd.io/bbolt"
)

var (
	keyLastID   = []byte("last_id")  // the highest id in a durable record
	keyReserved = []byte("reserved") // no id at or below it is issued after a restart
)

// ReserveAhead is how far past the clock Reserve reserves ids.
const ReserveAhead = 10 * time.Minute

// ids issues the kassa ids (kassa_purchase_id, kassa_refund_id): the clock
// in milliseconds, strictly increasing across restarts and clock steps.
//
// A sale's record is written alongside its commit, so the power may go
// after the commit left with a new id and before that id is on disk. The
// id must never be issued again (the service would take the next sale for
// a repeat of that commit). So every id issued is at or below a durable
// reservation, or itself in a durable record; after a restart ids start
// above both. Reserve keeps the reservation ahead of the clock from the
// flow's housekeeping, off the scan-to-commit path; an id past it (the
// kiosk idle longer than ReserveAhead without housekeeping, or a clock
// jump) reserves synchronously first.
type ids struct {
	mu       sync.Mutex
	last     uint64 // the highest id issued (or possibly issued before a restart)
	reserved uint64 // durable
}

func readU64(b *bolt.Bucket, key []byte) uint64 {
	if v := b.Get(key); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// load reads the counters at open: any id up to the old reservation may
// have been issued, so the next one is above it.
func (x *ids) load(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	x.last = max(readU64(meta, keyLastID), readU64(meta, keyReserved))
	x.reserved = x.last
	return nil
}

// noteIssued records, inside a record's transaction, that the id keyed key
// is durable.
func noteIssued(tx *bolt.Tx, key []byte) error {
	meta := tx.Bucket(bucketMeta)
	if readU64(meta, keyLastID) >= binary.BigEndian.Uint64(key) {
		return nil
	}
	return meta.Put(keyLastID, key)
}

// IssueID returns a new kassa id: max(now in ms, last+1). It makes no
// write unless the reservation has lapsed.
func (j *Journal) IssueID(now time.Time) (string, error) {
	x := &j.ids
	x.mu.Lock()
	defer x.mu.Unlock()
	id := max(uint64(max(now.UnixMilli(), 0)), x.last+1)
	if id > x.reserved {
		if err := j.reserveLocked(id + uint64(ReserveAhead.Milliseconds())); err != nil {
			return "", err
		}
	}
	x.last = id
	return strconv.FormatUint(id, 10), nil
}

// Reserve moves the durable reservation ReserveAhead past now when less
// than half of it is left. The flow calls it at start and now and then.
func (j *Journal) Reserve(now time.Time) error {
	x := &j.ids
	x.mu.Lock()
	defer x.mu.Unlock()
	floor := max(uint64(max(now.UnixMilli(), 0)), x.last)
	ahead := uint64(ReserveAhead.Milliseconds())
	if x.reserved >= floor+ahead/2 {
		return nil
	}
	return j.reserveLocked(floor + ahead)
}

func (j *Journal) reserveLocked(upTo uint64) error {
	err := j.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyReserved, seqKey(upTo))
	})
	if err != nil {
		return fmt.Errorf("journal: reserve ids: %w", err)
	}
	j.ids.reserved = upTo
	return nil
}

var keyProbe = []byte("probe")

// ProbeFree is the free space Probe asks of the journal's file system: a
// disk that filled up is back when it has room for the journal to grow
// again, not when one small write happens to fit in the file's free pages.
const ProbeFree = 1 << 20

// Probe reports whether the journal can be written now: the file system
// has ProbeFree bytes free and a small record reaches the disk.
func (j *Journal) Probe(now time.Time) error {
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(j.db.Path()), &st); err == nil {
		if free := st.Bavail * uint64(st.Bsize); free < ProbeFree {
			return fmt.Errorf("journal: probe: %d KiB free on the journal's file system, want %d: %w", free>>10, ProbeFree>>10, unix.ENOSPC)
		}
	}
	err := j.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyProbe, seqKey(uint64(max(now.UnixMilli(), 0))))
	})
	if err != nil {
		return fmt.Errorf("journal: probe: %w", err)
	}
	return nil
}
