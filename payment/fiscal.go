package payment

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/journal"
	"github.com/kioskd/kioskd/payment/smartpay"
)

// FiscalData is the fiscal record of a paid sale as the host sends it.
type FiscalData struct {
	PurchaseID   string          // empty: the last sale that was paid
	KKTRegNumber string          // 16 digits
	FiscalSign   string          //
	Receipt      json.RawMessage // optional: sent with v2 fiscal instead of v1
}

// forwarder sends the queued fiscal records to the service, oldest first,
// until it accepts (or refuses) each, backing off while the service is
// away. The queue lives in the journal, so a restart resumes it. One
// goroutine (run) sends; enqueue may be called from any.
type forwarder struct {
	cfg Config
	svc Service
	j   *journal.Journal
	log *zap.Logger
	hub *Hub

	kick        chan struct{} // wakes run; cap 1
	mu          sync.Mutex    // orders queue reads with enqueues, for the pending count
	pending     int
	lost        uint64 // sends that got no answer, since start
	unconfirmed uint64 // records given up after MaxFiscalLostAnswers, since start
	problem     error  // why the oldest record is not delivered; nil while none fails
}

// MaxFiscalLostAnswers bounds the sends of a fiscal record that get no
// answer. The fiscal methods have no idempotency key, so every such send
// may store the record once more at the service: at most this many copies,
// and the record is then left unconfirmed (the service most likely has it).
// Sends that certainly did not arrive, or that the service answered with a
// failure, are repeated until it accepts.
const MaxFiscalLostAnswers = 3

func newForwarder(cfg Config, svc Service, j *journal.Journal, log *zap.Logger, hub *Hub) *forwarder {
	return &forwarder{cfg: cfg, svc: svc, j: j, log: log, hub: hub, kick: make(chan struct{}, 1)}
}

// enqueue journals rec and wakes the sender.
func (fw *forwarder) enqueue(rec journal.Fiscal) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if _, err := fw.j.EnqueueFiscal(rec, fw.cfg.Clock.Now()); err != nil {
		return err
	}
	// Recount rather than add one: a repeated record is not queued again.
	if _, err := fw.queueLocked(); err != nil {
		return err
	}
	fw.wake()
	return nil
}

// queue reads the pending records and sets the count from them.
func (fw *forwarder) queue() ([]journal.Fiscal, error) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return fw.queueLocked()
}

func (fw *forwarder) queueLocked() ([]journal.Fiscal, error) {
	pending, err := fw.j.Fiscals(true)
	if err == nil {
		fw.pending = len(pending)
	}
	return pending, err
}

// snapshot is how many records wait, and the lost answers and records
// given up since start.
func (fw *forwarder) snapshot() (pending int, lost, unconfirmed uint64) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return fw.pending, fw.lost, fw.unconfirmed
}

func (fw *forwarder) wake() {
	select {
	case fw.kick <- struct{}{}:
	default:
	}
}

// run sends until ctx ends.
func (fw *forwarder) run(ctx context.Context) error {
	tries := 0
	for {
		pending, err := fw.queue()
		if err != nil {
			fw.log.Error("reading the fiscal queue failed", zap.Error(err))
		}
		failed := err != nil
		for _, rec := range pending {
			if ctx.Err() != nil {
				return nil
			}
			if err := fw.send(ctx, rec); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				fw.failed(rec, err)
				failed = true
				break // keep the order; wait for the service
			}
			tries = 0 // the service answers again: the next failure starts a fresh back-off
			fw.setProblem(nil)
		}
		if !failed {
			select {
			case <-ctx.Done():
				return nil
			case <-fw.kick:
			}
			continue
		}
		tries++
		retry := fw.cfg.Clock.NewTimer(min(backoff(tries)*4, 30*time.Second))
		select {
		case <-ctx.Done():
		case <-fw.kick:
		case <-retry.Chan():
		}
		retry.Stop()
		if ctx.Err() != nil {
			return nil
		}
	}
}

// failed notes a record that must be sent again: the reason goes to
// health and, once per distinct reason, to the log.
func (fw *forwarder) failed(rec journal.Fiscal, err error) {
	if fw.setProblem(fmt.Errorf("payment: fiscal record %d (v%d, purchase %s) not delivered: %w", rec.Seq, rec.Version, rec.PurchaseID, err)) {
		fw.log.Warn("fiscal record not delivered; will retry", zap.Uint64("seq", rec.Seq), zap.Error(err))
	}
}

// setProblem sets why the oldest record waits (nil: it does not) and
// reports whether that is news.
func (fw *forwarder) setProblem(p error) bool {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	changed := (p == nil) != (fw.problem == nil) || (p != nil && p.Error() != fw.problem.Error())
	fw.problem = p
	return changed
}

// health fills the records part of h.
func (fw *forwarder) health(h *FiscalHealth) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	h.RecordsPending, h.RecordsProblem = fw.pending, fw.problem
}

