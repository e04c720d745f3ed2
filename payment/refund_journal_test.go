package payment_test

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/journal"
	"github.com/kioskd/kioskd/payment/smartpay"
)

// refundStub is a service whose refund request loses the disk before it
// answers; any other call the test does not expect panics (nil interface).
type refundStub struct {
	payment.Service
	j        *journal.Journal
	statuses atomic.Int32
	kassa    atomic.Int32
	mu       sync.Mutex
	sent     []smartpay.KassaStatus // refund kassa/status calls, in order
}

func (s *refundStub) Refund(context.Context, smartpay.RefundRequest) (smartpay.RefundResponse, error) {
	s.j.Close() // the disk is gone between the request and its record
	return smartpay.RefundResponse{RefundID: "ref-1"}, nil
}

func (s *refundStub) RefundStatus(context.Context, string) (smartpay.RefundStatusResponse, error) {
	s.statuses.Add(1)
	return smartpay.RefundStatusResponse{RefundID: "ref-1", Status: smartpay.RefundSuccess}, nil
}

func (s *refundStub) RefundKassaStatus(_ context.Context, _ string, st smartpay.KassaStatus) error {
	s.mu.Lock()
	s.sent = append(s.sent, st)
	s.mu.Unlock()
	s.kassa.Add(1)
	return nil
}

// A refund whose record cannot be written stops there: the host gets the
// error and no further call is made without its record.
func TestRefundJournalFailureStops(t *testing.T) {
	j, err := journal.Open(filepath.Join(t.TempDir(), "j.db"))
	if err != nil {
		t.Fatal(err)
	}
	svc := &refundStub{j: j}
	f, _, stop := runFlow(t, payment.Config{}, svc, j)
	defer stop()
	for !f.Snapshot().Ready {
		time.Sleep(time.Millisecond)
	}
	if _, err := f.Refund("pur-1", 100); err == nil {
		t.Error("Refund succeeded although its record was not written")
	}
	time.Sleep(500 * time.Millisecond) // the first status poll would be due after 100ms
	if n, k := svc.statuses.Load(), svc.kassa.Load(); n != 0 || k != 0 {
		t.Fatalf("%d refund status and %d kassa status calls made without a journal record", n, k)
	}
}

// A refund found requested at start, whose record is older than the
// payment timeout (a long power cut, a clock step), is checked before it is
// given up: the service says success, so it is confirmed, not cancelled.
func TestRecoveredRefundIsCheckedBeforeCancel(t *testing.T) {
	j, err := journal.Open(filepath.Join(t.TempDir(), "j.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	old := time.Now().Add(-time.Hour)
	r, err := j.NewRefund("pur-1", 100, old)
	if err != nil {
		t.Fatal(err)
	}
	r.RefundID, r.Phase, r.Updated = "ref-1", journal.PhaseRequested, old
	if err := j.PutRefund(r); err != nil {
		t.Fatal(err)
	}
	svc := &refundStub{j: j}
	_, _, stop := runFlow(t, payment.Config{Timeouts: payment.Timeouts{Payment: 2 * time.Second}}, svc, j)
	defer stop() // before the deferred j.Close
	deadline := time.Now().Add(5 * time.Second)
	for svc.kassa.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the recovered refund was never confirmed or cancelled")
		}
		time.Sleep(5 * time.Millisecond)
	}
	svc.mu.Lock()
	sent := append([]smartpay.KassaStatus(nil), svc.sent...)
	svc.mu.Unlock()
	if svc.statuses.Load() == 0 || sent[0] != smartpay.KassaSuccess {
		t.Fatalf("refund kassa/status %v after %d status checks; want success after a check", sent, svc.statuses.Load())
	}
}
