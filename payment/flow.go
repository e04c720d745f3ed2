package payment

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/journal"
	"github.com/kioskd/kioskd/payment/smartpay"
)

// Service is what the flow needs from the Smart Pay client; *smartpay.Client
// satisfies it.
type Service interface {
	Warm(ctx context.Context) error
	Commit(ctx context.Context, r smartpay.CommitRequest) (smartpay.CommitResponse, error)
	Release(ctx context.Context, purchaseID string, amount int64) (smartpay.ReleaseResponse, error)
	Status(ctx context.Context, purchaseID string) (smartpay.StatusResponse, error)
	KassaStatus(ctx context.Context, purchaseID string, s smartpay.KassaStatus) error
	FiscalV1(ctx context.Context, r smartpay.FiscalV1Request) error
	FiscalV2(ctx context.Context, r smartpay.FiscalV2Request) error
	Refund(ctx context.Context, r smartpay.RefundRequest) (smartpay.RefundResponse, error)
	RefundStatus(ctx context.Context, refundID string) (smartpay.RefundStatusResponse, error)
	RefundKassaStatus(ctx context.Context, refundID string, s smartpay.KassaStatus) error
}

// Hand-over modes.
const (
	HandoverHost = "host" // wait for the host's POST /v1/sale/handover
	HandoverAuto = "auto" // confirm as soon as the payment succeeds
)

// Timeouts bound each wait of a sale. Zero values take the defaults.
type Timeouts struct {
	Amount   time.Duration // committed, no amount from the host: cancel (customer walked away); 60s
	Payment  time.Duration // released, not final: cancel; 120s
	Handover time.Duration // paid, no hand-over from the host: cancel; 60s
	Call     time.Duration // deadline of one service call; 10s
}

// Config configures a Flow.
type Config struct {
	KassaID         string        // for logs
	FixedAmount     int64         // kopecks; >0 makes every sale this price (vending)
	Handover        string        // HandoverHost or HandoverAuto; default auto with FixedAmount, else host
	Timeouts        Timeouts      //
	DuplicateWindow time.Duration // the same payload read again within it is dropped; 2s
	Retention       time.Duration // finished records kept this long in the journal; 7 days
	Linger          time.Duration // how long a finished sale stays on screen before Idle; 3s
}

func (c *Config) defaults() error {
	if c.FixedAmount < 0 {
		return fmt.Errorf("payment: fixed amount %d is negative", c.FixedAmount)
	}
	switch c.Handover {
	case "":
		c.Handover = HandoverHost
		if c.FixedAmount > 0 {
			c.Handover = HandoverAuto
		}
	case HandoverHost, HandoverAuto:
	default:
		return fmt.Errorf("payment: hand-over mode %q: want %q or %q", c.Handover, HandoverHost, HandoverAuto)
	}
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&c.Timeouts.Amount, 60*time.Second)
	set(&c.Timeouts.Payment, 120*time.Second)
	set(&c.Timeouts.Handover, 60*time.Second)
	set(&c.Timeouts.Call, 10*time.Second)
	set(&c.DuplicateWindow, 2*time.Second)
	set(&c.Retention, 7*24*time.Hour)
	set(&c.Linger, 3*time.Second)
	return nil
}

// Errors of host operations; the local API maps them to HTTP statuses.
var (
	// ErrWrongState: the operation does not fit the current sale's state.
	ErrWrongState = errors.New("payment: not allowed in the current state")
	// ErrInvalid: a parameter is out of range.
	ErrInvalid = errors.New("payment: invalid request")
	// ErrNotRunning: Run has not started or has ended.
	ErrNotRunning = errors.New("payment: flow not running")
)

// ServiceError is a refusal by the service, with its code and message.
type ServiceError struct {
	Code    int
	Message string
	Err     error
}

// Error describes the refusal.
func (e *ServiceError) Error() string { return fmt.Sprintf("payment: service refused: %v", e.Err) }

// Unwrap returns the client's error (a *smartpay.APIError).
func (e *ServiceError) Unwrap() error { return e.Err }

// Status is a snapshot of the flow for the host and health checks.
type Status struct {
	State         State  `json:"state"`
	SaleID        string `json:"sale_id,omitempty"` // kassa_purchase_id
	PurchaseID    string `json:"purchase_id,omitempty"`
	Amount        int64  `json:"amount,omitempty"`
	PendingAmount int64  `json:"pending_amount,omitempty"` // host amount waiting for a scan
	Code          int    `json:"code,omitempty"`
	Message       string `json:"message,omitempty"`
	Handover      string `json:"handover"`
	Ready         bool   `json:"ready"`          // recovery done: the flow takes new sales
	FiscalPending int    `json:"fiscal_pending"` // fiscal records not yet accepted by the service
}

