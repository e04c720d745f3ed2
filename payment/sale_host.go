package payment

import (
	"context"
	"errors"
	"fmt"

	"github.com/kioskd/kioskd/payment/fiscal"
	"github.com/kioskd/kioskd/payment/journal"
)

// The sale machine's side of the host operations: each checks the state
// under the lock and hands the running sale an input, which its goroutine
// acts on.

// offer hands a validated payment QR to the machine: while idle it becomes
// the next sale; a different QR scanned before the release replaces the
// current sale; anything else is reported busy. It never blocks.
func (m *sales) offer(code []byte, source string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.running {
		m.hub.Publish(Event{Kind: KindBusy, Source: source, Message: "not running"})
		return
	}
	s := m.cur
	if err := m.disk.problem(); err != nil {
		// No sale may start without its record: the display shows the
		// terminal out of order, health says why.
		m.hub.Publish(Event{Kind: KindFault, Source: source, Message: err.Error()})
		return
	}
	if s == nil {
		select {
		case m.next <- code:
		default:
			m.hub.Publish(Event{Kind: KindBusy, Source: source})
		}
		return
	}
	if !s.recovering && unreleased(m.status.State) && string(code) != string(s.code) {
		select {
		case s.inputs <- input{kind: fCancel, replace: code, reason: "replaced by another QR"}:
			m.hub.Publish(Event{Kind: KindReplaced, Source: source, SaleID: s.id})
			return
		default:
		}
	}
	m.hub.Publish(Event{Kind: KindBusy, Source: source, SaleID: s.id})
}

// republish shows the current state again (after a fault screen).
func (m *sales) republish() {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.status
	m.hub.Publish(Event{Kind: KindState, State: st.State, SaleID: st.SaleID, PurchaseID: st.PurchaseID, Amount: st.Amount, Code: st.Code, Message: st.Message})
}

// unreleased reports whether a sale in st has not released any money yet.
func unreleased(st State) bool { return st == Committing || st == WaitingAmount }

// sendLocked delivers in to the current sale if ok(state) holds.
func (m *sales) sendLocked(in input, ok func(State) bool) error {
	if !m.running {
		return ErrNotRunning
	}
	if m.cur == nil || m.cur.recovering || !ok(m.status.State) {
		return fmt.Errorf("%w: %s", ErrWrongState, m.status.State)
	}
	select {
	case m.cur.inputs <- in:
		return nil
	default:
		return fmt.Errorf("%w: too many requests", ErrWrongState)
	}
}

