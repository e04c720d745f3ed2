package payment_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

// The host repeats a request whose answer it lost, or sends it twice at
// once: the same amount succeeds for as long as the sale runs, another is
// refused.
func TestRepeatedAmountAfterRelease(t *testing.T) {
	t.Parallel()
	se := startSim(t, sim.Config{SuccessDelay: time.Nanosecond})
	h := run(t, payment.Config{}, se.Client, nil)
	h.ready()
	ctx := context.Background()
	h.sell(se.Payload(t, "again"), 14900, "")
	h.state(payment.Paid)
	if err := h.flow.SetAmount(ctx, 14900, ""); err != nil {
		t.Fatalf("the same amount again after the release: %v", err)
	}
	if err := h.flow.SetAmount(ctx, 100, ""); !errors.Is(err, payment.ErrWrongState) {
		t.Fatalf("another amount after the release: %v, want ErrWrongState", err)
	}
}

// Two copies of one keyed refund sent at once get one answer: the copy
// waits for the original's, here the service's refusal.
func TestRefundCopyGetsTheOriginalsAnswer(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1) // the original's refund request reached the service
	se := startSim(t, sim.Config{SuccessDelay: time.Nanosecond, Middleware: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == smartpay.PathRefund {
				select {
				case arrived <- struct{}{}:
				default:
				}
			}
			next.ServeHTTP(w, r)
		})
	}})
	h := run(t, payment.Config{FixedAmount: 1000}, se.Client, nil)
	h.ready()
	h.scan(se.Payload(t, "copy"))
	paid := h.state(payment.Completed)
	se.Fault(t, sim.Fault{Method: sim.MethodRefund, Kind: sim.FaultDelay, Delay: 100 * time.Millisecond})
	req := payment.RefundRequest{PurchaseID: paid.PurchaseID, Amount: 1001, RequestID: "k1"} // over the amount
	first := make(chan error, 1)
	go func() {
		_, err := h.flow.Refund(context.Background(), req)
		first <- err
	}()
	select {
	case <-arrived: // journaled, and waiting for the service's answer
	case <-time.After(guard):
		t.Fatal("the refund request never reached the service")
	}
	_, copyErr := h.flow.Refund(context.Background(), req)
	origErr := <-first
	var a, b *payment.ServiceError
	if !errors.As(origErr, &a) || !errors.As(copyErr, &b) || a.Code != b.Code {
		t.Fatalf("original %v, copy %v: want the same refusal", origErr, copyErr)
	}
}

// Two hand-overs sent at once are both told "done" as soon as the first is
// journaled, even while the confirmation that follows is slow: the copy
// does not wait behind the call in flight.
func TestHandoverCopyAnsweredWhileConfirming(t *testing.T) {
	t.Parallel()
	se := startSim(t, sim.Config{SuccessDelay: time.Nanosecond})
	h := run(t, payment.Config{Timeouts: payment.Timeouts{Call: 200 * time.Millisecond}}, se.Client, nil)
	h.ready()
	h.sell(se.Payload(t, "twice"), 900, "")
	h.state(payment.Paid)
	se.Fault(t, sim.Fault{Method: sim.MethodKassaStatus, Kind: sim.FaultDelay, Delay: 300 * time.Millisecond})
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- h.flow.Handover(context.Background(), true) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("a hand-over sent twice at once: %v", err)
		}
	}
	h.state(payment.Completed)
}
