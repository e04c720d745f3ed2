package payment

import (
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/journal"
)

type nilService struct{ Service }

// A release sent again while paying (the status said "committed") keeps
// the payment deadline: without it the polling never times out.
func TestReReleaseKeepsPaymentDeadline(t *testing.T) {
	j, err := journal.Open(filepath.Join(t.TempDir(), "j.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	f, err := New(Config{}, nilService{}, j, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	for _, from := range []State{Paying, Checking} {
		rec, err := j.NewSale([]byte("qr"), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		rec.Phase = journal.SaleReleased
		if err := j.PutSale(rec); err != nil {
			t.Fatal(err)
		}
		released := time.Now().Add(-time.Second)
		dl := released.Add(f.cfg.Timeouts.Payment)
		s := &sale{id: rec.ID, rec: rec, state: from, released: released, deadline: dl, inputs: make(chan input, 8)}
		if err := f.sales.enter(s, Releasing, stepInfo{}); err != nil {
			t.Fatal(err)
		}
		if !s.deadline.Equal(dl) {
			t.Errorf("%s -> releasing: payment deadline %v, want %v", from, s.deadline, dl)
		}
		if err := f.sales.enter(s, Paying, stepInfo{}); err != nil {
			t.Fatal(err)
		}
		if !s.deadline.Equal(dl) {
			t.Errorf("%s -> releasing -> paying: payment deadline %v, want %v", from, s.deadline, dl)
		}
	}
}
