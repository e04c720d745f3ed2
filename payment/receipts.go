package payment

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/fiscal"
	"github.com/kioskd/kioskd/payment/journal"
	"github.com/kioskd/kioskd/payment/smartpay"
)

// Receipts configures the fiscal receipts (54-ФЗ) the kassa issues itself
// through the operator's ККТ or cloud kassa. With no Provider the host
// sends the fiscal data (Host.Fiscal), as before.
type Receipts struct {
	Provider      fiscal.Provider
	Taxation      fiscal.TaxSystem     // tag 1055
	VAT           fiscal.VAT           // of every item
	Object        fiscal.PaymentObject // of every item [commodity]
	Item          string               // the item's name when the host or machine names none
	MachineNumber string               // tag 1036
	Place         string               // tag 1187
	Address       string               // tag 1009
	// ShiftMargin renews a shift this long before its 24 h end (ККТ that
	// need their shift kept); an hour when zero.
	ShiftMargin time.Duration
	// Wait bounds one attempt to issue a receipt, the ККТ's processing
	// included; a minute when zero.
	Wait time.Duration
}

// ReceiptInfo is an issued receipt as the customer display shows it.
type ReceiptInfo struct {
	ID         string `json:"id"`
	PurchaseID string `json:"purchase_id"`
	Return     bool   `json:"return"`
	Total      int64  `json:"total"`
	QR         string `json:"qr"` // t=…&s=…&fn=…&i=…&fp=…&n=1|2
	FDNumber   int64  `json:"fd_number"`
	FiscalSign string `json:"fiscal_sign"`
}

// receiptWriter issues the kassa's own receipts, oldest first, until the
// ККТ confirms each; then it queues the confirmation for the service (v1
// and v2 fiscal) in the same journal write. Goroutine "receipts" runs it;
// the sale and refund machines hand it receipts inside their own journal
// writes (receiptFor*), so a crash can neither lose one nor make two.
type receiptWriter struct {
	cfg   Receipts
	clock clockwork.Clock
	j     *journal.Journal
	log   *zap.Logger
	hub   *Hub
	fw    *forwarder
	kick  chan struct{} // cap 1

	mu      sync.Mutex
	pending int
	problem error // why the oldest pending receipt is not issued; nil when none fails
	shift   error // why the shift could not be kept; nil when fine
}

func (rw *receiptWriter) enabled() bool { return rw != nil && rw.cfg.Provider != nil }

func (rw *receiptWriter) wake() {
	select {
	case rw.kick <- struct{}{}:
	default:
	}
}

// forSale is the receipt to store with a sale's completion, or none.
func (rw *receiptWriter) forSale(s journal.Sale) []journal.Receipt {
	if !rw.enabled() || s.Outcome != Completed.String() {
		return nil
	}
	return []journal.Receipt{{ID: fiscal.NewID(), SaleID: s.ID, PurchaseID: s.PurchaseID, Item: s.Item, Amount: s.Amount}}
}

// forRefund is the return receipt to store with a refund's success, or none.
func (rw *receiptWriter) forRefund(r journal.Refund) []journal.Receipt {
	if !rw.enabled() || r.Outcome != journal.RefundSucceeded || r.Phase != journal.RefundDone {
		return nil
	}
	rc := journal.Receipt{ID: fiscal.NewID(), Return: true, RefundID: r.ID, PurchaseID: r.PurchaseID, Amount: r.Amount}
	if s, err := rw.j.SaleByPurchase(r.PurchaseID); err == nil {
		rc.SaleID, rc.Item = s.ID, s.Item
	}
	return []journal.Receipt{rc}
}

// snapshot is how many receipts wait and why the oldest is stuck.
func (rw *receiptWriter) snapshot() (pending int, problem error) {
	if !rw.enabled() {
		return 0, nil
	}
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.problem == nil {
		return rw.pending, rw.shift
	}
	return rw.pending, rw.problem
}

