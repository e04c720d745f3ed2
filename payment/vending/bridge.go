package vending

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/payment"
)

// Bridge makes a vending machine a host of the payment flow, beside the
// local API: the machine's vend request sets the sale's price and product,
// the payment's success approves the vend, and the machine's vend result is
// the hand-over. One goroutine (Run) owns its state; decide (bridge_state.go)
// picks each next step and enter carries it out.
//
// The order of one paid vend, and what a crash of kioskd leaves behind:
//
//	vend request        SetAmount(price, product)    the display shows both
//	payment Paid        price == asked == paid?      else Deny + Cancel
//	                    Dispense (journaled)         from here a restart confirms
//	                    Approve: C,VEND
//	vend success        Handover(true)               kassa/status success
//	vend failure        Handover(false)              kassa/status cancel: reversed
//	no result           Handover(true)               MDB: approved, not failed = sold
//
// Why no result counts as sold: once C,VEND is written the machine drops the
// product unless it reports a failure; MDB itself counts a reader reset
// between Vend Approved and Vend Success as a success, and an adapter that
// is unplugged, rebooted or silent during the vend leaves exactly that
// situation. The journal's Dispensing record (the price and the product)
// is what a restart needs to confirm the same way. A failure that the
// machine reports while kioskd is down is lost with that choice: the
// README's "Vending machines" section weighs it.
type Bridge struct {
	host    payment.Host
	machine Machine
	log     *zap.Logger
	opts    BridgeOptions

	mu       sync.Mutex // guards what Screen reads
	selected *Vend      // the vend being priced or paid, for the display
	returned string     // the last sale whose payment is reversed because nothing was dispensed

	v         vend      // owned by Run's goroutine
	flowSale  string    // the flow's current sale and when it started, from its events
	flowStart time.Time //
}

// BridgeOptions tune a Bridge. The zero value gives the defaults.
type BridgeOptions struct {
	// AnswerWithin is how long the machine waits for an answer to a vend
	// request (vending.Settings.AnswerWithin); a payment that succeeds
	// later than AnswerWithin - ApproveMargin after the request is not
	// approved but reversed, because the machine may give up while C,VEND
	// is on its way. 0: no limit.
	AnswerWithin  time.Duration
	ApproveMargin time.Duration // default 1 s
	// RetryEvery is how often a price the flow was too busy to take is
	// offered again. Default 200 ms.
	RetryEvery time.Duration
	// Observer gets every vend's outcome and the machine's status.
	Observer Observer
}

// Observer learns what the bridge does, for metrics and health. Its
// methods are called on the bridge's goroutine and must not block.
type Observer interface {
	// VendEnded: a vend request ended with o.
	VendEnded(o Outcome)
	// Approved: a vend was approved (C,VEND written) took after its QR was
	// scanned.
	Approved(took time.Duration)
	// MachineStatus: the adapter's or the reader's state changed.
	MachineStatus(s Status)
}

type nopObserver struct{}

func (nopObserver) VendEnded(Outcome)      {}
func (nopObserver) Approved(time.Duration) {}
func (nopObserver) MachineStatus(Status)   {}

// NewBridge returns a bridge between host (the payment flow) and machine.
// Nothing happens until Run.
func NewBridge(host payment.Host, machine Machine, log *zap.Logger, opts BridgeOptions) *Bridge {
	if opts.ApproveMargin <= 0 {
		opts.ApproveMargin = time.Second
	}
	if opts.RetryEvery <= 0 {
		opts.RetryEvery = 200 * time.Millisecond
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Bridge{host: host, machine: machine, log: log, opts: opts}
}

// Run serves the machine's vend requests until ctx ends. The machine's
// adapter runs on its own (its Run); Run only reads its events. It returns
// nil when ctx ends.
func (b *Bridge) Run(ctx context.Context) error {
	flowEvents, stop := b.host.Subscribe()
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	machineEvents := make(chan Event)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owned by Run: ends with ctx
		defer wg.Done()
		b.pump(ctx, machineEvents)
	}()
	defer func() {
		cancel()
		wg.Wait()
	}()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		var f fact
		// The flow's events first: a vend request must find every state
		// the flow published before it, so an old sale is never taken
		// for the new request's.
		select {
		case ev := <-flowEvents:
			f = b.flowFact(ev)
		default:
			select {
			case <-ctx.Done():
				return nil
			case ev := <-flowEvents:
				f = b.flowFact(ev)
			case ev := <-machineEvents:
				var ok bool
				if f, ok = b.machineFact(ev); !ok {
					continue
				}
			case <-retry.C:
				f = fact{kind: fRetry}
			}
		}
		if f.kind == fSale && f.ev.Kind != payment.KindState {
			continue
		}
		f.now = time.Now()
		b.step(ctx, f)
		if b.v.phase == phasePricing {
			retry.Reset(b.opts.RetryEvery)
		} else {
			retry.Stop()
		}
	}
}

// pump hands the machine's events to Run until ctx ends.
func (b *Bridge) pump(ctx context.Context, out chan<- Event) {
	for {
		ev, err := b.machine.Next(ctx)
		if err != nil {
			return
		}
		select {
		case out <- ev:
		case <-ctx.Done():
			return
		}
	}
}

