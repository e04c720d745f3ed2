package payment

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/journal"
	"github.com/kioskd/kioskd/payment/smartpay"
)

// RefundInfo is a refund as the host sees it.
type RefundInfo struct {
	ID         string        `json:"id"` // kassa_refund_id
	PurchaseID string        `json:"purchase_id"`
	RefundID   string        `json:"refund_id,omitempty"` // the service's id
	Amount     int64         `json:"amount"`
	Phase      journal.Phase `json:"phase"`
	Outcome    string        `json:"outcome,omitempty"`
	Code       int           `json:"code,omitempty"`
	Message    string        `json:"message,omitempty"`
	Done       bool          `json:"done"`
}

func refundInfo(r journal.Refund) RefundInfo {
	return RefundInfo{ID: r.ID, PurchaseID: r.PurchaseID, RefundID: r.RefundID, Amount: r.Amount,
		Phase: r.Phase, Outcome: r.Outcome, Code: r.SvcCode, Message: r.SvcMessage, Done: r.Phase == journal.PhaseDone}
}

// Refund asks the service to refund amount kopecks of a paid purchase. The
// kassa_refund_id is journaled before the request. A refusal (refund over
// the amount, purchase not paid…) is returned as a *ServiceError; otherwise
// the refund goes on in the background (poll, confirm) and RefundInfo
// follows it.
func (f *Flow) Refund(purchaseID string, amount int64) (RefundInfo, error) {
	return f.RefundOnce(purchaseID, amount, "")
}

