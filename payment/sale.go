package payment

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/journal"
	"github.com/kioskd/kioskd/payment/smartpay"
)

// sales is the sale machine: one sale at a time, driven by one goroutine
// (run) through decide and enter. Host requests reach the running sale as
// inputs on its channel; the lock guards only what other goroutines read
// (the status, the current sale's identity, the amount waiting for a scan).
type sales struct {
	cfg   Config
	svc   Service
	j     *journal.Journal
	log   *zap.Logger
	clock clockwork.Clock
	hub   *Hub
	poll  poller      // status budget and completion history
	next  chan []byte // a scan accepted while idle; cap 1
	// receipts makes the kassa's own fiscal receipt of a completed sale,
	// stored with the sale's last record.
	receipts *receiptWriter
	disk     *diskGuard // new sales wait for a journal that can be written
	// onRecovered is called once the open sales are recovered.
	onRecovered func()

	mu            sync.Mutex
	changed       chan struct{} // closed and replaced at every state the sale enters
	running       bool
	ready         bool // recovery done: new sales are taken
	cur           *sale
	status        Status
	pendingAmount int64        // the host's amount waiting for a scan
	pendingItem   string       // and what it buys
	lastDone      journal.Sale // the last sale that ended, for fiscal data
	confirming    journal.Sale // the current sale's record while Confirming
}

// input is a host request or scan delivered to the running sale.
type input struct {
	kind    factKind // fAmount, fCancel, fDispense, fHandover
	amount  int64
	item    string // fAmount: what it buys
	ok      bool
	replace []byte // fCancel by a new QR: start it once the cancel is acknowledged
	reason  string
	ack     chan State // gets the resulting state once it is journaled; cap 1
}

// sale is the running sale; only the run goroutine touches it except
// where noted.
type sale struct {
	id         string // kassa_purchase_id; fixed, read by other goroutines
	asked      int64  // the amount the host set (or the sale started with); guarded by sales.mu
	code       []byte // the scanned payload; fixed, read by other goroutines
	recovering bool   // found open at start: nobody waits for it; fixed
	inputs     chan input

	rec      journal.Sale
	qr       smartpay.QR
	state    State
	refused  State        // Confirming or Cancelling once the service refused that kassa/status
	cancel   bool         // cancel asked while a call was in flight
	reason   string       // why the sale is being cancelled
	replace  []byte       // the QR to commit after this one is cancelled
	acks     []chan State // get the state after the next enter: the host's request is journaled
	deadline time.Time    // of the current wait (zero: none)
	polls    int          // status checks since the release
	lastPoll time.Duration
	pending  time.Duration // when the last check that answered "not yet" was sent
	unsure   bool          // polled in Checking: the release may have been lost and resent
	tries    int           // attempts of the current call whose outcome was unknown
	released time.Time
	written  chan error // the first record's write, until runSale has its result
}

func newSales(cfg Config, svc Service, j *journal.Journal, log *zap.Logger, hub *Hub) *sales {
	return &sales{cfg: cfg, svc: svc, j: j, log: log, clock: cfg.Clock, hub: hub,
		next: make(chan []byte, 1), changed: make(chan struct{}), status: Status{State: Idle, Handover: cfg.Handover}}
}

// start marks the machine running, before run's goroutine starts: a scan
// from then on waits for recovery rather than being refused.
func (m *sales) start() {
	m.mu.Lock()
	m.running = true
	m.mu.Unlock()
}

// run recovers the sales the journal has open, one after the other, then
// runs a sale for each accepted scan until ctx ends. It returns an error
// only when the journal cannot be written.
func (m *sales) run(ctx context.Context) error {
	defer func() {
		m.mu.Lock()
		m.running, m.ready = false, false
		m.mu.Unlock()
	}()
	open, err := m.j.Sales(true)
	if err != nil {
		return err
	}
	for _, rec := range open {
		s, err := m.recovered(rec)
		if err != nil {
			return err
		}
		m.log.Info("recovering sale", zap.String("kassa_purchase_id", rec.ID), zap.String("phase", string(rec.Phase)))
		if m.runSale(ctx, s); ctx.Err() != nil {
			return nil
		}
	}
	m.mu.Lock()
	m.ready = true
	m.mu.Unlock()
	m.onRecovered()
	return m.idle(ctx)
}

