package journal

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func open(t *testing.T, path string) *Journal {
	t.Helper()
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestIDsIncreaseAcrossRestartsAndClockSteps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	now := time.UnixMilli(1_700_000_000_000)
	j := open(t, path)
	var last uint64
	check := func(id string) {
		t.Helper()
		n, err := strconv.ParseUint(id, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if n <= last {
			t.Fatalf("id %d not above %d", n, last)
		}
		last = n
	}
	s, err := j.NewSale([]byte("a"), now)
	if err != nil {
		t.Fatal(err)
	}
	check(s.ID)
	if s.ID != "1700000000000" {
		t.Fatalf("id = %s, want the clock in ms", s.ID)
	}
	// Same millisecond: next id still above.
	r, _, err := j.NewRefund("p1", 100, "", now)
	if err != nil {
		t.Fatal(err)
	}
	check(r.ID)
	j.Close()

	// Restart with the clock stepped back an hour.
	j = open(t, path)
	defer j.Close()
	for range 3 {
		s, err := j.NewSale([]byte("b"), now.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		check(s.ID)
	}
	// Clock forward again, past what the last run reserved: ids follow
	// the clock.
	s, err = j.NewSale([]byte("c"), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	check(s.ID)
	if want := strconv.FormatInt(now.Add(time.Hour).UnixMilli(), 10); s.ID != want {
		t.Fatalf("id = %s, want %s", s.ID, want)
	}
}

// An id issued for a commit whose record never reached the disk (the power
// went) is not issued again after the restart, even with the clock behind.
func TestIssuedIDNeverReissued(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	now := time.UnixMilli(1_700_000_000_000)
	j := open(t, path)
	if err := j.Reserve(now); err != nil {
		t.Fatal(err)
	}
	txid := func() (id int) {
		_ = j.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil })
		return id
	}
	before := txid()
	var lost string
	for i := range 50 { // within the reservation: no write at all
		id, err := j.IssueID(now.Add(time.Duration(i) * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		lost = id
	}
	if txid() != before {
		t.Fatal("issuing ids within the reservation wrote to the file")
	}
	j.Close() // the power goes: none of them has a record
	j = open(t, path)
	defer j.Close()
	s, err := j.NewSale([]byte("after the cut"), now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := strconv.ParseUint(lost, 10, 64)
	b, _ := strconv.ParseUint(s.ID, 10, 64)
	if b <= a {
		t.Fatalf("id %d issued again after %d", b, a)
	}
}

func TestRecordsSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	now := time.Now()
	j := open(t, path)
	s, err := j.NewSale([]byte(`{"id_loyalty":"x"}`), now)
	if err != nil {
		t.Fatal(err)
	}
	s.Phase, s.PurchaseID, s.Amount = SaleReleasing, "P-1", 12345
	if err := j.PutSale(s); err != nil {
		t.Fatal(err)
	}
	done, err := j.NewSale([]byte("y"), now)
	if err != nil {
		t.Fatal(err)
	}
	done.Phase = SaleDone
	if err := j.PutSale(done); err != nil {
		t.Fatal(err)
	}
	r, _, err := j.NewRefund("P-0", 500, "", now)
	if err != nil {
		t.Fatal(err)
	}
	f, err := j.EnqueueFiscal(Fiscal{Version: 2, Code: []byte("q"), Receipt: json.RawMessage(`{"total":1}`)}, now)
	if err != nil {
		t.Fatal(err)
	}
	again, err := j.EnqueueFiscal(Fiscal{Version: 2, Code: []byte("q"), Receipt: json.RawMessage(`{"total":1}`)}, now)
	if err != nil || again.Seq != f.Seq {
		t.Fatalf("the same fiscal record queued twice: %d and %d (%v)", f.Seq, again.Seq, err)
	}
	if err := j.PutSale(Sale{ID: "42"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("PutSale of unknown id: %v, want ErrNotFound", err)
	}
	j.Close()

	j = open(t, path)
	defer j.Close()
	open, err := j.Sales(true)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].ID != s.ID || open[0].Phase != SaleReleasing || open[0].Amount != 12345 || string(open[0].Code) != `{"id_loyalty":"x"}` {
		t.Fatalf("open sales after reopen = %+v", open)
	}
	all, _ := j.Sales(false)
	if len(all) != 2 {
		t.Fatalf("all sales = %d, want 2", len(all))
	}
	rs, _ := j.Refunds(true)
	if len(rs) != 1 || rs[0].ID != r.ID || rs[0].Phase != RefundRequesting {
		t.Fatalf("refunds = %+v", rs)
	}
	fs, _ := j.Fiscals(true)
	if len(fs) != 1 || fs[0].Seq != f.Seq || string(fs[0].Receipt) != `{"total":1}` {
		t.Fatalf("fiscal = %+v", fs)
	}
	if j.Size() <= 0 {
		t.Fatal("Size() = 0")
	}
}

func TestCompactKeepsOpenRecords(t *testing.T) {
	j := open(t, filepath.Join(t.TempDir(), "j.db"))
	defer j.Close()
	old := time.Now().Add(-48 * time.Hour)
	recent := time.Now()
	mk := func(phase SalePhase, at time.Time) {
		s, err := j.NewSale([]byte("x"), at)
		if err != nil {
			t.Fatal(err)
		}
		s.Phase, s.Updated = phase, at
		if err := j.PutSale(s); err != nil {
			t.Fatal(err)
		}
	}
	mk(SaleDone, old)     // goes
	mk(SaleReleased, old) // open: stays however old
	mk(SaleDone, recent)  // recent: stays
	f, _ := j.EnqueueFiscal(Fiscal{Version: 1, PurchaseID: "p"}, old)
	pending, _ := j.EnqueueFiscal(Fiscal{Version: 1, PurchaseID: "q"}, old)
	f.Delivered = true
	if err := j.PutFiscal(f); err != nil {
		t.Fatal(err)
	}
	n, err := j.Compact(time.Now().Add(-24 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("compacted %d, want 2", n)
	}
	all, _ := j.Sales(false)
	if len(all) != 2 {
		t.Fatalf("sales left = %d, want 2", len(all))
	}
	fs, _ := j.Fiscals(false)
	if len(fs) != 1 || fs[0].Seq != pending.Seq {
		t.Fatalf("fiscal left = %+v", fs)
	}
}
