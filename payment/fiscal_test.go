package payment_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

// fiscalFor completes a sale and queues its v1 fiscal record.
func fiscalFor(t *testing.T, se *simEnv, h *harness, user string) string {
	t.Helper()
	h.scan(se.Payload(t, user))
	done := h.state(payment.Completed)
	err := h.flow.Fiscal(context.Background(), payment.FiscalData{PurchaseID: done.PurchaseID, KKTRegNumber: "0000000012345678", FiscalSign: "3522207798"})
	if err != nil {
		t.Fatal(err)
	}
	return done.PurchaseID
}

// copies counts the v1 records the service stored for purchase pid.
func copies(se *simEnv, pid string) int {
	n := 0
	for _, f := range se.State().Fiscal {
		if f.Version == 1 && f.PurchaseID == pid {
			n++
		}
	}
	return n
}

// A fiscal record whose sends get no answer while the service stores each
// (answers slower than the call deadline) is sent at most
// MaxFiscalLostAnswers times, then left unconfirmed: the copies at the
// service are bounded, and counted.
func TestFiscalLostAnswersBounded(t *testing.T) {
	t.Parallel()
	stored := make(chan struct{}, 16) // the service handled a v1 record (late: after the agent gave up waiting)
	se := startSim(t, sim.Config{SuccessDelay: time.Nanosecond, Middleware: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r)
			if r.URL.Path == smartpay.PathFiscalV1 {
				stored <- struct{}{}
			}
		})
	}})
	clock := newFakeClock(t)
	h := run(t, payment.Config{FixedAmount: 100, Clock: clock, Timeouts: payment.Timeouts{Call: 100 * time.Millisecond}}, se.Client, nil)
	clock.autoAdvance(restingTimers, time.Second) // the waits between sends
	fiscal := countEvents(t, h.flow, payment.KindFiscal)
	h.ready()
	se.Fault(t, sim.Fault{Method: sim.MethodFiscalV1, Kind: sim.FaultDelay, Delay: 150 * time.Millisecond, Count: 100})
	pid := fiscalFor(t, se, h, "slow-fiscal")
	if !fiscal.atLeast(1) {
		t.Fatal("the record never ended")
	}
	st := h.flow.Snapshot()
	if st.FiscalPending != 0 || st.FiscalUnconfirmed != 1 || st.FiscalLostAnswers != payment.MaxFiscalLostAnswers {
		t.Fatalf("snapshot %+v", st)
	}
	se.ClearFaults()
	for range payment.MaxFiscalLostAnswers {
		select {
		case <-stored:
		case <-time.After(guard):
			t.Fatal("the delayed sends were never handled")
		}
	}
	if n := copies(se, pid); n != payment.MaxFiscalLostAnswers {
		t.Fatalf("%d copies at the service, want %d", n, payment.MaxFiscalLostAnswers)
	}
	if n := se.State().Requests[sim.MethodFiscalV1]; n != payment.MaxFiscalLostAnswers {
		t.Fatalf("%d sends, want %d", n, payment.MaxFiscalLostAnswers)
	}
}

// Sends that never reached the service (dropped before it handled them) are
// repeated until it accepts: the record is stored once.
func TestFiscalDroppedSendsRepeated(t *testing.T) {
	t.Parallel()
	se := startSim(t, sim.Config{SuccessDelay: time.Nanosecond})
	clock := newFakeClock(t)
	h := run(t, payment.Config{FixedAmount: 100, Clock: clock}, se.Client, nil)
	clock.autoAdvance(restingTimers, time.Second) // the waits between sends
	fiscal := countEvents(t, h.flow, payment.KindFiscal)
	h.ready()
	se.Fault(t, sim.Fault{Method: sim.MethodFiscalV1, Kind: sim.FaultDrop, Count: 2})
	pid := fiscalFor(t, se, h, "dropped")
	if !fiscal.atLeast(1) {
		t.Fatal("the record never ended")
	}
	if n := copies(se, pid); n != 1 {
		t.Fatalf("%d copies at the service", n)
	}
	if st := h.flow.Snapshot(); st.FiscalUnconfirmed != 0 {
		t.Fatalf("snapshot %+v", st)
	}
}