// run issues receipts until ctx ends, and keeps the ККТ's shift open.
func (rw *receiptWriter) run(ctx context.Context) error {
	if !rw.enabled() {
		return nil
	}
	shifts, _ := rw.cfg.Provider.(fiscal.Shifts)
	keep := rw.clock.NewTicker(10 * time.Minute)
	defer keep.Stop()
	if shifts != nil {
		rw.keepShift(ctx, shifts)
	}
	tries := 0
	for {
		var retry clockwork.Timer
		if rw.issueAll(ctx) {
			tries++
			retry = rw.clock.NewTimer(min(backoff(tries)*4, time.Minute))
		} else {
			tries = 0
		}
		var retried <-chan time.Time
		if retry != nil {
			retried = retry.Chan()
		}
		select {
		case <-ctx.Done():
		case <-rw.kick:
		case <-retried:
		case <-keep.Chan():
			if shifts != nil {
				rw.keepShift(ctx, shifts)
			}
		}
		if retry != nil {
			retry.Stop()
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// keepShift renews the shift before its 24 h end, so no receipt meets an
// expired one.
func (rw *receiptWriter) keepShift(ctx context.Context, s fiscal.Shifts) {
	margin := rw.cfg.ShiftMargin
	if margin <= 0 {
		margin = time.Hour
	}
	cctx, cancel := context.WithTimeout(ctx, rw.wait())
	defer cancel()
	sh, act, err := fiscal.KeepShift(cctx, s, rw.clock.Now(), margin)
	if ctx.Err() != nil {
		return // stopping: the next start keeps it
	}
	rw.mu.Lock()
	was := rw.shift
	rw.shift = nil
	if err != nil {
		rw.shift = fmt.Errorf("payment: keeping the fiscal shift: %w", err)
	}
	rw.mu.Unlock()
	switch {
	case err != nil && (was == nil || was.Error() != rw.shift.Error()):
		rw.log.Warn("fiscal shift not kept", zap.String("action", act.String()), zap.Error(err))
	case err == nil && act != fiscal.ShiftKeep:
		rw.log.Info("fiscal shift "+act.String(), zap.Int("shift", sh.Number), zap.Time("expires", sh.Expires))
	}
}

func (rw *receiptWriter) wait() time.Duration {
	if rw.cfg.Wait > 0 {
		return rw.cfg.Wait
	}
	return time.Minute
}

// issueAll issues the pending receipts in order; true when one failed (the
// rest wait: the ККТ is likely down for all).
func (rw *receiptWriter) issueAll(ctx context.Context) (failed bool) {
	pending, err := rw.j.Receipts(true)
	if err != nil {
		rw.log.Error("reading the receipt queue failed", zap.Error(err))
		return true
	}
	rw.mu.Lock()
	rw.pending = len(pending)
	rw.mu.Unlock()
	for _, r := range pending {
		if ctx.Err() != nil {
			return false
		}
		if err := rw.issue(ctx, r); err != nil {
			return true
		}
		rw.mu.Lock()
		rw.pending, rw.problem = max(rw.pending-1, 0), nil
		rw.mu.Unlock()
	}
	return false
}

// issue registers r at the ККТ under its fixed id and, once confirmed,
// journals the result with the fiscal records for the service.
func (rw *receiptWriter) issue(ctx context.Context, r journal.Receipt) error {
	op, operation := fiscal.Sell, smartpay.OperationIncome
	if r.Return {
		op, operation = fiscal.SellReturn, smartpay.OperationIncomeReturn
	}
	item := fiscal.Item{Name: r.Item, Price: r.Amount, Quantity: fiscal.One, Amount: r.Amount, VAT: rw.cfg.VAT, Object: rw.cfg.Object}
	if item.Name == "" {
		item.Name = rw.cfg.Item
	}
	fr := fiscal.Receipt{ID: r.ID, Items: []fiscal.Item{item}, Total: r.Amount, Taxation: rw.cfg.Taxation,
		MachineNumber: rw.cfg.MachineNumber, PaymentsPlace: rw.cfg.Place, PaymentsAddress: rw.cfg.Address, Electronic: true}
	cctx, cancel := context.WithTimeout(ctx, rw.wait())
	res, err := fiscal.Issue(cctx, rw.cfg.Provider, op, fr)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return rw.failed(r, err)
	}
	r.Result, _ = json.Marshal(res)
	r.Problem, r.Updated = "", rw.clock.Now()
	forward := []journal.Fiscal{{Version: 1, SaleID: r.SaleID, PurchaseID: r.PurchaseID,
		KKTRegNumber: res.RegistrationNumber, FiscalSign: res.FiscalSign}}
	if s, err := rw.j.SaleByPurchase(r.PurchaseID); err == nil && len(s.Code) > 0 {
		// v2 carries the scanned QR: possible while the journal keeps the sale.
		receipt, _ := json.Marshal(smartpay.Receipt{KKTRegNumber: res.RegistrationNumber, FNNumber: res.FNNumber,
			FDNumber: res.FDNumber, FiscalSign: res.FiscalSign, DateTime: res.DateTime, Operation: operation, Total: res.Total,
			Items: []smartpay.ReceiptItem{{Name: item.Name, Price: item.Price, Quantity: item.Quantity.Float64(), Amount: item.Amount, VAT: string(item.VAT)}}})
		forward = append(forward, journal.Fiscal{Version: 2, SaleID: s.ID, PurchaseID: r.PurchaseID, Code: s.Code, Receipt: receipt})
	}
	if err := rw.j.ReceiptIssued(r, forward, rw.clock.Now()); err != nil {
		// The ККТ has the document; a retry under the same id returns it.
		rw.log.Error("journal write failed after the receipt was issued; will ask the ККТ again", zap.String("receipt", r.ID), zap.Error(err))
		return err
	}
	rw.fw.wake()
	rw.log.Info("receipt issued", zap.String("receipt", r.ID), zap.String("purchase_id", r.PurchaseID), zap.Bool("return", r.Return),
		zap.Int64("fd_number", res.FDNumber), zap.String("kkt_reg_number", res.RegistrationNumber))
	info := ReceiptInfo{ID: r.ID, PurchaseID: r.PurchaseID, Return: r.Return, Total: res.Total, QR: res.QR(),
		FDNumber: res.FDNumber, FiscalSign: res.FiscalSign}
	rw.hub.Publish(Event{Kind: KindReceipt, SaleID: r.SaleID, PurchaseID: r.PurchaseID, Amount: res.Total, Receipt: &info})
	return nil
}

// failed notes an attempt that did not make a confirmed receipt: it stays
// queued (the same id next time), with the reason in the journal, the log
// (once per reason), the health and the metrics.
func (rw *receiptWriter) failed(r journal.Receipt, err error) error {
	kind := fiscal.KindOf(err)
	problem := fmt.Errorf("payment: receipt %s not issued (%s): %w", r.ID, kind, err)
	rw.mu.Lock()
	repeat := rw.problem != nil && rw.problem.Error() == problem.Error()
	rw.problem = problem
	rw.mu.Unlock()
	if !repeat {
		rw.log.Warn("receipt not issued; it stays queued", zap.String("receipt", r.ID), zap.String("kind", kind.String()), zap.Error(err))
	}
	r.Attempts++
	r.Problem, r.Updated = err.Error(), rw.clock.Now()
	if perr := rw.j.PutReceipt(r); perr != nil {
		rw.log.Error("journal write failed", zap.Error(perr))
	}
	return problem
}