// idle waits for the next scan and runs its sale. A replacing scan starts
// its sale as soon as the replaced one ended; a finished sale stays on
// screen for Linger.
func (m *sales) idle(ctx context.Context) error {
	var linger clockwork.Timer // running while a finished sale is on screen
	stopLinger := func() {
		if linger != nil {
			linger.Stop()
			linger = nil
		}
	}
	defer stopLinger()
	var code []byte
	for {
		if code == nil {
			var lingered <-chan time.Time
			if linger != nil {
				lingered = linger.Chan()
			}
			select {
			case <-ctx.Done():
				return nil
			case <-lingered:
				linger = nil
				m.mu.Lock()
				m.status = Status{State: Idle, Handover: m.cfg.Handover, PendingAmount: m.pendingAmount}
				m.hub.Publish(Event{Kind: KindState, State: Idle})
				m.mu.Unlock()
				continue
			case code = <-m.next:
			}
		}
		stopLinger()
		s, err := m.newSale(code)
		code = nil
		if err != nil {
			m.log.Warn("scan dropped: no id for it", zap.Error(err)) // diskGuard tells why
			continue
		}
		if m.runSale(ctx, s); ctx.Err() != nil {
			return nil
		}
		code = s.replace
		linger = m.clock.NewTimer(m.cfg.Linger)
	}
}

// newSale starts a sale for a scanned payload (already validated). Its
// first record is written alongside the commit (a commit moves no money);
// runSale waits for both before the release.
func (m *sales) newSale(code []byte) (*sale, error) {
	qr, err := smartpay.ParseQR(code)
	if err != nil {
		return nil, err
	}
	now := m.clock.Now()
	id, err := m.j.IssueID(now)
	if err != nil {
		return nil, err
	}
	rec := journal.FirstSaleRecord(id, code, now)
	s := &sale{id: rec.ID, code: rec.Code, rec: rec, qr: qr, state: Committing, inputs: make(chan input, 8), written: make(chan error, 1)}
	go func() { s.written <- m.j.CreateSale(rec) }() // owned by runSale, which always receives
	m.mu.Lock()
	if m.cfg.FixedAmount > 0 {
		s.rec.Amount = m.cfg.FixedAmount
	} else if m.pendingAmount > 0 {
		s.rec.Amount, s.rec.Item = m.pendingAmount, m.pendingItem
		m.pendingAmount, m.pendingItem = 0, ""
	}
	s.asked = s.rec.Amount
	m.cur = s
	m.status = Status{State: Committing, SaleID: rec.ID, Amount: s.rec.Amount, Handover: m.cfg.Handover}
	m.hub.Publish(Event{Kind: KindState, State: Committing, SaleID: rec.ID, Amount: s.rec.Amount})
	m.mu.Unlock()
	m.log.Info("sale started", zap.String("kassa_purchase_id", rec.ID), zap.String("id_loyalty", qr.IDLoyalty))
	return s, nil
}

// recoveryState is the state an open journal record resumes in: the call
// its phase says may have been made is repeated, or the sale undone.
var recoveryState = map[journal.SalePhase]State{
	journal.SaleCommitting: Committing,
	journal.SaleCommitted:  Cancelling, // never released: nobody waits for it now
	journal.SalePaid:       Cancelling, // no hand-over recorded: the customer must not pay
	journal.SaleReleasing:  Checking,   // the release may or may not have arrived: ask
	journal.SaleReleased:   Paying,
	journal.SaleHandedOver: Confirming,
	// A vend approved and not failed: MDB counts a reset during the vend as
	// a success, and the machine has most likely dispensed.
	journal.SaleDispensing: Confirming,
	journal.SaleCancelling: Cancelling,
}

