package payment

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/journal"
	"github.com/kioskd/kioskd/payment/smartpay"
)

// RefundRequest is a host's request to refund (part of) a paid purchase.
type RefundRequest struct {
	PurchaseID string
	Amount     int64  // kopecks
	RequestID  string // the host's idempotency key; may be empty
}

// RefundInfo is a refund as the host sees it.
type RefundInfo struct {
	ID         string                `json:"id"` // kassa_refund_id
	PurchaseID string                `json:"purchase_id"`
	RefundID   string                `json:"refund_id,omitempty"` // the service's id
	Amount     int64                 `json:"amount"`
	Phase      journal.RefundPhase   `json:"phase"`
	Outcome    journal.RefundOutcome `json:"outcome,omitempty"`
	Code       int                   `json:"code,omitempty"`
	Message    string                `json:"message,omitempty"`
	Done       bool                  `json:"done"`
}

func refundInfo(r journal.Refund) RefundInfo {
	return RefundInfo{ID: r.ID, PurchaseID: r.PurchaseID, RefundID: r.RefundID, Amount: r.Amount,
		Phase: r.Phase, Outcome: r.Outcome, Code: r.SvcCode, Message: r.SvcMessage, Done: r.Phase == journal.RefundDone}
}

// refunds is the refund machine: each refund runs on a goroutine of its
// own (refunds are independent of the sale and of each other), started by
// the host's request or by recovery, and owned by run, which waits for
// them all.
type refunds struct {
	cfg Config
	svc Service
	j   *journal.Journal
	log *zap.Logger
	hub *Hub
	// receipts makes the kassa's own return receipt of a refund that
	// succeeded, stored with the refund's last record.
	receipts *receiptWriter
	disk     *diskGuard
	// onRecovered is called once the open refunds have their runners.
	onRecovered func()

	mu       sync.Mutex
	inFlight map[string]chan struct{} // host keys whose request is being made → closed when answered
	ctx      context.Context          // run's; nil when not running
	wg       sync.WaitGroup
	ready    bool // the open refunds have their runners: new ones are taken
	open     int  // refunds not done
}

// run starts a runner for every refund the journal has open, takes new
// ones until ctx ends, then waits for every runner to stop.
func (rm *refunds) run(ctx context.Context) error {
	rm.mu.Lock()
	rm.ctx = ctx
	rm.mu.Unlock()
	defer func() {
		rm.mu.Lock()
		rm.ctx, rm.ready = nil, false
		rm.mu.Unlock()
		rm.wg.Wait()
	}()
	open, err := rm.j.Refunds(true)
	if err != nil {
		return err
	}
	rm.mu.Lock()
	for _, r := range open {
		rm.log.Info("recovering refund", zap.String("kassa_refund_id", r.ID), zap.String("phase", string(r.Phase)))
		rm.startLocked(r)
	}
	rm.ready = true
	rm.mu.Unlock()
	rm.onRecovered()
	<-ctx.Done()
	return nil
}

// startLocked runs r to its end on a goroutine owned by run.
func (rm *refunds) startLocked(r journal.Refund) {
	if rm.ctx == nil {
		return // stopping: the journal keeps it for the next start
	}
	ctx := rm.ctx
	rm.open++
	rm.wg.Add(1)
	go func() {
		defer rm.wg.Done()
		rm.drive(ctx, r)
		rm.mu.Lock()
		rm.open--
		rm.mu.Unlock()
	}()
}

// snapshot is how many refunds are not done, and whether new ones are taken.
func (rm *refunds) snapshot() (open int, ready bool) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.open, rm.ready
}