// flowFact notes which sale the flow runs and turns ev into a fact.
func (b *Bridge) flowFact(ev payment.Event) fact {
	if ev.Kind == payment.KindState && ev.State == payment.Committing && ev.SaleID != b.flowSale {
		b.flowSale, b.flowStart = ev.SaleID, ev.Time
	}
	started := ev.Time
	if ev.SaleID == b.flowSale {
		started = b.flowStart
	}
	return fact{kind: fSale, ev: ev, started: started}
}

// machineFact turns a machine event into a fact; ok is false for events
// that only inform (status, resets, adapter errors, the device's own
// denials).
func (b *Bridge) machineFact(ev Event) (fact, bool) {
	switch e := ev.(type) {
	case VendRequest:
		var deadline time.Time
		if b.opts.AnswerWithin > 0 {
			deadline = e.At.Add(b.opts.AnswerWithin - b.opts.ApproveMargin)
		}
		return fact{kind: fRequest, req: e.Vend, deadline: deadline}, true
	case SessionCancelled:
		b.log.Info("vending: the machine ended the vend request", zap.Uint64("vend", e.ID), zap.Stringer("cause", e.Cause))
		return fact{kind: fGone}, true
	case VendSuccess:
		return fact{kind: fResult, ok: true, byRule: e.ByVMCReset}, true
	case VendFailure:
		b.log.Warn("vending: the machine could not dispense", zap.Uint64("vend", e.ID), zap.Int("item", e.Item), zap.String("reason", e.Reason))
		return fact{kind: fResult}, true
	case VendResultUnknown:
		b.log.Warn("vending: the vend result cannot be known; counting the vend as dispensed, as MDB does",
			zap.Uint64("vend", e.ID), zap.Int("item", e.Item), zap.Int64("amount", e.Amount), zap.Stringer("cause", e.Cause))
		return fact{kind: fResult, ok: true, byRule: true}, true
	case VendDenied:
		// The device denied it itself (C,STOP sent): nothing was priced.
		b.log.Warn("vending: vend request refused", zap.Int("item", e.Item), zap.Int64("amount", e.Amount),
			zap.Stringer("cause", e.Cause), zap.String("detail", e.Detail))
		b.opts.Observer.VendEnded(OutcomeRefused)
	case StatusChanged:
		b.opts.Observer.MachineStatus(e.Status)
	case Reset:
		b.log.Info("vending: reader reset", zap.Stringer("by", e.By))
	case AdapterError:
		// Logged by the device; never a vend result.
	}
	return fact{}, false
}

// step applies f and the facts its own calls lead to.
func (b *Bridge) step(ctx context.Context, f fact) {
	for {
		prev := b.v
		next, s := decide(prev, f)
		b.v = next
		if prev.phase != next.phase {
			b.log.Info("vending: "+prev.phase.String()+" -> "+next.phase.String(), b.fields(prev, next)...)
		}
		var more bool
		if f, more = b.enter(ctx, prev, next, s); !more {
			return
		}
	}
}

// fields name the vend (the one ending, or the next) in log lines.
func (b *Bridge) fields(prev, next vend) []zap.Field {
	v := next
	if next.phase == phaseIdle {
		v = prev
	}
	fs := []zap.Field{zap.Uint64("vend", v.req.ID), zap.Int("item", v.req.Item), zap.Int64("price", v.req.Amount)}
	if v.sale != "" {
		fs = append(fs, zap.String("kassa_purchase_id", v.sale))
	}
	return fs
}

// enter carries out s, the step from prev to next: the display's view
// first, then the calls in order. A call whose result decide needs
// (SetAmount, Dispense and Approve) ends the step with that result as the
// next fact (more).
func (b *Bridge) enter(ctx context.Context, prev, next vend, s step) (f fact, more bool) {
	b.mu.Lock()
	if s.returned && prev.sale != "" {
		b.returned = prev.sale
	}
	switch {
	case next.phase == phaseIdle:
		b.selected = nil
	case next.req.ID != prev.req.ID || b.selected == nil:
		req := next.req
		b.selected = &req
	}
	b.mu.Unlock()
	if s.ended {
		log := b.log.Info
		if s.outcome != OutcomeVended && s.outcome != OutcomeCancelled && s.outcome != OutcomeDeclined {
			log = b.log.Warn
		}
		log("vending: vend ended: "+s.why, append(b.fields(prev, next), zap.Stringer("outcome", s.outcome))...)
		b.opts.Observer.VendEnded(s.outcome)
	} else if s.why != "" {
		b.log.Warn("vending: "+s.why, b.fields(prev, next)...)
	}
	for _, a := range s.acts {
		// A call acts on the vend it was decided for: the one just ended,
		// or the one going on.
		v := next
		if next.phase == phaseIdle || a == actCancel && next.req.ID != prev.req.ID {
			v = prev
		}
		switch a {
		case actPrice:
			return b.price(ctx, v), true
		case actVend:
			return b.approve(ctx, v), true
		case actDeny:
			if err := b.machine.Deny(ctx, v.req.ID); err != nil && !errors.Is(err, ErrNotPending) {
				b.log.Warn("vending: denying the vend failed", zap.Uint64("vend", v.req.ID), zap.Error(err))
			}
		case actCancel:
			if err := b.host.Cancel(ctx); err != nil && !errors.Is(err, payment.ErrWrongState) {
				b.log.Warn("vending: cancelling the sale failed", zap.String("kassa_purchase_id", v.sale), zap.Error(err))
			}
		case actConfirm:
			b.handover(ctx, v, true)
		case actReturn:
			b.handover(ctx, v, false)
		}
	}
	return fact{}, false
}