// recovered turns an open journal record into a sale to finish.
func (m *sales) recovered(rec journal.Sale) (*sale, error) {
	st, ok := recoveryState[rec.Phase]
	if !ok {
		return nil, fmt.Errorf("payment: sale %s in unknown phase %q", rec.ID, rec.Phase)
	}
	s := &sale{id: rec.ID, code: rec.Code, rec: rec, state: st, recovering: true, inputs: make(chan input, 8), reason: "recovered after restart"}
	if qr, err := smartpay.ParseQR(rec.Code); err == nil {
		s.qr = qr
	}
	if st == Paying || st == Checking {
		s.released = m.clock.Now()
		s.deadline = s.released.Add(m.cfg.Timeouts.Payment)
	}
	m.mu.Lock()
	m.cur = s
	m.status = Status{State: st, SaleID: rec.ID, PurchaseID: rec.PurchaseID, Amount: rec.Amount, Handover: m.cfg.Handover}
	m.hub.Publish(Event{Kind: KindState, State: st, SaleID: rec.ID, PurchaseID: rec.PurchaseID, Amount: rec.Amount, Message: s.reason})
	m.mu.Unlock()
	return s, nil
}

// runSale drives s to a terminal state. Each state names its action; the
// action returns a fact, decide picks the next state, enter records it.
// It returns early when ctx ends: the journal keeps the sale for the next
// start.
func (m *sales) runSale(ctx context.Context, s *sale) {
	defer func() {
		if s.written != nil {
			<-s.written
		}
		m.mu.Lock()
		m.cur = nil
		m.mu.Unlock()
	}()
	for !s.state.Terminal() {
		fc, info := m.act(ctx, s)
		if !m.firstWritten(ctx, s) || ctx.Err() != nil {
			return // the journal keeps the sale open (if it has it); the next start recovers it
		}
		m.drain(s)
		fc.haveAmount = s.rec.Amount > 0
		fc.cancel = s.cancel
		fc.auto = m.cfg.Handover == HandoverAuto
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
			m.await(ctx, s, backoff(s.tries), false)
		}
		// While the journal cannot be written the sale waits here, its
		// next call not made, and the hosts waiting for it are answered
		// only once it is on disk.
		if !retryWrite(ctx, m.clock, func() error { return m.enter(s, next, info) }) {
			return
		}
		for _, ack := range s.acks {
			if ack != nil {
				ack <- s.state // cap 1, one send per request
			}
		}
		s.acks = nil
	}
}

// firstWritten waits for the sale's first record, written alongside the
// commit, before anything the commit leads to; a write that failed is
// repeated until it is on disk. False when ctx ended first.
func (m *sales) firstWritten(ctx context.Context, s *sale) bool {
	if s.written == nil {
		return true
	}
	err := <-s.written
	s.written = nil
	if err == nil {
		return true
	}
	first := s.rec
	first.Phase = journal.SaleCommitting
	return retryWrite(ctx, m.clock, func() error { return m.j.CreateSale(first) })
}

// act makes the call (or the wait) s's state names.
func (m *sales) act(ctx context.Context, s *sale) (fact, stepInfo) {
	switch s.state {
	case Committing:
		return m.call(ctx, func(ctx context.Context) (fact, stepInfo, error) {
			resp, err := m.svc.Commit(ctx, smartpay.CommitRequest{KassaPurchaseID: s.rec.ID, QR: s.qr})
			return fact{kind: fCommitted}, stepInfo{id: resp.PurchaseID}, err
		})
	case WaitingAmount, Paid, Dispensing: // Paid only when a host hands over: auto goes on to Confirming
		if s.cancel {
			return fact{kind: fCancel}, stepInfo{}
		}
		fc, _ := m.await(ctx, s, -1, true)
		return fc, stepInfo{}
	case Releasing:
		fc, info := m.call(ctx, func(ctx context.Context) (fact, stepInfo, error) {
			resp, err := m.svc.Release(ctx, s.rec.PurchaseID, s.rec.Amount)
			if err == nil && resp.Status.Final() {
				return fact{kind: fStatus, status: resp.Status}, stepInfo{}, nil
			}
			return fact{kind: fReleased}, stepInfo{}, err
		})
		if fc.kind == fRejected && s.reason == "" {
			s.reason = info.message
		}
		return fc, info
	case Paying, Checking:
		return m.doPoll(ctx, s)
	case Confirming:
		return m.call(ctx, func(ctx context.Context) (fact, stepInfo, error) {
			return fact{kind: fConfirmed}, stepInfo{}, m.svc.KassaStatus(ctx, s.rec.PurchaseID, smartpay.KassaSuccess)
		})
	case Cancelling:
		return m.call(ctx, func(ctx context.Context) (fact, stepInfo, error) {
			return fact{kind: fCancelAcked}, stepInfo{}, m.svc.KassaStatus(ctx, s.rec.PurchaseID, smartpay.KassaCancel)
		})
	}
	return fact{}, stepInfo{}
}