// request asks the service to refund a paid purchase. The kassa_refund_id
// is journaled before the request; a repeat of a host request (same
// request id) gets the refund the first one made. A refusal is returned
// as a *ServiceError; otherwise the refund goes on in the background
// (poll, confirm) and RefundInfo follows it.
func (rm *refunds) request(ctx context.Context, req RefundRequest) (RefundInfo, error) {
	if req.PurchaseID == "" || req.Amount <= 0 {
		return RefundInfo{}, fmt.Errorf("%w: purchase_id and a positive amount are required", ErrInvalid)
	}
	rm.mu.Lock()
	ready := rm.ready
	rm.mu.Unlock()
	if !ready {
		// Until run has read the open refunds and started their runners,
		// a new record could be picked up by recovery too and get two
		// runners: the host tries again once the flow is ready.
		return RefundInfo{}, fmt.Errorf("%w: recovery not finished", ErrNotRunning)
	}
	// Copies of one keyed request sent at once: the first makes the
	// request; the others wait for its answer, then read it back.
	if req.RequestID != "" {
		answered, err := rm.first(ctx, req.RequestID)
		if err != nil {
			return RefundInfo{}, err
		}
		defer answered()
	}
	r, existed, err := rm.j.NewRefund(req.PurchaseID, req.Amount, req.RequestID, rm.cfg.Clock.Now())
	switch {
	case errors.Is(err, journal.ErrRequestReused):
		return RefundInfo{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	case err != nil:
		if p := rm.disk.problem(); p != nil {
			return RefundInfo{}, p
		}
		return RefundInfo{}, err
	case existed:
		// The first request (or recovery) drives it; answer as it did,
		// once it has its answer (a copy sent at the same time).
		rm.log.Info("refund repeated by the host", zap.String("kassa_refund_id", r.ID), zap.String("request_id", req.RequestID))
		if r.Outcome == journal.RefundRejected {
			return refundInfo(r), &ServiceError{Code: r.SvcCode, Message: r.SvcMessage}
		}
		return refundInfo(r), nil
	}
	rm.log.Info("refund requested", zap.String("kassa_refund_id", r.ID), zap.String("purchase_id", r.PurchaseID), zap.Int64("amount", r.Amount))
	// The request itself is made here, under the host's deadline, so the
	// host learns a refusal in its answer.
	fc, info := rm.act(ctx, &r, &refundWait{})
	// When the answer cannot be written r stays requesting: the runner
	// repeats the request under the same id once it can write (the
	// service answers the same).
	_ = rm.step(&r, fc, info)
	if r.Outcome == journal.RefundRejected {
		return refundInfo(r), &ServiceError{Code: r.SvcCode, Message: r.SvcMessage, Err: info.err}
	}
	rm.mu.Lock()
	if r.Phase != journal.RefundDone {
		rm.startLocked(r) // it polls, confirms, or repeats a request whose outcome is unknown
	}
	rm.mu.Unlock()
	return refundInfo(r), nil
}

// first lets one request with the host's key requestID through at a time:
// a copy waits until the one before it is answered (or ctx ends). Call the
// returned func once answered.
func (rm *refunds) first(ctx context.Context, requestID string) (func(), error) {
	for {
		rm.mu.Lock()
		before, busy := rm.inFlight[requestID]
		if !busy {
			done := make(chan struct{})
			if rm.inFlight == nil {
				rm.inFlight = map[string]chan struct{}{}
			}
			rm.inFlight[requestID] = done
			rm.mu.Unlock()
			return func() {
				rm.mu.Lock()
				delete(rm.inFlight, requestID)
				rm.mu.Unlock()
				close(done)
			}, nil
		}
		rm.mu.Unlock()
		select {
		case <-before:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: the first request with key %q is still waiting for the service", ErrTimeout, requestID)
		}
	}
}

// info returns the refund with kassa_refund_id id.
func (rm *refunds) info(id string) (RefundInfo, error) {
	r, err := rm.j.Refund(id)
	if errors.Is(err, journal.ErrNotFound) {
		return RefundInfo{}, fmt.Errorf("%w: refund %s", ErrNotFound, id)
	}
	if err != nil {
		return RefundInfo{}, err
	}
	return refundInfo(r), nil
}

// refundWait is what a runner knows of its refund's wait.
type refundWait struct {
	started time.Time // when this runner began watching it (monotonic)
	polls   int
	tries   int
}

// drive takes r from its journaled phase to the end. Unknown outcomes are
// repeated until ctx ends; a journal failure stops it (the next start
// resumes from the last journaled phase).
func (rm *refunds) drive(ctx context.Context, r journal.Refund) {
	// The wait is timed from here, not from r.Updated: after a power cut
	// or a clock step the wall-clock age says nothing about how long this
	// refund has been watched.
	w := &refundWait{started: rm.cfg.Clock.Now()}
	for r.Phase != journal.RefundDone {
		fc, info := rm.act(ctx, &r, w)
		if ctx.Err() != nil {
			return
		}
		if fc.kind == rUnknown && r.Phase != journal.RefundRequested {
			// Repeat after a pause; Requested has the poll schedule.
			rm.log.Warn("refund call failed; retrying", zap.String("kassa_refund_id", r.ID), zap.Error(info.err))
			w.tries++
			if !rm.sleep(ctx, backoff(w.tries)) {
				return
			}
		}
		if !retryWrite(ctx, rm.cfg.Clock, func() error { return rm.step(&r, fc, info) }) {
			return
		}
	}
}

// act makes the call r's phase names.
func (rm *refunds) act(ctx context.Context, r *journal.Refund, w *refundWait) (refundFact, stepInfo) {
	switch r.Phase {
	case journal.RefundRequesting:
		return rm.call(ctx, func(ctx context.Context) (refundFact, stepInfo, error) {
			resp, err := rm.svc.Refund(ctx, smartpay.RefundRequest{PurchaseID: r.PurchaseID, KassaRefundID: r.ID, Amount: r.Amount})
			return refundFact{kind: rRequested}, stepInfo{id: resp.RefundID}, err
		})
	case journal.RefundRequested:
		if w.polls > 0 && rm.cfg.Clock.Since(w.started) > rm.cfg.Timeouts.Payment {
			return refundFact{kind: rOverdue}, stepInfo{message: "refund not final in time"}
		}
		if !rm.sleep(ctx, pollDelay(w.polls)) {
			return refundFact{}, stepInfo{}
		}
		w.polls++
		return rm.call(ctx, func(ctx context.Context) (refundFact, stepInfo, error) {
			resp, err := rm.svc.RefundStatus(ctx, r.RefundID)
			return refundFact{kind: rStatus, status: resp.Status}, stepInfo{code: resp.Code, message: resp.Message}, err
		})
	case journal.RefundConfirming, journal.RefundAborting:
		st := smartpay.KassaSuccess
		if r.Phase == journal.RefundAborting {
			st = smartpay.KassaCancel
		}
		return rm.call(ctx, func(ctx context.Context) (refundFact, stepInfo, error) {
			return refundFact{kind: rAcked}, stepInfo{}, rm.svc.RefundKassaStatus(ctx, r.RefundID, st)
		})
	}
	return refundFact{}, stepInfo{}
}

// call makes one service call of a refund (callService).
func (rm *refunds) call(ctx context.Context, do func(context.Context) (refundFact, stepInfo, error)) (refundFact, stepInfo) {
	return callService(ctx, rm.cfg.Timeouts.Call, do, refundFact{kind: rRefused}, refundFact{kind: rUnknown})
}

// sleep waits d on the flow's clock; false when ctx ended first.
func (rm *refunds) sleep(ctx context.Context, d time.Duration) bool {
	t := rm.cfg.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.Chan():
		return true
	}
}

