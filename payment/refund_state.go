package payment

import (
	"github.com/kioskd/kioskd/payment/journal"
	"github.com/kioskd/kioskd/payment/smartpay"
)

// refundFactKind is what happened to a refund.
type refundFactKind int

const (
	rUnknown   refundFactKind = iota // no answer, or one that says nothing: repeat or ask again
	rRequested                       // the refund request was answered with a refund id
	rRefused                         // the service refused the call for good
	rStatus                          // a refund status answer (see status)
	rOverdue                         // not final within Timeouts.Payment
	rAcked                           // the refund's kassa/status was accepted
)

// refundFact is the input of decideRefund.
type refundFact struct {
	kind   refundFactKind
	status smartpay.RefundState // rStatus
}

// decideRefund is the refund machine: the next phase of a refund in ph
// after f, and the outcome to record (empty: unchanged). Like decide it
// is pure, so every transition is tested without a service.
func decideRefund(ph journal.RefundPhase, f refundFact) (journal.RefundPhase, journal.RefundOutcome) {
	switch ph {
	case journal.RefundRequesting:
		switch f.kind {
		case rRequested:
			return journal.RefundRequested, ""
		case rRefused:
			return journal.RefundDone, journal.RefundRejected
		}
	case journal.RefundRequested:
		switch f.kind {
		case rStatus:
			switch f.status {
			case smartpay.RefundSuccess:
				return journal.RefundConfirming, journal.RefundSucceeded
			case smartpay.RefundFailed:
				return journal.RefundAborting, journal.RefundFailed
			case smartpay.RefundCancelled:
				return journal.RefundAborting, journal.RefundCancelled
			}
		case rOverdue:
			// Not final in time, and asked at least once: give up on it,
			// as with a payment.
			return journal.RefundAborting, journal.RefundTimedOut
		}
	case journal.RefundConfirming, journal.RefundAborting:
		switch f.kind {
		case rAcked, rRefused:
			// Accepted, or refused because the refund already ended:
			// either way nothing is left to tell the service.
			return journal.RefundDone, ""
		}
	}
	return ph, ""
}