// input is a host request or scan delivered to the running sale.
type input struct {
	kind    factKind // fAmount, fCancel, fHandover
	amount  int64
	ok      bool
	replace []byte // fCancel by a new QR: start it once the cancel is acknowledged
	reason  string
	ack     chan State // gets the resulting state once it is journaled; cap 1
}

// sale is the running sale; only its runner goroutine touches it except
// where noted.
type sale struct {
	id         string // kassa_purchase_id; fixed, read by other goroutines
	asked      int64  // the amount the host set (or the sale started with); guarded by Flow.mu
	code       []byte // the scanned payload; fixed, read by other goroutines
	rec        journal.Sale
	qr         smartpay.QR
	state      State
	recovering bool
	refused    State        // Confirming or Cancelling once the service refused that kassa/status
	cancel     bool         // cancel asked while a call was in flight
	reason     string       // why the sale is being cancelled
	replace    []byte       // the QR to commit after this one is cancelled
	acks       []chan State // get the state after the next enter: the host's request is journaled
	inputs     chan input
	deadline   time.Time
	polls      int           // status checks since the release
	lastPoll   time.Duration // when the last one was sent, since the release
	pending    time.Duration // when the last one that answered "not yet" was sent
	unsure     bool          // polled in Checking: the release may have been lost and resent
	tries      int           // attempts of the current call whose outcome was unknown
	released   time.Time
}

// Flow runs the sales of one kassa. Create it with New, start it with Run.
type Flow struct {
	cfg  Config
	svc  Service
	j    *journal.Journal
	log  *zap.Logger
	now  func() time.Time
	auto bool

	scans      chan []byte   // to the idle loop; cap 1
	fiscalKick chan struct{} // wakes the fiscal forwarder
	fiscalMu   sync.Mutex    // orders queue reads and enqueues, for the pending count

	mu            sync.Mutex
	ctx           context.Context // Run's; nil when not running
	wg            *sync.WaitGroup
	cur           *sale // nil when idle
	status        Status
	pendingAmount int64
	lastPayload   string
	lastPayloadAt time.Time
	lastDone      journal.Sale // the last sale that ended, for fiscal data
	poll          poller       // status budget and completion history; has its own lock
	confirming    journal.Sale // the current sale's record while Confirming
	warming       bool
	ready         bool
	fiscalPending int
	seq           uint64
	subs          map[int]chan Event
	nextSub       int
	dropped       uint64
}

// New creates a flow over client svc and journal j. It does no I/O.
func New(cfg Config, svc Service, j *journal.Journal, log *zap.Logger) (*Flow, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if svc == nil || j == nil || log == nil {
		return nil, fmt.Errorf("payment: New needs a service, a journal and a logger")
	}
	f := &Flow{
		cfg:        cfg,
		svc:        svc,
		j:          j,
		log:        log.Named("payment").With(zap.String("kassa", cfg.KassaID)),
		now:        time.Now,
		auto:       cfg.Handover == HandoverAuto,
		scans:      make(chan []byte, 1),
		fiscalKick: make(chan struct{}, 1),
		subs:       map[int]chan Event{},
	}
	f.status = Status{State: Idle, Handover: cfg.Handover}
	return f, nil
}

// Config returns the configuration with defaults applied.
func (f *Flow) Config() Config { return f.cfg }

// Run recovers the sales and refunds the journal has open, then runs sales
// until ctx ends. Every goroutine it starts has ended when it returns.
func (f *Flow) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx) // ends the background work when Run fails
	var wg sync.WaitGroup
	f.mu.Lock()
	if f.ctx != nil {
		f.mu.Unlock()
		cancel()
		return fmt.Errorf("payment: Run called twice")
	}
	f.ctx, f.wg = ctx, &wg
	f.mu.Unlock()
	defer func() {
		// No new goroutines (refunds, warm-ups) once ctx is cleared.
		f.mu.Lock()
		f.ctx, f.ready = nil, false
		f.mu.Unlock()
		cancel()
		wg.Wait()
	}()

	wg.Add(2)
	go func() { defer wg.Done(); f.forwardFiscal(ctx) }()
	go func() { defer wg.Done(); f.compactLoop(ctx) }()
	refunds, err := f.j.Refunds(true)
	if err != nil {
		return err
	}
	for _, r := range refunds {
		f.log.Info("recovering refund", zap.String("kassa_refund_id", r.ID), zap.String("phase", string(r.Phase)))
		wg.Add(1)
		go func() { defer wg.Done(); f.runRefund(ctx, r) }()
	}
	open, err := f.j.Sales(true)
	if err != nil {
		return err
	}
	for _, rec := range open {
		s, err := f.recovered(rec)
		if err != nil {
			return err
		}
		f.log.Info("recovering sale", zap.String("kassa_purchase_id", rec.ID), zap.String("phase", string(rec.Phase)))
		if err := f.runSale(ctx, s); err != nil {
			return err
		}
	}
	f.kickFiscal()
	f.mu.Lock()
	f.ready = true
	f.mu.Unlock()
	return f.idleLoop(ctx)
}