// step decides r's next phase after fc and enters it.
func (rm *refunds) step(r *journal.Refund, fc refundFact, info stepInfo) error {
	next, outcome := decideRefund(r.Phase, fc)
	return rm.enter(r, next, outcome, info)
}

// enter moves r to next: the journal first, then the log line and the
// event; the one place a refund changes. When the journal cannot be
// written r stays as it was and the error says so: the next call must not
// be made without its record.
func (rm *refunds) enter(r *journal.Refund, next journal.RefundPhase, outcome journal.RefundOutcome, info stepInfo) error {
	rec := *r
	if info.id != "" {
		rec.RefundID = info.id
	}
	if info.code != 0 || info.message != "" {
		rec.SvcCode, rec.SvcMessage = info.code, info.message
	}
	if outcome != "" {
		rec.Outcome = outcome
	}
	if next == r.Phase {
		*r = rec
		return nil
	}
	rec.Phase, rec.Updated = next, rm.cfg.Clock.Now()
	if err := rm.j.PutRefund(rec, rm.receipts.forRefund(rec)...); err != nil {
		return fmt.Errorf("payment: refund %s: %w", r.ID, err)
	}
	fields := []zap.Field{zap.String("kassa_refund_id", rec.ID), zap.String("refund_id", rec.RefundID), zap.String("outcome", string(rec.Outcome))}
	if info.err != nil {
		fields = append(fields, zap.NamedError("cause", info.err))
	}
	if next == journal.RefundDone && rm.receipts.enabled() {
		rm.receipts.wake()
	}
	rm.log.Info("refund "+string(r.Phase)+" -> "+string(next), fields...)
	*r = rec
	ri := refundInfo(rec)
	rm.hub.Publish(Event{Kind: KindRefund, PurchaseID: rec.PurchaseID, Amount: rec.Amount, Code: rec.SvcCode, Message: rec.SvcMessage, Refund: &ri})
	return nil
}
