package chaostest

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/kioskd/kioskd/payment"
)

// Flow bugs the chaos test found, each reproduced on its own through the
// real kioskd and skipped until the flow is fixed (the flow is not this
// package's to change).

// bugRepeatedAmount: the same amount sent again for the current sale (a
// host repeating a request whose answer it lost, or sending it twice at
// once) is refused with 409 as soon as the sale has moved past
// WaitingAmount, although payment.Flow.StartSale promises "the same amount
// again succeeds (a host's retry)": StartSale honours the repeat only while
// the sale is Committing or WaitingAmount. The chaos test counts these
// answers under this name instead of failing on them.
const bugRepeatedAmount = "bug: a repeated amount is refused once the sale is released"

func TestReproRepeatedAmountAfterRelease(t *testing.T) {
	t.Skip(bugRepeatedAmount)
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