// idleLoop waits for the next scan and runs its sale. A replacing scan
// starts its sale as soon as the replaced one ended.
func (f *Flow) idleLoop(ctx context.Context) error {
	var linger <-chan time.Time
	var next []byte
	for {
		if next == nil {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-linger:
				linger = nil
				f.mu.Lock()
				f.status = Status{State: Idle, Handover: f.cfg.Handover, PendingAmount: f.pendingAmount}
				f.publishLocked(Event{Kind: KindState, State: Idle})
				f.mu.Unlock()
				continue
			case next = <-f.scans:
			}
		}
		s, err := f.newSale(next)
		next = nil
		if err != nil {
			f.log.Error("journal write failed; scan dropped", zap.Error(err))
			f.notice(Event{Kind: KindFault, Message: "journal: " + err.Error()})
			continue
		}
		if err := f.runSale(ctx, s); err != nil {
			return err
		}
		next = s.replace
		if ctx.Err() != nil {
			return ctx.Err()
		}
		linger = time.After(f.cfg.Linger)
	}
}

// newSale journals a sale for a scanned payload (already validated).
func (f *Flow) newSale(payload []byte) (*sale, error) {
	qr, err := smartpay.ParseQR(payload)
	if err != nil {
		return nil, err
	}
	rec, err := f.j.NewSale(payload, f.now())
	if err != nil {
		return nil, err
	}
	s := &sale{id: rec.ID, code: rec.Code, rec: rec, qr: qr, state: Committing, inputs: make(chan input, 8)}
	f.mu.Lock()
	if f.cfg.FixedAmount > 0 {
		s.rec.Amount = f.cfg.FixedAmount
	} else if f.pendingAmount > 0 {
		s.rec.Amount, f.pendingAmount = f.pendingAmount, 0
	}
	s.asked = s.rec.Amount
	f.cur = s
	f.status = Status{State: Committing, SaleID: rec.ID, Amount: s.rec.Amount, Handover: f.cfg.Handover}
	f.publishLocked(Event{Kind: KindState, State: Committing, SaleID: rec.ID, Amount: s.rec.Amount})
	f.mu.Unlock()
	f.log.Info("sale started", zap.String("kassa_purchase_id", rec.ID), zap.String("id_loyalty", qr.IDLoyalty))
	return s, nil
}

// recovered turns an open journal record into a sale to finish.
func (f *Flow) recovered(rec journal.Sale) (*sale, error) {
	s := &sale{id: rec.ID, code: rec.Code, rec: rec, recovering: true, inputs: make(chan input, 8), reason: "recovered after restart"}
	if qr, err := smartpay.ParseQR(rec.Code); err == nil {
		s.qr = qr
	}
	switch rec.Phase {
	case journal.PhaseCommitting:
		s.state = Committing
	case journal.PhaseCommitted, journal.PhasePaid:
		s.state = Cancelling
	case journal.PhaseReleasing:
		s.state = Checking // the release may or may not have arrived: ask
	case journal.PhaseReleased:
		s.state = Paying
	case journal.PhaseHandedOver:
		s.state = Confirming
	case journal.PhaseCancelling:
		s.state = Cancelling
	default:
		return nil, fmt.Errorf("payment: sale %s in unknown phase %q", rec.ID, rec.Phase)
	}
	if s.state == Paying || s.state == Checking {
		s.released = f.now()
		s.deadline = s.released.Add(f.cfg.Timeouts.Payment)
	}
	f.mu.Lock()
	f.cur = s
	f.status = Status{State: s.state, SaleID: rec.ID, PurchaseID: rec.PurchaseID, Amount: rec.Amount, Handover: f.cfg.Handover}
	f.publishLocked(Event{Kind: KindState, State: s.state, SaleID: rec.ID, PurchaseID: rec.PurchaseID, Amount: rec.Amount, Message: s.reason})
	f.mu.Unlock()
	return s, nil
}