// send sends one record and journals the outcome. It returns an error only
// when the record must be tried again.
func (fw *forwarder) send(ctx context.Context, rec journal.Fiscal) error {
	cctx, cancel := context.WithTimeout(ctx, fw.cfg.Timeouts.Call)
	err := fw.deliver(cctx, rec)
	cancel()
	rec.Attempts++
	rec.Updated = fw.cfg.Clock.Now()
	var refusal *ServiceError
	switch {
	case err == nil:
		rec.Delivered = true
	case errors.Is(err, ErrInvalid):
		rec.Rejected = err.Error()
	case smartpay.LostAnswer(err):
		// The service may have stored it: the methods carry no key that
		// would make a repeat harmless, so repeats are bounded.
		rec.LostAnswers++
		fw.mu.Lock()
		fw.lost++
		fw.mu.Unlock()
		if rec.LostAnswers < MaxFiscalLostAnswers {
			if perr := fw.j.PutFiscal(rec); perr != nil {
				fw.log.Error("journal write failed", zap.Error(perr))
			}
			return err
		}
		rec.Unconfirmed = true
	default:
		if refusal = refusalOf(err); refusal == nil {
			if perr := fw.j.PutFiscal(rec); perr != nil {
				fw.log.Error("journal write failed", zap.Error(perr))
			}
			return err
		}
		rec.Rejected = err.Error()
	}
	if perr := fw.j.PutFiscal(rec); perr != nil {
		return perr
	}
	fw.mu.Lock()
	fw.pending = max(fw.pending-1, 0)
	fw.mu.Unlock()
	msg, code := "fiscal record delivered", 0
	switch {
	case rec.Unconfirmed:
		msg = "fiscal record sent, no answer: not sent again"
		fw.mu.Lock()
		fw.unconfirmed++
		fw.mu.Unlock()
		fw.log.Warn("fiscal record sent without an answer "+strconv.Itoa(rec.LostAnswers)+" times: the service most likely has it; not sent again",
			zap.Uint64("seq", rec.Seq), zap.String("purchase_id", rec.PurchaseID), zap.Error(err))
	case rec.Rejected != "":
		msg = "fiscal record refused"
		if refusal != nil {
			msg, code = msg+": "+refusal.Message, refusal.Code
		}
		fw.log.Error("fiscal record refused", zap.Uint64("seq", rec.Seq), zap.String("purchase_id", rec.PurchaseID), zap.Error(err))
	default:
		fw.log.Info("fiscal record delivered", zap.Uint64("seq", rec.Seq), zap.Int("version", rec.Version), zap.String("purchase_id", rec.PurchaseID))
	}
	fw.hub.Publish(Event{Kind: KindFiscal, SaleID: rec.SaleID, PurchaseID: rec.PurchaseID, Code: code, Message: msg})
	return nil
}

// deliver makes the call rec's version names.
func (fw *forwarder) deliver(ctx context.Context, rec journal.Fiscal) error {
	switch rec.Version {
	case 1:
		return fw.svc.FiscalV1(ctx, smartpay.FiscalV1Request{PurchaseID: rec.PurchaseID, KKTRegNumber: rec.KKTRegNumber, FiscalSign: rec.FiscalSign})
	case 2:
		qr, err := smartpay.ParseQR(rec.Code)
		if err != nil {
			return fmt.Errorf("%w: stored QR: %w", ErrInvalid, err)
		}
		var r smartpay.Receipt
		if err := json.Unmarshal(rec.Receipt, &r); err != nil {
			return fmt.Errorf("%w: stored receipt: %w", ErrInvalid, err)
		}
		return fw.svc.FiscalV2(ctx, smartpay.FiscalV2Request{QR: qr, PurchaseID: rec.PurchaseID, Receipt: r})
	}
	return fmt.Errorf("%w: fiscal version %d", ErrInvalid, rec.Version)
}

// checkReceipt validates a receipt's shape before it is queued, so a bad
// one is refused now (and the sale left alone) rather than retried forever.
func checkReceipt(raw json.RawMessage) error {
	if len(raw) == 0 {
		return fmt.Errorf("%w: receipt is required", ErrInvalid)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var r smartpay.Receipt
	if err := dec.Decode(&r); err != nil {
		return fmt.Errorf("%w: receipt: %v", ErrInvalid, err)
	}
	switch {
	case !digits(r.KKTRegNumber, 16) || !digits(r.FNNumber, 16):
		return fmt.Errorf("%w: receipt: kkt_reg_number and fn_number must be 16 digits", ErrInvalid)
	case r.Operation != smartpay.OperationIncome && r.Operation != smartpay.OperationIncomeReturn:
		return fmt.Errorf("%w: receipt: operation must be %s or %s", ErrInvalid, smartpay.OperationIncome, smartpay.OperationIncomeReturn)
	case r.FiscalSign == "" || r.FDNumber <= 0 || r.DateTime.IsZero() || r.Total < 0 || len(r.Items) == 0:
		return fmt.Errorf("%w: receipt needs fiscal_sign, fd_number, datetime, total and items", ErrInvalid)
	}
	return nil
}

func digits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
