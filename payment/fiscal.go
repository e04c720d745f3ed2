package payment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/journal"
	"github.com/kioskd/kioskd/payment/smartpay"
)

// enqueueFiscal journals rec and wakes the forwarder.
func (f *Flow) enqueueFiscal(rec journal.Fiscal) error {
	f.fiscalMu.Lock()
	defer f.fiscalMu.Unlock()
	if _, err := f.j.EnqueueFiscal(rec, f.now()); err != nil {
		return err
	}
	// Recount rather than add one: a repeated record is not queued again.
	if _, err := f.pendingFiscalLocked(); err != nil {
		return err
	}
	f.kickFiscal()
	return nil
}

// pendingFiscal reads the queue and sets the pending count from it; the
// lock keeps an enqueue from slipping between the two.
func (f *Flow) pendingFiscal() ([]journal.Fiscal, error) {
	f.fiscalMu.Lock()
	defer f.fiscalMu.Unlock()
	return f.pendingFiscalLocked()
}

func (f *Flow) pendingFiscalLocked() ([]journal.Fiscal, error) {
	pending, err := f.j.Fiscals(true)
	if err == nil {
		f.mu.Lock()
		f.fiscalPending = len(pending)
		f.mu.Unlock()
	}
	return pending, err
}

func (f *Flow) addFiscalPending(n int) {
	f.mu.Lock()
	f.fiscalPending = max(f.fiscalPending+n, 0)
	f.mu.Unlock()
}

func (f *Flow) kickFiscal() {
	select {
	case f.fiscalKick <- struct{}{}:
	default:
	}
}

// forwardFiscal sends queued fiscal records until the service accepts (or
// refuses) each, oldest first, backing off while the service is away. The
// queue lives in the journal, so a restart resumes it.
func (f *Flow) forwardFiscal(ctx context.Context) {
	tries := 0
	for {
		pending, err := f.pendingFiscal()
		if err != nil {
			f.log.Error("reading the fiscal queue failed", zap.Error(err))
		}
		failed := false
		for _, rec := range pending {
			if ctx.Err() != nil {
				return
			}
			if err := f.sendFiscal(ctx, rec); err == nil {
				f.addFiscalPending(-1)
				tries = 0 // the service answers again: the next failure starts a fresh backoff
			} else {
				f.log.Warn("fiscal record not delivered; will retry", zap.Uint64("seq", rec.Seq), zap.Error(err))
				failed = true
				break // keep the order; wait for the service
			}
		}
		var retry <-chan time.Time
		if failed || err != nil {
			tries++
			retry = time.After(min(backoff(tries)*4, 30*time.Second))
		} else {
			tries = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-f.fiscalKick:
		case <-retry:
		}
	}
}

// sendFiscal sends one record and journals the outcome. It returns an error
// only when the record must be tried again.
func (f *Flow) sendFiscal(ctx context.Context, rec journal.Fiscal) error {
	var err error
	cctx, cancel := f.callCtx(ctx)
	switch rec.Version {
	case 1:
		err = f.svc.FiscalV1(cctx, smartpay.FiscalV1Request{PurchaseID: rec.PurchaseID, KKTRegNumber: rec.KKTRegNumber, FiscalSign: rec.FiscalSign})
	case 2:
		var req smartpay.FiscalV2Request
		req, err = fiscalV2(rec)
		if err == nil {
			err = f.svc.FiscalV2(cctx, req)
		}
	default:
		err = fmt.Errorf("%w: fiscal version %d", ErrInvalid, rec.Version)
	}
	cancel()
	rec.Attempts++
	rec.Updated = f.now()
	var info stepInfo
	switch {
	case err == nil:
		rec.Delivered = true
	case errors.Is(err, ErrInvalid) || classify(err, &info) == fRejected:
		rec.Rejected = err.Error()
	default:
		if perr := f.j.PutFiscal(rec); perr != nil {
			f.log.Error("journal write failed", zap.Error(perr))
		}
		return err
	}
	if perr := f.j.PutFiscal(rec); perr != nil {
		return perr
	}
	msg := "fiscal record delivered"
	if rec.Rejected != "" {
		msg = "fiscal record refused: " + info.message
		f.log.Error("fiscal record refused by the service", zap.Uint64("seq", rec.Seq), zap.String("purchase_id", rec.PurchaseID), zap.Error(err))
	} else {
		f.log.Info("fiscal record delivered", zap.Uint64("seq", rec.Seq), zap.Int("version", rec.Version), zap.String("purchase_id", rec.PurchaseID))
	}
	f.notice(Event{Kind: KindFiscal, SaleID: rec.SaleID, PurchaseID: rec.PurchaseID, Code: info.code, Message: msg})
	return nil
}

func fiscalV2(rec journal.Fiscal) (smartpay.FiscalV2Request, error) {
	qr, err := smartpay.ParseQR(rec.Code)
	if err != nil {
		return smartpay.FiscalV2Request{}, fmt.Errorf("%w: stored QR: %v", ErrInvalid, err)
	}
	var r smartpay.Receipt
	if err := json.Unmarshal(rec.Receipt, &r); err != nil {
		return smartpay.FiscalV2Request{}, fmt.Errorf("%w: stored receipt: %v", ErrInvalid, err)
	}
	return smartpay.FiscalV2Request{QR: qr, PurchaseID: rec.PurchaseID, Receipt: r}, nil
}