// runSale drives s to a terminal state. Each state names its action; the
// action returns a fact, decide picks the next state, enter records it.
// It returns early when ctx ends (the journal keeps the sale for the next
// start) or, with an error, when the journal cannot be written.
func (f *Flow) runSale(ctx context.Context, s *sale) error {
	defer func() {
		f.mu.Lock()
		f.cur = nil
		f.mu.Unlock()
	}()
	for !s.state.Terminal() {
		var fc fact
		var info stepInfo
		switch s.state {
		case Committing:
			fc, info = f.doCommit(ctx, s)
		case WaitingAmount, Paid: // Paid only in host mode: auto goes on to Confirming
			fc, info = f.wait(ctx, s)
		case Releasing:
			fc, info = f.doRelease(ctx, s)
		case Paying, Checking:
			fc, info = f.doPoll(ctx, s)
		case Confirming:
			fc, info = f.doKassa(ctx, s, smartpay.KassaSuccess)
		case Cancelling:
			fc, info = f.doKassa(ctx, s, smartpay.KassaCancel)
		}
		if ctx.Err() != nil {
			return nil // the journal keeps the sale open; the next start recovers it
		}
		f.drainInputs(s)
		fc.haveAmount = s.rec.Amount > 0
		fc.cancel = s.cancel
		fc.auto = f.auto
		fc.recovering = s.recovering
		if fc.kind == fRejected && (s.state == Confirming || s.state == Cancelling) {
			s.refused = s.state
		}
		fc.refused = s.refused
		next := decide(s.state, fc)
		if fc.kind == fUnknown && next == s.state && s.state != Checking {
			// Repeat the same call after a pause (Checking has its own
			// schedule); a cancel asked meanwhile is noted.
			s.tries++
			f.pause(ctx, s, backoff(s.tries))
		}
		err := f.enter(s, next, info)
		for _, ack := range s.acks {
			if ack != nil {
				ack <- s.state // cap 1, one send per request
			}
		}
		s.acks = nil
		if err != nil {
			return err
		}
	}
	return nil
}

// stepInfo carries what an action learned, for the journal and the event.
type stepInfo struct {
	purchaseID string
	code       int
	message    string
	err        error
}

// enter moves s to next: journal first (before the call next leads to),
// then the log line and the event. It is the only place that changes
// s.state. When the journal cannot be written it returns an error and
// leaves s as it was: making the call without its record would leave
// recovery blind, so the flow stops instead.
func (f *Flow) enter(s *sale, next State, info stepInfo) error {
	prev := s.state
	if info.purchaseID != "" {
		s.rec.PurchaseID = info.purchaseID
	}
	if info.code != 0 || info.message != "" {
		s.rec.SvcCode, s.rec.SvcMessage = info.code, info.message
	}
	if next == prev {
		return nil
	}
	s.tries = 0
	now := f.now()
	switch next {
	case WaitingAmount:
		s.deadline = now.Add(f.cfg.Timeouts.Amount)
	case Releasing:
		if s.released.IsZero() { // a re-release (from Paying or Checking) keeps the payment deadline
			s.deadline = time.Time{}
		}
	case Paying, Checking:
		if s.refused != Idle {
			// Checking after a refused kassa/status: no timeout, only
			// the service's final status ends it.
			s.deadline = time.Time{}
			if s.released.IsZero() {
				s.released, s.polls = now, 0
			}
		} else if s.released.IsZero() {
			s.released, s.polls = now, 0
			s.deadline = now.Add(f.cfg.Timeouts.Payment)
		}
	case Paid:
		s.deadline = now.Add(f.cfg.Timeouts.Handover)
	}
	phase := next.phase()
	if s.refused != Idle && !next.Terminal() {
		// Keep the phase of the refused call (handed over, or
		// cancelling): a restart repeats it and asks again, and never
		// mistakes handed-over goods for a payment to cancel.
		phase = s.rec.Phase
	}
	if phase != s.rec.Phase {
		rec := s.rec
		rec.Phase, rec.Updated = phase, now
		if next.Terminal() {
			rec.Outcome = next.String()
		}
		if err := f.j.PutSale(rec); err != nil {
			f.log.Error("journal write failed; stopping the flow", zap.String("kassa_purchase_id", s.rec.ID), zap.Error(err))
			f.notice(Event{Kind: KindFault, SaleID: s.rec.ID, Message: "journal: " + err.Error()})
			return fmt.Errorf("payment: sale %s: %w", s.rec.ID, err)
		}
		s.rec = rec
	}
	s.state = next
	fields := []zap.Field{zap.String("kassa_purchase_id", s.rec.ID), zap.String("purchase_id", s.rec.PurchaseID), zap.Int64("amount", s.rec.Amount)}
	if info.err != nil {
		fields = append(fields, zap.NamedError("cause", info.err))
	}
	if s.reason != "" && (next == Cancelling || next == Cancelled) {
		fields = append(fields, zap.String("reason", s.reason))
	}
	f.log.Info(prev.String()+" -> "+next.String(), fields...)

	msg := info.message
	if msg == "" && (next == Cancelling || next == Cancelled) {
		msg = s.reason
	}
	f.mu.Lock()
	if next.Terminal() {
		f.lastDone = s.rec
	}
	if next == Confirming {
		f.confirming = s.rec
	}
	f.status = Status{State: next, SaleID: s.rec.ID, PurchaseID: s.rec.PurchaseID, Amount: s.rec.Amount,
		Code: s.rec.SvcCode, Message: msg, Handover: f.cfg.Handover, PendingAmount: f.pendingAmount}
	f.publishLocked(Event{Kind: KindState, State: next, SaleID: s.rec.ID, PurchaseID: s.rec.PurchaseID,
		Amount: s.rec.Amount, Code: s.rec.SvcCode, Message: msg})
	f.mu.Unlock()
	return nil
}

