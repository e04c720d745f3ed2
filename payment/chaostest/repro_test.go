package chaostest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

// Flow bugs the chaos test found, each reproduced on its own through the
// real kioskd; fixed, they stay as regression tests.

// The same amount sent again for the current sale (a host repeating a
// request whose answer it lost, or sending it twice at once) was refused
// with 409 once the sale had moved past WaitingAmount.
func TestReproRepeatedAmountAfterRelease(t *testing.T) {
	h := newHarness(t)
	qr, err := h.s.qr("repro-amount")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"data": qr})
	if a := h.k.do(request{method: "POST", path: "/v1/scan", body: string(body)}, nil); a.code != http.StatusAccepted {
		t.Fatalf("scan: %s", a)
	}
	h.mustWait(t, payment.WaitingAmount)
	amount := request{method: "POST", path: "/v1/sale", body: amountBody(14900)}
	if a := h.k.do(amount, nil); a.code != http.StatusOK {
		t.Fatalf("amount: %s", a)
	}
	h.mustWait(t, payment.Paying, payment.Checking, payment.Paid)
	if a := h.k.do(amount, nil); a.code != http.StatusOK {
		t.Fatalf("the same amount again (the host's retry): %s, want 200", a)
	}
}

// Two copies of one refund request (same idempotency key) sent at once
// got different answers when the service refused it: the original its 422,
// the copy 202 "requesting" from the journal record.
func TestReproConcurrentRefundCopy(t *testing.T) {
	h := newHarness(t)
	pid := h.paidSale(t, "repro-refund", 10000)
	// The service takes its time over the refund (within the call deadline),
	// so the copy arrives while the original is in flight.
	if err := h.s.inject(sim.Fault{Method: sim.MethodRefund, Kind: sim.FaultDelay, Delay: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	r := request{method: "POST", path: "/v1/refunds", body: fmt.Sprintf(`{"purchase_id": %q, "amount": 10001, "request_id": "k1"}`, pid)}
	first := make(chan answer, 1)
	go func() { first <- h.k.do(r, nil) }()
	time.Sleep(100 * time.Millisecond)
	copyAnswer := h.k.do(r, nil)
	original := <-first
	if original.code != http.StatusUnprocessableEntity {
		t.Fatalf("the original: %s, want 422 (over the amount)", original)
	}
	if copyAnswer.code != original.code {
		t.Fatalf("the copy sent at the same time: %s; the original: %s", copyAnswer, original)
	}
}

// paidSale runs a sale to completion through the API and returns its
// purchase id.
func (h *host) paidSale(t *testing.T, user string, amount int64) string {
	t.Helper()
	qr, err := h.s.qr(user)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"data": qr})
	steps := []struct {
		r    request
		want payment.State
	}{
		{request{method: "POST", path: "/v1/scan", body: string(body)}, payment.WaitingAmount},
		{request{method: "POST", path: "/v1/sale", body: amountBody(amount)}, payment.Paid},
		{request{method: "POST", path: "/v1/sale/handover", body: `{"ok": true}`}, payment.Completed},
	}
	var st payment.Status
	for _, s := range steps {
		if a := h.k.do(s.r, nil); a.code != http.StatusOK && a.code != http.StatusAccepted {
			t.Fatalf("%s %s: %s", s.r.method, s.r.path, a)
		}
		st = h.mustWait(t, s.want)
	}
	return st.PurchaseID
}
