package payment_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/journal"
	"github.com/kioskd/kioskd/payment/smartpay"
)

// recoveryStub holds the recovered sale's cancel until release is closed;
// refunds succeed at once.
type recoveryStub struct {
	payment.Service
	release chan struct{}
}

func (s *recoveryStub) KassaStatus(ctx context.Context, _ string, _ smartpay.KassaStatus) error {
	select {
	case <-s.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *recoveryStub) Refund(_ context.Context, r smartpay.RefundRequest) (smartpay.RefundResponse, error) {
	return smartpay.RefundResponse{RefundID: "ref-" + r.KassaRefundID}, nil
}

func (s *recoveryStub) RefundStatus(_ context.Context, id string) (smartpay.RefundStatusResponse, error) {
	return smartpay.RefundStatusResponse{RefundID: id, Status: smartpay.RefundSuccess}, nil
}

func (s *recoveryStub) RefundKassaStatus(context.Context, string, smartpay.KassaStatus) error {
	return nil
}

// A refund asked before recovery has finished is refused with
// ErrNotRunning: recovery reads the open refunds, and a record made
// meanwhile would get a second runner.
func TestRefundRefusedUntilRecoveryDone(t *testing.T) {
	j, err := journal.Open(filepath.Join(t.TempDir(), "j.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	s, err := j.NewSale([]byte("not a real QR"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.Phase, s.PurchaseID = journal.PhaseCancelling, "pur-open"
	if err := j.PutSale(s); err != nil {
		t.Fatal(err)
	}
	svc := &recoveryStub{release: make(chan struct{})}
	f, _, stop := runFlow(t, payment.Config{Timeouts: payment.Timeouts{Call: 5 * time.Second}}, svc, j)
	defer stop() // before the deferred j.Close
	for f.Snapshot().State != payment.Cancelling {
		time.Sleep(time.Millisecond)
	}
	if _, err := f.Refund("pur-1", 100); !errors.Is(err, payment.ErrNotRunning) {
		t.Fatalf("refund during recovery: %v, want ErrNotRunning", err)
	}
	close(svc.release)
	deadline := time.Now().Add(5 * time.Second)
	for !f.Snapshot().Ready {
		if time.Now().After(deadline) {
			t.Fatal("recovery never finished")
		}
		time.Sleep(time.Millisecond)
	}
	info, err := f.Refund("pur-1", 100)
	if err != nil {
		t.Fatal(err)
	}
	for !info.Done {
		if time.Now().After(deadline) {
			t.Fatalf("refund not done: %+v", info)
		}
		time.Sleep(5 * time.Millisecond)
		if info, err = f.RefundInfo(info.ID); err != nil {
			t.Fatal(err)
		}
	}
}