// RefundOnce is Refund with the host's idempotency key requestID (may be
// empty): a repeated request with the same key gets the refund the first
// one made (its refusal again, if it was refused) instead of a second
// refund; the same key with another purchase or amount is ErrInvalid.
func (f *Flow) RefundOnce(purchaseID string, amount int64, requestID string) (RefundInfo, error) {
	if purchaseID == "" || amount <= 0 {
		return RefundInfo{}, fmt.Errorf("%w: purchase_id and a positive amount are required", ErrInvalid)
	}
	f.mu.Lock()
	ctx, wg, ready := f.ctx, f.wg, f.ready
	f.mu.Unlock()
	if ctx == nil || !ready {
		// Until Run has read the open refunds and started their runners,
		// a new record could be picked up by recovery too and get two
		// runners: the host tries again once the flow is ready.
		return RefundInfo{}, fmt.Errorf("%w: recovery not finished", ErrNotRunning)
	}
	r, existed, err := f.j.NewRefundOnce(purchaseID, amount, requestID, f.now())
	if errors.Is(err, journal.ErrRequestReused) {
		return RefundInfo{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err != nil {
		return RefundInfo{}, err
	}
	if existed {
		// The first request (or recovery) drives it; answer as it did.
		f.log.Info("refund repeated by the host", zap.String("kassa_refund_id", r.ID), zap.String("request_id", requestID))
		if r.Phase == journal.PhaseDone && r.Outcome == "rejected" {
			return refundInfo(r), &ServiceError{Code: r.SvcCode, Message: r.SvcMessage,
				Err: &smartpay.APIError{Method: smartpay.PathRefund, HTTPStatus: 409, Code: r.SvcCode, Message: r.SvcMessage}}
		}
		return refundInfo(r), nil
	}
	f.log.Info("refund requested", zap.String("kassa_refund_id", r.ID), zap.String("purchase_id", purchaseID), zap.Int64("amount", amount))
	r, err = f.requestRefund(ctx, r)
	if err != nil {
		var se *ServiceError
		if errors.As(err, &se) {
			return refundInfo(r), err
		}
		if errors.Is(err, errRefundJournal) {
			// Nothing more happens without its record; the next start
			// resumes the refund from its last journaled phase.
			return refundInfo(r), err
		}
		// Outcome unknown: the background run repeats the request with
		// the same kassa_refund_id.
	}
	if r.Phase != journal.PhaseDone {
		f.mu.Lock()
		if f.ctx != nil {
			wg.Add(1)
			go func() { defer wg.Done(); f.runRefund(ctx, r) }()
		}
		f.mu.Unlock()
	}
	return refundInfo(r), nil
}

// RefundInfo returns the refund with kassa_refund_id id.
func (f *Flow) RefundInfo(id string) (RefundInfo, error) {
	r, err := f.j.Refund(id)
	if err != nil {
		return RefundInfo{}, err
	}
	return refundInfo(r), nil
}

// errRefundJournal marks a refund record that could not be written.
var errRefundJournal = errors.New("payment: refund journal write failed")

// putRefund journals r and publishes it. When the journal cannot be written
// it leaves r's phase as it was and returns an error: the caller must stop
// rather than make the next call without its record (as enter does).
func (f *Flow) putRefund(r *journal.Refund, phase journal.Phase) error {
	if r.Phase == phase {
		return nil
	}
	rec := *r
	rec.Phase, rec.Updated = phase, f.now()
	if err := f.j.PutRefund(rec); err != nil {
		f.log.Error("journal write failed; stopping the refund", zap.String("kassa_refund_id", r.ID), zap.Error(err))
		f.notice(Event{Kind: KindFault, Message: "journal: " + err.Error()})
		return fmt.Errorf("%w: refund %s: %w", errRefundJournal, r.ID, err)
	}
	f.log.Info("refund "+string(r.Phase)+" -> "+string(phase), zap.String("kassa_refund_id", r.ID),
		zap.String("refund_id", r.RefundID), zap.String("outcome", r.Outcome))
	*r = rec
	info := refundInfo(*r)
	f.notice(Event{Kind: KindRefund, PurchaseID: r.PurchaseID, Amount: r.Amount, Code: r.SvcCode, Message: r.SvcMessage, Refund: &info})
	return nil
}

// requestRefund makes one refund request for r (in PhaseRequesting).
func (f *Flow) requestRefund(ctx context.Context, r journal.Refund) (journal.Refund, error) {
	cctx, cancel := f.callCtx(ctx)
	resp, err := f.svc.Refund(cctx, smartpay.RefundRequest{PurchaseID: r.PurchaseID, KassaRefundID: r.ID, Amount: r.Amount})
	cancel()
	if err != nil {
		var info stepInfo
		if classify(err, &info) == fRejected {
			r.Outcome, r.SvcCode, r.SvcMessage = "rejected", info.code, info.message
			if perr := f.putRefund(&r, journal.PhaseDone); perr != nil {
				return r, perr
			}
			return r, &ServiceError{Code: info.code, Message: info.message, Err: err}
		}
		return r, err
	}
	r.RefundID = resp.RefundID
	if err := f.putRefund(&r, journal.PhaseRequested); err != nil {
		return r, err
	}
	return r, nil
}

// runRefund takes r from its journaled phase to the end: request (same
// kassa_refund_id), poll, confirm; a refund that failed or is not final
// within Timeouts.Payment is cancelled. Unknown outcomes are retried until
// ctx ends.
func (f *Flow) runRefund(ctx context.Context, r journal.Refund) {
	tries, polls := 0, 0
	// The wait is timed from here on the monotonic clock, not from
	// r.Updated: after a power cut or a clock step the wall-clock age says
	// nothing about how long this refund has been watched.
	started := time.Now()
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	for r.Phase != journal.PhaseDone {
		var err error
		switch r.Phase {
		case journal.PhaseRequesting:
			r, err = f.requestRefund(ctx, r)
		case journal.PhaseRequested:
			if polls > 0 && time.Since(started) > f.cfg.Timeouts.Payment {
				// Not final in time, and asked at least once since the
				// start: give up on it, as with a payment.
				r.Outcome, r.SvcMessage = "timeout", "refund not final in time"
				if f.putRefund(&r, journal.PhaseRefundAbort) != nil {
					return
				}
				continue
			}
			if !wait(pollDelay(polls)) {
				return
			}
			polls++
			var resp smartpay.RefundStatusResponse
			cctx, cancel := f.callCtx(ctx)
			resp, err = f.svc.RefundStatus(cctx, r.RefundID)
			cancel()
			if err == nil {
				r.SvcCode, r.SvcMessage = resp.Code, resp.Message
				switch resp.Status {
				case smartpay.RefundSuccess:
					r.Outcome = string(resp.Status)
					err = f.putRefund(&r, journal.PhaseConfirming)
				case smartpay.RefundFailed, smartpay.RefundCancelled:
					r.Outcome = string(resp.Status)
					err = f.putRefund(&r, journal.PhaseRefundAbort)
				}
				if err != nil {
					return
				}
				continue
			}
			tries = 0 // the poll schedule is the pause
		case journal.PhaseConfirming, journal.PhaseRefundAbort:
			st := smartpay.KassaSuccess
			if r.Phase == journal.PhaseRefundAbort {
				st = smartpay.KassaCancel
			}
			cctx, cancel := f.callCtx(ctx)
			err = f.svc.RefundKassaStatus(cctx, r.RefundID, st)
			cancel()
			var info stepInfo
			if err == nil || classify(err, &info) == fRejected {
				// Accepted, or refused because the refund already ended:
				// either way nothing is left to tell the service.
				if f.putRefund(&r, journal.PhaseDone) != nil {
					return
				}
				continue
			}
		default:
			f.log.Error("refund in unknown phase", zap.String("kassa_refund_id", r.ID), zap.String("phase", string(r.Phase)))
			return
		}
		if err != nil {
			var se *ServiceError
			if errors.As(err, &se) || errors.Is(err, errRefundJournal) || ctx.Err() != nil {
				return
			}
			f.log.Warn("refund call failed; retrying", zap.String("kassa_refund_id", r.ID), zap.Error(err))
			tries++
			if r.Phase != journal.PhaseRequested && !wait(backoff(tries)) {
				return
			}
		}
	}
}