// call makes one service call of a sale (callService).
func (m *sales) call(ctx context.Context, do func(context.Context) (fact, stepInfo, error)) (fact, stepInfo) {
	return callService(ctx, m.cfg.Timeouts.Call, do, fact{kind: fRejected}, fact{kind: fUnknown})
}

// stepInfo carries what an action learned, for the journal and the event.
type stepInfo struct {
	id      string // the id the service gave: a commit's purchase_id, a refund's refund_id
	code    int
	message string
	err     error
}

// enter moves s to next: journal first (before the call next leads to),
// then the log line and the event. It is the only place that changes
// s.state. When the journal cannot be written it returns an error and
// leaves s as it was: making the call without its record would leave
// recovery blind, so the flow stops instead.
func (m *sales) enter(s *sale, next State, info stepInfo) error {
	prev := s.state
	if info.id != "" {
		s.rec.PurchaseID = info.id
	}
	if info.code != 0 || info.message != "" {
		s.rec.SvcCode, s.rec.SvcMessage = info.code, info.message
	}
	if next == prev {
		return nil
	}
	s.tries = 0
	now := m.clock.Now()
	switch next {
	case WaitingAmount:
		s.deadline = now.Add(m.cfg.Timeouts.Amount)
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
			s.deadline = now.Add(m.cfg.Timeouts.Payment)
		}
	case Paid, Dispensing:
		s.deadline = now.Add(m.cfg.Timeouts.Handover)
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
		if err := m.j.PutSale(rec, m.receipts.forSale(rec)...); err != nil {
			return fmt.Errorf("payment: sale %s: %w", s.rec.ID, err) // diskGuard tells
		}
		s.rec = rec
		if next == Completed && m.receipts.enabled() {
			m.receipts.wake()
		}
	}
	s.state = next
	fields := []zap.Field{zap.String("kassa_purchase_id", s.rec.ID), zap.String("purchase_id", s.rec.PurchaseID), zap.Int64("amount", s.rec.Amount)}
	if info.err != nil {
		fields = append(fields, zap.NamedError("cause", info.err))
	}
	cancelling := next == Cancelling || next == Cancelled
	if s.reason != "" && cancelling {
		fields = append(fields, zap.String("reason", s.reason))
	}
	m.log.Info(prev.String()+" -> "+next.String(), fields...)

	msg := info.message
	if msg == "" && cancelling {
		msg = s.reason
	}
	m.mu.Lock()
	if next.Terminal() {
		m.lastDone = s.rec
	}
	if next == Confirming {
		m.confirming = s.rec
	}
	close(m.changed)
	m.changed = make(chan struct{})
	m.status = Status{State: next, SaleID: s.rec.ID, PurchaseID: s.rec.PurchaseID, Amount: s.rec.Amount,
		Code: s.rec.SvcCode, Message: msg, Handover: m.cfg.Handover, PendingAmount: m.pendingAmount}
	m.hub.Publish(Event{Kind: KindState, State: next, SaleID: s.rec.ID, PurchaseID: s.rec.PurchaseID,
		Amount: s.rec.Amount, Code: s.rec.SvcCode, Message: msg})
	m.mu.Unlock()
	return nil
}
