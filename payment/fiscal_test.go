package payment_test

import (
	"context"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
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
	se := startSim(t, sim.Config{SuccessDelay: time.Nanosecond})
	h := run(t, payment.Config{FixedAmount: 100, Timeouts: payment.Timeouts{Call: 300 * time.Millisecond}}, se.Client, nil)
	fiscal := countEvents(t, h.flow, payment.KindFiscal)
	h.ready()
	se.Fault(t, sim.Fault{Method: sim.MethodFiscalV1, Kind: sim.FaultDelay, Delay: time.Second, Count: 100})
	pid := fiscalFor(t, se, h, "slow-fiscal")
	if !fiscal.atLeast(1) {
		t.Fatal("the record never ended")
	}
	st := h.flow.Snapshot()
	if st.FiscalPending != 0 || st.FiscalUnconfirmed != 1 || st.FiscalLostAnswers != payment.MaxFiscalLostAnswers {
		t.Fatalf("snapshot %+v", st)
	}
	se.ClearFaults()
	deadline := time.After(guard) // the delayed calls are still being stored
	for copies(se, pid) < payment.MaxFiscalLostAnswers {
		select {
		case <-deadline:
			t.Fatalf("%d copies at the service", copies(se, pid))
		case <-h.events:
		}
	}
	if n := se.State().Requests[sim.MethodFiscalV1]; n != payment.MaxFiscalLostAnswers {
		t.Fatalf("%d sends, want %d", n, payment.MaxFiscalLostAnswers)
	}
}

// Sends that never reached the service (dropped before it handled them) are
// repeated until it accepts: the record is stored once.
func TestFiscalDroppedSendsRepeated(t *testing.T) {
	se := startSim(t, sim.Config{SuccessDelay: time.Nanosecond})
	h := run(t, payment.Config{FixedAmount: 100}, se.Client, nil)
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
