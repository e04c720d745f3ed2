package payment_test

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

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
}

func (s *refundStub) Refund(context.Context, smartpay.RefundRequest) (smartpay.RefundResponse, error) {
	s.j.Close() // the disk is gone between the request and its record
	return smartpay.RefundResponse{RefundID: "ref-1"}, nil
}

func (s *refundStub) RefundStatus(context.Context, string) (smartpay.RefundStatusResponse, error) {
	s.statuses.Add(1)
	return smartpay.RefundStatusResponse{RefundID: "ref-1", Status: smartpay.RefundSuccess}, nil
}

func (s *refundStub) RefundKassaStatus(context.Context, string, smartpay.KassaStatus) error {
	s.kassa.Add(1)
	return nil
}

// A refund whose record cannot be written stops there: the host gets the
// error and no further call is made without its record.
func TestRefundJournalFailureStops(t *testing.T) {
	log := zap.NewNop()
	j, err := journal.Open(filepath.Join(t.TempDir(), "j.db"))
	if err != nil {
		t.Fatal(err)
	}
	svc := &refundStub{j: j}
	f, err := payment.New(payment.Config{}, svc, j, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); f.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()
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