// setAmount sets the amount of the current sale, or of the next one when
// no QR has been scanned yet, and what it buys (item, for the kassa's own
// receipt; may be empty). The amount of a sale is set once: the same
// amount again succeeds for as long as the sale runs (a host's retry), a
// different one is refused.
func (m *sales) setAmount(amount int64, item string) error {
	if amount <= 0 {
		return fmt.Errorf("%w: amount must be positive", ErrInvalid)
	}
	if m.cfg.FixedAmount > 0 {
		return fmt.Errorf("%w: the kassa has a fixed amount", ErrWrongState)
	}
	if item != "" {
		// Checked now: a name the ККТ cannot take would hold up the receipt queue.
		if err := fiscal.CheckName(item); err != nil {
			return fmt.Errorf("%w: item: %w", ErrInvalid, err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running && m.cur == nil {
		m.pendingAmount, m.pendingItem = amount, item
		m.status.PendingAmount = amount
		m.hub.Publish(Event{Kind: KindAmount, State: m.status.State, Amount: amount})
		return nil
	}
	if cur := m.cur; m.running && cur != nil && !cur.recovering && cur.asked > 0 {
		if cur.asked == amount {
			return nil // a host's repeat (a lost answer, a copy sent at once), in any state of the sale
		}
		return fmt.Errorf("%w: the sale's amount is already %d", ErrWrongState, cur.asked)
	}
	if err := m.sendLocked(input{kind: fAmount, amount: amount, item: item}, unreleased); err != nil {
		return err
	}
	m.cur.asked = amount
	return nil
}

// cancel cancels the current sale (or the amount waiting for a scan).
func (m *sales) cancel(reason string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running && m.cur == nil && m.pendingAmount > 0 {
		m.pendingAmount, m.pendingItem = 0, ""
		m.status.PendingAmount = 0
		m.hub.Publish(Event{Kind: KindAmount, State: m.status.State})
		return nil
	}
	return m.sendLocked(input{kind: fCancel, reason: reason}, func(s State) bool {
		return !s.Terminal() && s != Idle && s != Confirming && s != Dispensing
	})
}

// handover reports whether the goods were handed over (ok) or not after
// the payment succeeded; not handed over cancels the payment. It returns
// once the hand-over is in the journal, so a crash after the host was told
// "done" can no longer cancel a payment for goods that were given.
func (m *sales) handover(ctx context.Context, ok bool) error {
	if m.cfg.Handover == HandoverAuto {
		return fmt.Errorf("%w: hand-over mode is auto", ErrWrongState)
	}
	m.mu.Lock()
	repeat := ok && m.running && (m.status.State == Confirming || m.status.State == Completed)
	m.mu.Unlock()
	if repeat {
		return nil // the host's retry of a hand-over already recorded
	}
	st, err := m.ask(ctx, input{kind: fHandover, ok: ok}, awaitsHost, func(st State) bool {
		if ok {
			return st == Confirming || st == Completed
		}
		return st == Cancelling || st == Cancelled
	})
	if err != nil {
		return err
	}
	if done := st == Confirming || st == Completed; ok != done {
		// ok: the hand-over timeout won the race and the payment is
		// being cancelled; !ok: a hand-over already confirmed it.
		return fmt.Errorf("%w: %s", ErrWrongState, st)
	}
	return nil
}

// dispense records that the host began handing the goods over for the
// paid sale of amount kopecks (a vending machine told to vend). It returns
// once that is journaled: from then on a crash confirms the payment rather
// than cancelling it.
func (m *sales) dispense(ctx context.Context, amount int64) error {
	if m.cfg.Handover == HandoverAuto {
		return fmt.Errorf("%w: hand-over mode is auto", ErrWrongState)
	}
	m.mu.Lock()
	st, paidAmount := m.status.State, m.status.Amount
	m.mu.Unlock()
	if (st == Paid || st == Dispensing) && amount != paidAmount {
		return fmt.Errorf("%w: the goods cost %d, the payment is %d", ErrInvalid, amount, paidAmount)
	}
	if st == Dispensing {
		return nil // a repeat
	}
	st, err := m.ask(ctx, input{kind: fDispense}, func(s State) bool { return s == Paid }, func(s State) bool { return s == Dispensing })
	if err != nil {
		return err
	}
	if st != Dispensing {
		return fmt.Errorf("%w: %s", ErrWrongState, st) // the hand-over timeout won the race
	}
	return nil
}

// ask delivers in to the current sale if allowed(state) holds and waits
// until the state it leads to is journaled; it returns that state. A copy
// of a request already being applied (the host sent it twice at once)
// waits for the same: it is answered as soon as the sale has entered a
// state that settles it (settled), even while its own input still waits
// behind a call in flight.
func (m *sales) ask(ctx context.Context, in input, allowed, settled func(State) bool) (State, error) {
	in.ack = make(chan State, 1)
	m.mu.Lock()
	id := ""
	if m.cur != nil {
		id = m.cur.id
	}
	err := m.sendLocked(in, allowed)
	m.mu.Unlock()
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Timeouts.Call)
	defer cancel()
	for {
		m.mu.Lock()
		st, sameSale, changed := m.status.State, m.status.SaleID == id, m.changed
		m.mu.Unlock()
		if sameSale && settled(st) {
			return st, nil
		}
		select {
		case st := <-in.ack:
			return st, nil
		case <-changed:
		case <-ctx.Done():
			return 0, fmt.Errorf("%w: the request was not journaled within %v; ask the state before repeating it", ErrTimeout, m.cfg.Timeouts.Call)
		}
	}
}

// cancelUnreleased cancels the current sale if it has not been released,
// for a customer who paid another way, and returns it. Once the cancel is
// queued the sale can no longer be released (decide cancels it).
func (m *sales) cancelUnreleased(reason string) (id string, code []byte, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := m.cur
	if err := m.sendLocked(input{kind: fCancel, reason: reason}, unreleased); err != nil {
		return "", nil, err
	}
	return cur.id, cur.code, nil
}

// saleOf returns the journal record of the sale the service knows as
// purchaseID; empty means the last sale that ended, or the one being
// confirmed. ErrNotFound once the journal no longer has it.
func (m *sales) saleOf(purchaseID string) (journal.Sale, error) {
	m.mu.Lock()
	last := m.lastDone
	if m.cur != nil && m.status.State == Confirming {
		last = m.confirming
	}
	m.mu.Unlock()
	if purchaseID == "" || purchaseID == last.PurchaseID {
		if last.PurchaseID == "" {
			return journal.Sale{}, fmt.Errorf("%w: no sale yet", ErrNotFound)
		}
		return last, nil
	}
	s, err := m.j.SaleByPurchase(purchaseID)
	if errors.Is(err, journal.ErrNotFound) {
		return journal.Sale{}, fmt.Errorf("%w: purchase %s is not in the journal", ErrNotFound, purchaseID)
	}
	return s, err
}

// paid reports whether the sale in rec was paid and handed over.
func paid(rec journal.Sale) bool {
	return rec.Outcome == Completed.String() || rec.Phase == journal.SaleHandedOver
}

// snapshot is the machine's part of the flow's Status.
func (m *sales) snapshot() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.status
	st.PendingAmount, st.Ready = m.pendingAmount, m.ready
	return st
}
