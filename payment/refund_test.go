package payment_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/journal"
	"github.com/kioskd/kioskd/payment/smartpay"
)

// refundStub is a service whose refunds succeed at once; onRefund runs in
// the refund request before it answers. Any call the test does not expect
// panics (nil interface).
type refundStub struct {
	payment.Service
	onRefund func()
	hold     chan struct{} // when not nil, kassa/status of a sale waits for it to close
	statuses atomic.Int32
	mu       sync.Mutex
	sent     []smartpay.KassaStatus // refund kassa/status calls, in order
}

func (s *refundStub) Refund(_ context.Context, r smartpay.RefundRequest) (smartpay.RefundResponse, error) {
	if s.onRefund != nil {
		s.onRefund()
	}
	return smartpay.RefundResponse{RefundID: "ref-" + r.KassaRefundID}, nil
}

func (s *refundStub) RefundStatus(_ context.Context, id string) (smartpay.RefundStatusResponse, error) {
	s.statuses.Add(1)
	return smartpay.RefundStatusResponse{RefundID: id, Status: smartpay.RefundSuccess}, nil
}

func (s *refundStub) RefundKassaStatus(_ context.Context, _ string, st smartpay.KassaStatus) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, st)
	return nil
}

func (s *refundStub) KassaStatus(ctx context.Context, _ string, _ smartpay.KassaStatus) error {
	select {
	case <-s.hold:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// refundDone waits for the event that ends refund id.
func (h *harness) refundDone(id string) payment.RefundInfo {
	h.tb.Helper()
	e := h.next("refund "+id+" done", func(e payment.Event) bool {
		return e.Kind == payment.KindRefund && e.Refund.ID == id && e.Refund.Done
	})
	return *e.Refund
}

// A refund whose answer cannot be written goes no further: no status call
// is made without its record (the runner repeats the request, under the
// same id, once the journal can be written).
func TestRefundJournalFailureWaits(t *testing.T) {
	t.Parallel()
	svc := &refundStub{}
	h := run(t, payment.Config{}, svc, nil)
	svc.onRefund = func() { h.j.Close() } // the disk is gone between the request and its record
	h.ready()
	info, err := h.flow.Refund(context.Background(), payment.RefundRequest{PurchaseID: "pur-1", Amount: 100})
	if err != nil || info.Phase != journal.RefundRequesting {
		t.Fatalf("refund %+v, %v: want it accepted, still requesting", info, err)
	}
	if st := h.flow.Snapshot(); st.JournalProblem == "" {
		t.Fatalf("snapshot %+v", st)
	}
	if n := svc.statuses.Load(); n != 0 {
		t.Fatalf("%d refund status calls made without a journal record", n)
	}
	// A new refund cannot even be recorded: refused as such.
	if _, err := h.flow.Refund(context.Background(), payment.RefundRequest{PurchaseID: "pur-2", Amount: 100}); !errors.Is(err, payment.ErrJournal) {
		t.Fatalf("second refund: %v, want ErrJournal", err)
	}
}

// A refund found requested at start, whose record is older than the
// payment timeout (a long power cut, a clock step), is checked before it is
// given up: the service says success, so it is confirmed, not cancelled.
func TestRecoveredRefundIsCheckedBeforeCancel(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(t)
	svc := &refundStub{}
	j := openJournal(t)
	old := clock.Now().Add(-time.Hour)
	r, _, err := j.NewRefund("pur-1", 100, "", old)
	if err != nil {
		t.Fatal(err)
	}
	r.RefundID, r.Phase, r.Updated = "ref-1", journal.RefundRequested, old
	if err := j.PutRefund(r); err != nil {
		t.Fatal(err)
	}
	h := run(t, payment.Config{Clock: clock, Timeouts: payment.Timeouts{Payment: 2 * time.Second}}, svc, j)
	clock.advance(1, time.Hour) // the first poll is due whatever the age
	info := h.refundDone(r.ID)
	svc.mu.Lock()
	sent := append([]smartpay.KassaStatus(nil), svc.sent...)
	svc.mu.Unlock()
	if svc.statuses.Load() == 0 || len(sent) == 0 || sent[0] != smartpay.KassaSuccess || info.Outcome != journal.RefundSucceeded {
		t.Fatalf("refund kassa/status %v after %d status checks, outcome %q; want success after a check", sent, svc.statuses.Load(), info.Outcome)
	}
}

// A refund asked before recovery has finished is refused with
// ErrNotRunning: the sale being recovered may be its purchase, and the
// service's refusal would look final to the host.
func TestRefundRefusedUntilRecoveryDone(t *testing.T) {
	t.Parallel()
	j := openJournal(t)
	s, err := j.NewSale([]byte("not a real QR"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.Phase, s.PurchaseID = journal.SaleCancelling, "pur-open"
	if err := j.PutSale(s); err != nil {
		t.Fatal(err)
	}
	svc := &refundStub{hold: make(chan struct{})}
	h := run(t, payment.Config{}, svc, j)
	h.state(payment.Cancelling)
	ctx := context.Background()
	req := payment.RefundRequest{PurchaseID: "pur-1", Amount: 100}
	if _, err := h.flow.Refund(ctx, req); !errors.Is(err, payment.ErrNotRunning) {
		t.Fatalf("refund during recovery: %v, want ErrNotRunning", err)
	}
	close(svc.hold)
	h.ready()
	info, err := h.flow.Refund(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if done := h.refundDone(info.ID); done.Outcome != journal.RefundSucceeded {
		t.Fatalf("refund ended %+v", done)
	}
}