// price offers the vend's price and product to the flow: for the next QR,
// or the sale whose QR came first.
func (b *Bridge) price(ctx context.Context, v vend) fact {
	err := b.host.SetAmount(ctx, v.req.Amount, v.req.Product)
	switch {
	case err == nil:
		return fact{kind: fPriced}
	case errors.Is(err, payment.ErrWrongState), errors.Is(err, payment.ErrNotRunning), errors.Is(err, payment.ErrTimeout):
		b.log.Debug("vending: the flow cannot take the price yet", zap.Error(err))
		return fact{kind: fBusy}
	}
	b.log.Warn("vending: the flow refused the price", zap.Int64("price", v.req.Amount), zap.Error(err))
	return fact{kind: fUnpayable}
}

// approve journals the hand-over as begun, then approves the vend. Only
// this order is safe: approved first, a crash before the journal write
// would cancel a payment for a product the machine drops.
func (b *Bridge) approve(ctx context.Context, v vend) fact {
	if err := b.host.Dispense(ctx, v.amount); err != nil {
		b.log.Warn("vending: the flow did not record the hand-over; not approving", zap.String("kassa_purchase_id", v.sale), zap.Error(err))
		return fact{kind: fNotApproved}
	}
	if err := b.machine.Approve(ctx, v.req.ID, v.amount); err != nil {
		b.log.Warn("vending: approving the vend failed", zap.Uint64("vend", v.req.ID), zap.Error(err))
		return fact{kind: fNotApproved}
	}
	if !v.started.IsZero() {
		b.opts.Observer.Approved(time.Since(v.started))
	}
	b.log.Info("vending: vend approved", zap.Uint64("vend", v.req.ID), zap.Int("item", v.req.Item),
		zap.Int64("amount", v.amount), zap.String("kassa_purchase_id", v.sale))
	return fact{kind: fApproved}
}

// handover reports the vend's result to the flow. A failure the flow can
// no longer take (it confirmed the payment when the machine stayed silent
// past timeouts.handover) is refunded instead.
func (b *Bridge) handover(ctx context.Context, v vend, ok bool) {
	err := b.host.Handover(ctx, ok)
	if err == nil {
		return
	}
	// After Dispense the flow leaves its hand-over wait only by a result
	// or, with none in time, by confirming: a refused failure means the
	// payment was confirmed.
	if ok || !errors.Is(err, payment.ErrWrongState) || v.purchase == "" {
		b.log.Error("vending: reporting the vend result failed", zap.Bool("dispensed", ok), zap.String("kassa_purchase_id", v.sale), zap.Error(err))
		return
	}
	info, rerr := b.host.Refund(ctx, payment.RefundRequest{PurchaseID: v.purchase, Amount: v.amount, RequestID: "vend-failed-" + v.sale})
	if rerr != nil {
		b.log.Error("vending: the vend failed after the payment was confirmed, and the refund was refused; refund it by hand",
			zap.String("purchase_id", v.purchase), zap.Int64("amount", v.amount), zap.Error(rerr))
		return
	}
	b.log.Warn("vending: the vend failed after the payment was confirmed: refunding it",
		zap.String("purchase_id", v.purchase), zap.String("kassa_refund_id", info.ID))
}

// Screen is what the customer display shows for ev (payment.Event.Screen
// with the vending screens): the product and price of a selection waiting
// for its QR, and a payment returned because nothing was dispensed.
func (b *Bridge) Screen(ev payment.Event) (display.Screen, bool) {
	b.mu.Lock()
	selected, returned := b.selected, b.returned
	b.mu.Unlock()
	switch {
	case ev.Kind == payment.KindAmount && ev.Amount > 0 && selected != nil && ev.Amount == selected.Amount,
		// The last sale's screen ends while the next selection waits.
		ev.Kind == payment.KindState && ev.State == payment.Idle && selected != nil:
		return display.Screen{State: display.Selected, Amount: selected.Amount, Product: selected.Product}, true
	case ev.Kind == payment.KindAmount && ev.Amount == 0:
		return display.Screen{State: display.Ready}, true // the selection was given up
	case ev.Kind == payment.KindState && ev.State == payment.Cancelled && ev.SaleID != "" && ev.SaleID == returned:
		return display.Screen{State: display.VendFailed, Amount: ev.Amount}, true
	}
	return ev.Screen()
}
