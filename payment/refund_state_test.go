package payment

import (
	"testing"

	"github.com/kioskd/kioskd/payment/journal"
	sp "github.com/kioskd/kioskd/payment/smartpay"
)

func TestDecideRefund(t *testing.T) {
	type want struct {
		phase   journal.RefundPhase
		outcome journal.RefundOutcome
	}
	cases := []struct {
		from journal.RefundPhase
		f    refundFact
		want want
	}{
		{journal.RefundRequesting, refundFact{kind: rRequested}, want{journal.RefundRequested, ""}},
		{journal.RefundRequesting, refundFact{kind: rRefused}, want{journal.RefundDone, journal.RefundRejected}},
		{journal.RefundRequesting, refundFact{kind: rUnknown}, want{journal.RefundRequesting, ""}}, // repeat, same id
		{journal.RefundRequested, refundFact{kind: rStatus, status: sp.RefundPending}, want{journal.RefundRequested, ""}},
		{journal.RefundRequested, refundFact{kind: rStatus, status: sp.RefundSuccess}, want{journal.RefundConfirming, journal.RefundSucceeded}},
		{journal.RefundRequested, refundFact{kind: rStatus, status: sp.RefundFailed}, want{journal.RefundAborting, journal.RefundFailed}},
		{journal.RefundRequested, refundFact{kind: rStatus, status: sp.RefundCancelled}, want{journal.RefundAborting, journal.RefundCancelled}},
		{journal.RefundRequested, refundFact{kind: rUnknown}, want{journal.RefundRequested, ""}},
		{journal.RefundRequested, refundFact{kind: rRefused}, want{journal.RefundRequested, ""}}, // a refused status says nothing
		{journal.RefundRequested, refundFact{kind: rOverdue}, want{journal.RefundAborting, journal.RefundTimedOut}},
		{journal.RefundConfirming, refundFact{kind: rAcked}, want{journal.RefundDone, ""}},
		{journal.RefundConfirming, refundFact{kind: rRefused}, want{journal.RefundDone, ""}}, // it had ended already
		{journal.RefundConfirming, refundFact{kind: rUnknown}, want{journal.RefundConfirming, ""}},
		{journal.RefundAborting, refundFact{kind: rAcked}, want{journal.RefundDone, ""}},
		{journal.RefundAborting, refundFact{kind: rUnknown}, want{journal.RefundAborting, ""}},
		{journal.RefundDone, refundFact{kind: rAcked}, want{journal.RefundDone, ""}},
	}
	for _, c := range cases {
		ph, out := decideRefund(c.from, c.f)
		if (want{ph, out}) != c.want {
			t.Errorf("%s + %+v = %s/%q, want %s/%q", c.from, c.f, ph, out, c.want.phase, c.want.outcome)
		}
	}
}