// callCtx bounds one service call.
func (f *Flow) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, f.cfg.Timeouts.Call)
}

// classify turns a call error into a fact: a service refusal is final, the
// rest says nothing about the outcome. Only a 4xx answer carrying a service
// code is a refusal; a code-less answer (a proxy's), a 401 left after the
// client's one re-login, 408, 429, a 2xx login without a cookie and any 5xx
// say nothing about whether the call took effect, so they are unknown and
// the call is repeated or the status asked.
func classify(err error, info *stepInfo) factKind {
	info.err = err
	var ae *smartpay.APIError
	if !errors.As(err, &ae) || errors.Is(err, smartpay.ErrOutcomeUnknown) {
		return fUnknown
	}
	if refusal(ae) {
		info.code, info.message = ae.Code, ae.Message
		return fRejected
	}
	return fUnknown
}

// refusal reports whether ae is the service's definitive "no".
func refusal(ae *smartpay.APIError) bool {
	if ae.Code == 0 || ae.Code == smartpay.CodeUnavailable || ae.HTTPStatus < 400 || ae.HTTPStatus >= 500 {
		return false
	}
	switch ae.HTTPStatus {
	case 401, 408, 429: // unauthorised after the re-login, timeout, rate limit: try again
		return false
	}
	return true
}

func (f *Flow) doCommit(ctx context.Context, s *sale) (fact, stepInfo) {
	var info stepInfo
	cctx, cancel := f.callCtx(ctx)
	resp, err := f.svc.Commit(cctx, smartpay.CommitRequest{KassaPurchaseID: s.rec.ID, QR: s.qr})
	cancel()
	if err != nil {
		return fact{kind: classify(err, &info)}, info
	}
	info.purchaseID = resp.PurchaseID
	return fact{kind: fCommitted}, info
}

func (f *Flow) doRelease(ctx context.Context, s *sale) (fact, stepInfo) {
	var info stepInfo
	cctx, cancel := f.callCtx(ctx)
	resp, err := f.svc.Release(cctx, s.rec.PurchaseID, s.rec.Amount)
	cancel()
	if err != nil {
		k := classify(err, &info)
		if k == fRejected && s.reason == "" {
			s.reason = info.message
		}
		return fact{kind: k}, info
	}
	if resp.Status.Final() {
		return fact{kind: fStatus, status: resp.Status}, info
	}
	return fact{kind: fReleased}, info
}

// pollDelay is the pause before status check n (0-based) after the release:
// fast at first, since most payments finish within seconds, then 1.3s so
// that over a long wait the average stays under one request per second
// (5 checks in the first 1.2s, then 0.77/s: 19 checks in 20s).
func pollDelay(n int) time.Duration {
	fast := [...]time.Duration{100 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
		300 * time.Millisecond, 500 * time.Millisecond}
	if n < len(fast) {
		return fast[n]
	}
	return 1300 * time.Millisecond
}

// backoff is the pause before repeating a call whose outcome was unknown.
func backoff(attempt int) time.Duration {
	d := 100 * time.Millisecond << min(max(attempt-1, 0), 4)
	return min(d, time.Second)
}

// doPoll waits for the poller's next check of s and makes it. Checking uses
// the same schedule and counts as the same wait: an unknown answer spends
// the wait's budget like any other check.
func (f *Flow) doPoll(ctx context.Context, s *sale) (fact, stepInfo) {
	if !s.released.IsZero() {
		now := f.now()
		at := f.poll.next(now, s.released, pollWait{n: s.polls, last: s.lastPoll})
		if fc, ok := f.sleep(ctx, s, at-now.Sub(s.released)); ok {
			return fc, stepInfo{}
		}
	}
	if s.state == Checking {
		s.unsure = true
	}
	sent := f.now()
	f.poll.spend(sent)
	s.polls++
	if !s.released.IsZero() {
		s.lastPoll = sent.Sub(s.released)
	}
	var info stepInfo
	cctx, cancel := f.callCtx(ctx)
	resp, err := f.svc.Status(cctx, s.rec.PurchaseID)
	cancel()
	if err != nil {
		if classify(err, &info) == fRejected && s.refused != Idle {
			// After a refused kassa/status a refused status too means
			// the service does not know the purchase: decide ends it.
			return fact{kind: fRejected}, info
		}
		return fact{kind: fUnknown}, info // a refused status says nothing about the payment
	}
	switch {
	case resp.Status == smartpay.Success && !s.unsure && !s.recovering && !s.released.IsZero():
		// Only a wait watched from its release teaches when payments
		// complete: after a lost answer (perhaps the release's) or a
		// restart, s.released may not be when the service released it.
		f.poll.learn(span{lo: s.pending, hi: s.lastPoll})
	case !resp.Status.Final():
		s.pending = s.lastPoll
	}
	info.code, info.message = resp.Code, resp.Message
	return fact{kind: fStatus, status: resp.Status}, info
}

func (f *Flow) doKassa(ctx context.Context, s *sale, st smartpay.KassaStatus) (fact, stepInfo) {
	var info stepInfo
	cctx, cancel := f.callCtx(ctx)
	err := f.svc.KassaStatus(cctx, s.rec.PurchaseID, st)
	cancel()
	if err != nil {
		return fact{kind: classify(err, &info)}, info
	}
	if st == smartpay.KassaSuccess {
		return fact{kind: fConfirmed}, info
	}
	return fact{kind: fCancelAcked}, info
}

// sleep waits d, or until an input or the payment deadline. ok is true
// when something other than the time passing happened.
func (f *Flow) sleep(ctx context.Context, s *sale, d time.Duration) (fact, bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	var dl <-chan time.Time
	if !s.deadline.IsZero() {
		dt := time.NewTimer(time.Until(s.deadline))
		defer dt.Stop()
		dl = dt.C
	}
	for {
		select {
		case <-ctx.Done():
			return fact{}, true
		case <-t.C:
			return fact{}, false
		case <-dl:
			s.reason = "payment not confirmed in time"
			return fact{kind: fTimeout}, true
		case in := <-s.inputs:
			if fc, ok := f.take(s, in); ok {
				return fc, true
			}
		}
	}
}

// pause waits d before a repeated call; an input arriving meanwhile is
// noted (a cancel is acted on after the call's answer).
func (f *Flow) pause(ctx context.Context, s *sale, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			return
		case in := <-s.inputs:
			f.take(s, in)
		}
	}
}

// wait blocks in WaitingAmount or Paid for the host (or the deadline).
func (f *Flow) wait(ctx context.Context, s *sale) (fact, stepInfo) {
	if s.cancel {
		return fact{kind: fCancel}, stepInfo{}
	}
	var dl <-chan time.Time
	if !s.deadline.IsZero() {
		t := time.NewTimer(time.Until(s.deadline))
		defer t.Stop()
		dl = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return fact{}, stepInfo{}
		case <-dl:
			if s.state == WaitingAmount {
				s.reason = "no amount in time"
			} else {
				s.reason = "goods not handed over in time"
			}
			s.cancel = true
			return fact{kind: fTimeout}, stepInfo{}
		case in := <-s.inputs:
			if fc, ok := f.take(s, in); ok {
				return fc, stepInfo{}
			}
		}
	}
}

// take applies an input to s. It returns the fact to act on now, or false
// when the input only changed what s knows (amount, a pending cancel).
func (f *Flow) take(s *sale, in input) (fact, bool) {
	switch in.kind {
	case fAmount:
		if s.rec.Amount == 0 {
			s.rec.Amount = in.amount
		}
		return fact{kind: fAmount}, s.state == WaitingAmount
	case fCancel:
		if !s.cancel {
			s.cancel, s.reason = true, in.reason
		}
		if in.replace != nil && s.replace == nil {
			s.replace = in.replace
		}
		return fact{kind: fCancel}, true
	case fHandover:
		if s.state == Paid && len(s.acks) > 0 {
			// A duplicate of the hand-over being applied: it learns the
			// outcome with the first, once it is journaled.
			s.acks = append(s.acks, in.ack)
			return fact{}, false
		}
		if s.state != Paid {
			// A duplicate queued behind the one that moved the sale on:
			// answer it with where the sale stands instead of leaving
			// the host waiting for an ack that never comes.
			if in.ack != nil {
				select {
				case in.ack <- s.state:
				default:
				}
			}
			return fact{}, false
		}
		s.acks = append(s.acks, in.ack)
		return fact{kind: fHandover, ok: in.ok}, true
	}
	return fact{}, false
}

// drainInputs notes inputs that arrived during a call.
func (f *Flow) drainInputs(s *sale) {
	for {
		select {
		case in := <-s.inputs:
			f.take(s, in)
		default:
			return
		}
	}
}

// Snapshot returns the current state of the flow.
func (f *Flow) Snapshot() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.status
	st.PendingAmount, st.Ready, st.FiscalPending = f.pendingAmount, f.ready, f.fiscalPending
	return st
}

// Scan hands a decoded payload to the flow. It never blocks: a payment QR
// scanned while idle starts its commit at once; a different QR scanned
// before the release replaces the current sale; anything else is reported
// as an event and dropped.
func (f *Flow) Scan(data []byte, source string, at time.Time) {
	if at.IsZero() {
		at = f.now()
	}
	payload := string(data)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctx == nil {
		f.publishLocked(Event{Kind: KindBusy, Source: source, Message: "not running"})
		return
	}
	if payload == f.lastPayload && at.Sub(f.lastPayloadAt) < f.cfg.DuplicateWindow {
		f.lastPayloadAt = at
		f.publishLocked(Event{Kind: KindDuplicate, Source: source})
		return
	}
	f.lastPayload, f.lastPayloadAt = payload, at
	if _, err := smartpay.ParseQR(data); err != nil {
		f.log.Info("not a payment QR", zap.String("source", source), zap.Error(err))
		f.publishLocked(Event{Kind: KindBadCode, Source: source, Message: err.Error()})
		return
	}
	cp := append([]byte(nil), data...)
	if f.cur == nil {
		select {
		case f.scans <- cp:
		default:
			f.publishLocked(Event{Kind: KindBusy, Source: source})
		}
		return
	}
	s := f.cur
	if !s.recovering && (f.status.State == Committing || f.status.State == WaitingAmount) && payload != string(s.code) {
		select {
		case s.inputs <- input{kind: fCancel, replace: cp, reason: "replaced by another QR"}:
			f.publishLocked(Event{Kind: KindReplaced, Source: source, SaleID: s.id})
			return
		default:
		}
	}
	f.publishLocked(Event{Kind: KindBusy, Source: source, SaleID: s.id})
}

// FrameStarted tells the flow a scanner began receiving a frame: it makes
// the service session ready (in the background, coalesced) so the commit
// does not pay for a handshake or a login.
func (f *Flow) FrameStarted() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctx == nil || f.warming {
		return
	}
	f.warming = true
	ctx, wg := f.ctx, f.wg
	wg.Add(1)
	go func() {
		defer wg.Done()
		cctx, cancel := f.callCtx(ctx)
		err := f.svc.Warm(cctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			f.log.Warn("warming the service session failed", zap.Error(err))
		}
		f.mu.Lock()
		f.warming = false
		f.mu.Unlock()
	}()
}

// send delivers in to the current sale if ok(state) holds.
func (f *Flow) send(in input, ok func(State) bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sendLocked(in, ok)
}

// sendLocked is send with f.mu held.
func (f *Flow) sendLocked(in input, ok func(State) bool) error {
	if f.ctx == nil {
		return ErrNotRunning
	}
	if f.cur == nil || f.cur.recovering || !ok(f.status.State) {
		return fmt.Errorf("%w: %s", ErrWrongState, f.status.State)
	}
	select {
	case f.cur.inputs <- in:
		return nil
	default:
		return fmt.Errorf("%w: too many requests", ErrWrongState)
	}
}

// StartSale sets the amount (kopecks) of the current sale, or of the next
// one when no QR has been scanned yet. The amount of a sale is set once:
// the same amount again succeeds (a host's retry), a different one is
// refused with ErrWrongState rather than silently ignored.
func (f *Flow) StartSale(amount int64) error {
	if amount <= 0 {
		return fmt.Errorf("%w: amount must be positive", ErrInvalid)
	}
	if f.cfg.FixedAmount > 0 {
		return fmt.Errorf("%w: the kassa has a fixed amount", ErrWrongState)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctx != nil && f.cur == nil {
		f.pendingAmount = amount
		f.status.PendingAmount = amount
		f.publishLocked(Event{Kind: KindAmount, State: f.status.State, Amount: amount})
		return nil
	}
	unreleased := func(s State) bool { return s == Committing || s == WaitingAmount }
	if cur := f.cur; f.ctx != nil && cur != nil && !cur.recovering && unreleased(f.status.State) && cur.asked > 0 {
		if cur.asked == amount {
			return nil
		}
		return fmt.Errorf("%w: the sale's amount is already %d", ErrWrongState, cur.asked)
	}
	if err := f.sendLocked(input{kind: fAmount, amount: amount}, unreleased); err != nil {
		return err
	}
	f.cur.asked = amount
	return nil
}

// Cancel cancels the current sale (or the amount waiting for a scan).
func (f *Flow) Cancel() error {
	f.mu.Lock()
	if f.ctx != nil && f.cur == nil && f.pendingAmount > 0 {
		f.pendingAmount = 0
		f.publishLocked(Event{Kind: KindAmount, State: f.status.State})
		f.mu.Unlock()
		return nil
	}
	f.mu.Unlock()
	return f.send(input{kind: fCancel, reason: "cancelled by the host"}, func(s State) bool {
		return s == Committing || s == WaitingAmount || s == Releasing || s == Paying ||
			s == Checking || s == Paid || s == Cancelling
	})
}

// Handover reports whether the goods were handed over (ok) or not after
// the payment succeeded; not handed over cancels the payment. It returns
// once the hand-over is in the journal, so a crash after the host was told
// "done" can no longer cancel a payment for goods that were given.
func (f *Flow) Handover(ok bool) error {
	if f.auto {
		return fmt.Errorf("%w: hand-over mode is auto", ErrWrongState)
	}
	ack := make(chan State, 1)
	f.mu.Lock()
	if ok && f.ctx != nil && (f.status.State == Confirming || f.status.State == Completed) {
		// A repeated "handed over" (the host's retry): already recorded.
		f.mu.Unlock()
		return nil
	}
	err := f.sendLocked(input{kind: fHandover, ok: ok, ack: ack}, func(s State) bool { return s == Paid })
	f.mu.Unlock()
	if err != nil {
		return err
	}
	t := time.NewTimer(f.cfg.Timeouts.Call)
	defer t.Stop()
	select {
	case st := <-ack:
		done := st == Confirming || st == Completed
		if ok != done {
			// ok: the hand-over timeout won the race and the payment is
			// being cancelled; !ok: a hand-over already confirmed it.
			return fmt.Errorf("%w: %s", ErrWrongState, st)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("%w: hand-over not recorded in time", ErrNotRunning)
	}
}

// PaidElsewhere ends the current sale, not yet released, because the
// customer paid by another method: the commit is cancelled and the receipt
// is queued for v2 fiscal with the scanned QR.
func (f *Flow) PaidElsewhere(receipt json.RawMessage) error {
	if err := checkReceipt(receipt); err != nil {
		return err
	}
	// Check the state and queue the cancel under one hold of f.mu: once it
	// is queued the sale can no longer be released (decide cancels), so
	// the receipt queued next is for a sale that is not paid by QR. The
	// other order left a receipt queued when the sale had moved on to
	// Releasing in between and the cancel was refused.
	f.mu.Lock()
	cur := f.cur
	err := f.sendLocked(input{kind: fCancel, reason: "paid by another method"}, func(s State) bool {
		return s == Committing || s == WaitingAmount
	})
	f.mu.Unlock()
	if err != nil {
		if errors.Is(err, ErrWrongState) {
			return fmt.Errorf("%w: no unreleased sale", err)
		}
		return err
	}
	return f.enqueueFiscal(journal.Fiscal{Version: 2, SaleID: cur.id, Code: cur.code, Receipt: receipt})
}

// FiscalData is the fiscal record of a paid sale as the host sends it.
type FiscalData struct {
	PurchaseID   string          // empty: the last sale that was paid
	KKTRegNumber string          // 16 digits
	FiscalSign   string          //
	Receipt      json.RawMessage // optional: sent with v2 fiscal instead of v1
}

// Fiscal queues the fiscal record of a paid sale; it is forwarded until the
// service accepts it, across restarts.
func (f *Flow) Fiscal(d FiscalData) error {
	if d.Receipt == nil && (!digits(d.KKTRegNumber, 16) || d.FiscalSign == "") {
		return fmt.Errorf("%w: kkt_reg_number (16 digits) and fiscal_sign are required", ErrInvalid)
	}
	if d.Receipt != nil {
		if err := checkReceipt(d.Receipt); err != nil {
			return err
		}
	}
	f.mu.Lock()
	last := f.lastDone
	if f.cur != nil && f.status.State == Confirming {
		last = f.confirming
	}
	f.mu.Unlock()
	if d.PurchaseID != "" && d.PurchaseID != last.PurchaseID {
		// An older sale (or one from before a restart): the journal has it
		// while it is retained; without it only v1 can be sent.
		if s, err := f.j.SaleByPurchase(d.PurchaseID); err == nil {
			last = s
		} else if d.Receipt != nil {
			return fmt.Errorf("%w: v2 fiscal needs the sale's QR; purchase %s is not in the journal", ErrInvalid, d.PurchaseID)
		} else {
			last = journal.Sale{PurchaseID: d.PurchaseID, Outcome: Completed.String()}
		}
	}
	if last.PurchaseID == "" || (last.Outcome != Completed.String() && last.Phase != journal.PhaseHandedOver) {
		return fmt.Errorf("%w: no paid sale to attach the fiscal data to", ErrWrongState)
	}
	rec := journal.Fiscal{Version: 1, SaleID: last.ID, PurchaseID: last.PurchaseID, KKTRegNumber: d.KKTRegNumber, FiscalSign: d.FiscalSign}
	if d.Receipt != nil {
		rec.Version, rec.Receipt, rec.Code = 2, d.Receipt, last.Code
	}
	return f.enqueueFiscal(rec)
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

func (f *Flow) compactLoop(ctx context.Context) {
	every := min(f.cfg.Retention/4, time.Hour)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := f.j.Compact(f.now().Add(-f.cfg.Retention)); err != nil {
			f.log.Warn("journal compaction failed", zap.Error(err))
		} else if n > 0 {
			f.log.Info("journal compacted", zap.Int("records", n))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
