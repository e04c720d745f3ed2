package payment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

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

// Host is everything a host — the kiosk application over the local API,
// or the vending machine's controller — can ask of the kassa. Each
// operation takes the caller's context and returns ErrInvalid,
// ErrWrongState, ErrNotRunning, ErrTimeout, ErrNotFound or a
// *ServiceError, so every adapter answers alike. *Flow implements it.
type Host interface {
	// Snapshot is the current sale and the flow's readiness.
	Snapshot() Status
	// Subscribe streams every event from now on; call the func to stop.
	Subscribe() (<-chan Event, func())
	// Scan hands over a payload read by a scanner the host owns.
	Scan(ctx context.Context, data []byte, source string)
	// SetAmount sets the amount (kopecks) of the current sale, or of the
	// next scanned QR, and what it buys (the item named on the kassa's
	// own receipt; empty: the configured default).
	SetAmount(ctx context.Context, amount int64, item string) error
	// Cancel cancels the current sale, or the amount waiting for a scan.
	Cancel(ctx context.Context) error
	// Dispense says the goods are being handed over (a vending machine
	// told to vend the paid amount); from its return a crash confirms the
	// payment, as MDB counts a reset during a vend as a success.
	Dispense(ctx context.Context, amount int64) error
	// Handover says whether the goods reached the customer; it returns
	// once that is journaled.
	Handover(ctx context.Context, ok bool) error
	// PaidElsewhere ends the unreleased sale because the customer paid
	// another way; the receipt goes to v2 fiscal with the scanned QR.
	PaidElsewhere(ctx context.Context, receipt json.RawMessage) error
	// Fiscal queues the fiscal record of a paid sale.
	Fiscal(ctx context.Context, d FiscalData) error
	// Refund refunds (part of) a paid purchase.
	Refund(ctx context.Context, r RefundRequest) (RefundInfo, error)
	// RefundInfo returns a refund's progress by kassa_refund_id.
	RefundInfo(ctx context.Context, id string) (RefundInfo, error)
}

var _ Host = (*Flow)(nil)

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
	Refunds       int    `json:"refunds"`        // refunds not finished
	// FiscalLostAnswers counts fiscal sends that got no answer since start
	// (each may be a copy at the service), FiscalUnconfirmed the records
	// then given up (MaxFiscalLostAnswers).
	FiscalLostAnswers uint64 `json:"fiscal_lost_answers"`
	FiscalUnconfirmed uint64 `json:"fiscal_unconfirmed"`
	// ReceiptsPending are the kassa's own receipts not yet confirmed by the
	// ККТ, and ReceiptProblem why the oldest is stuck (or the shift is not
	// kept); both zero without a fiscal provider.
	ReceiptsPending int    `json:"receipts_pending"`
	ReceiptProblem  string `json:"receipt_problem,omitempty"`
	// JournalProblem is why the journal cannot be written (disk full,
	// failing): no sale starts until it can.
	JournalProblem string `json:"journal_problem,omitempty"`
}

// Flow runs the payments of one kassa. It is the composition of parts that
// each own their state and their goroutine (see the package doc); Flow
// itself only starts them and routes the host's requests.
type Flow struct {
	cfg      Config
	log      *zap.Logger
	j        *journal.Journal
	hub      *Hub
	intake   *intake
	sales    *sales
	refunds  *refunds
	fiscal   *forwarder
	receipts *receiptWriter
	warm     *warmer
	disk     *diskGuard

	mu        sync.Mutex
	started   bool
	toRecover int           // parts still recovering (sales, refunds)
	ready     chan struct{} // closed when none is
}

// New creates a flow over client svc and journal j. It does no I/O.
func New(cfg Config, svc Service, j *journal.Journal, log *zap.Logger) (*Flow, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	log = log.Named("payment").With(zap.String("kassa", cfg.KassaID))
	hub := newHub(cfg.Clock)
	disk := newDiskGuard(log, hub)
	j.OnWrite(disk.note)
	m := newSales(cfg, svc, j, log, hub)
	m.disk = disk
	disk.back = m.republish
	fw := newForwarder(cfg, svc, j, log, hub)
	rw := &receiptWriter{cfg: cfg.Receipts, clock: cfg.Clock, j: j, log: log, hub: hub, fw: fw, kick: make(chan struct{}, 1)}
	m.receipts = rw
	f := &Flow{
		cfg:       cfg,
		log:       log,
		j:         j,
		hub:       hub,
		sales:     m,
		intake:    &intake{window: cfg.DuplicateWindow, log: log, hub: hub, sales: m},
		refunds:   &refunds{cfg: cfg, svc: svc, j: j, log: log, hub: hub, receipts: rw, disk: disk},
		disk:      disk,
		fiscal:    fw,
		receipts:  rw,
		warm:      &warmer{svc: svc, timeout: cfg.Timeouts.Call, log: log, kick: make(chan struct{}, 1)},
		toRecover: 2,
		ready:     make(chan struct{}),
	}
	m.onRecovered, f.refunds.onRecovered = f.recovered, f.recovered
	return f, nil
}

// recovered is called once by each part that recovers the journal's open
// records, when it has.
func (f *Flow) recovered() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.toRecover--; f.toRecover == 0 {
		close(f.ready)
	}
}

// Ready is closed once the flow has recovered what the journal had open
// and takes new sales and refunds.
func (f *Flow) Ready() <-chan struct{} { return f.ready }

// Config returns the configuration with defaults applied.
func (f *Flow) Config() Config { return f.cfg }

// Run recovers the sales and refunds the journal has open, then runs sales
// until ctx ends. Every goroutine it starts has ended when it returns; the
// error is a journal failure (the flow cannot go on without its record).
func (f *Flow) Run(ctx context.Context) error {
	f.mu.Lock()
	if f.started {
		f.mu.Unlock()
		return errors.New("payment: Run called twice")
	}
	f.started = true
	f.mu.Unlock()

	f.sales.start()
	// Reserve kassa ids before the first sale, so its id needs no write.
	if err := f.j.Reserve(f.cfg.Clock.Now()); err != nil {
		f.log.Warn("journal: reserving kassa ids failed", zap.Error(err))
	}
	// The queues' counts are right from the start (Snapshot, health), not
	// from their goroutines' first pass.
	if _, err := f.fiscal.queue(); err != nil {
		f.log.Warn("journal: reading the fiscal queue failed", zap.Error(err))
	}
	_, _ = f.receipts.count() // a failure is logged; the writer reads again
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return f.fiscal.run(ctx) })
	g.Go(func() error { return f.receipts.run(ctx) })
	g.Go(func() error { return f.housekeep(ctx) })
	g.Go(func() error { return f.warm.run(ctx) })
	g.Go(func() error { return f.refunds.run(ctx) })
	g.Go(func() error { return f.sales.run(ctx) })
	return g.Wait()
}

// Snapshot returns the current state of the flow.
func (f *Flow) Snapshot() Status {
	st := f.sales.snapshot()
	st.FiscalPending, st.FiscalLostAnswers, st.FiscalUnconfirmed = f.fiscal.snapshot()
	open, ready := f.refunds.snapshot()
	st.Refunds, st.Ready = open, st.Ready && ready
	if err := f.disk.problem(); err != nil {
		st.JournalProblem = err.Error()
	}
	pending, problem := f.receipts.snapshot()
	st.ReceiptsPending = pending
	if problem != nil {
		st.ReceiptProblem = problem.Error()
	}
	return st
}

// FiscalHealth reports the fiscal records waiting for the service and the
// kassa's own receipts waiting for the ККТ, with why they wait.
func (f *Flow) FiscalHealth() FiscalHealth {
	var h FiscalHealth
	f.fiscal.health(&h)
	f.receipts.health(&h)
	return h
}

// Subscribe returns a channel of every event from now on and a function
// that ends the subscription (and closes the channel). A subscriber that
// does not keep up loses events rather than slowing the flow.
func (f *Flow) Subscribe() (<-chan Event, func()) { return f.hub.Subscribe() }

// Dropped is how many events were lost by subscribers that lagged.
func (f *Flow) Dropped() uint64 { return f.hub.Dropped() }

// Scan hands a decoded payload to the flow (see intake). It never blocks.
func (f *Flow) Scan(_ context.Context, data []byte, source string) {
	f.ScanAt(data, source, f.cfg.Clock.Now())
}

// ScanAt is Scan for a payload whose last byte arrived at at, as the
// scanners report it.
func (f *Flow) ScanAt(data []byte, source string, at time.Time) { f.intake.scan(data, source, at) }

// FrameStarted tells the flow a scanner began receiving a frame: it makes
// the service session ready (in the background, coalesced) so the commit
// does not pay for a handshake or a login.
func (f *Flow) FrameStarted() { f.warm.wake() }

// SetAmount sets the amount of the current or next sale (Host).
func (f *Flow) SetAmount(_ context.Context, amount int64, item string) error {
	return f.sales.setAmount(amount, item)
}

// Cancel cancels the current sale (Host).
func (f *Flow) Cancel(context.Context) error { return f.sales.cancel("cancelled by the host") }

// Dispense records that the paid sale's goods are being handed over (Host).
func (f *Flow) Dispense(ctx context.Context, amount int64) error {
	return f.sales.dispense(ctx, amount)
}

// Handover reports the hand-over of the paid sale (Host).
func (f *Flow) Handover(ctx context.Context, ok bool) error { return f.sales.handover(ctx, ok) }

// PaidElsewhere ends the current sale, not yet released, because the
// customer paid by another method: the commit is cancelled and the receipt
// is queued for v2 fiscal with the scanned QR (Host).
func (f *Flow) PaidElsewhere(_ context.Context, receipt json.RawMessage) error {
	if err := checkReceipt(receipt); err != nil {
		return err
	}
	id, code, err := f.sales.cancelUnreleased("paid by another method")
	if errors.Is(err, ErrWrongState) {
		return fmt.Errorf("%w: no unreleased sale", err)
	}
	if err != nil {
		return err
	}
	return f.journalErr(f.fiscal.enqueue(journal.Fiscal{Version: 2, SaleID: id, Code: code, Receipt: receipt}))
}

// journalErr names a journal that cannot be written as such (ErrJournal).
func (f *Flow) journalErr(err error) error {
	if p := f.disk.problem(); err != nil && p != nil {
		return p
	}
	return err
}

// Fiscal queues the fiscal record of a paid sale; it is forwarded until the
// service accepts it, across restarts (Host).
func (f *Flow) Fiscal(_ context.Context, d FiscalData) error {
	if f.receipts.enabled() {
		return fmt.Errorf("%w: the kassa issues its own fiscal receipts (fiscal.provider)", ErrWrongState)
	}
	if d.Receipt == nil && (!digits(d.KKTRegNumber, 16) || d.FiscalSign == "") {
		return fmt.Errorf("%w: kkt_reg_number (16 digits) and fiscal_sign are required", ErrInvalid)
	}
	if d.Receipt != nil {
		if err := checkReceipt(d.Receipt); err != nil {
			return err
		}
	}
	rec, err := f.sales.saleOf(d.PurchaseID)
	switch {
	case errors.Is(err, ErrNotFound) && d.PurchaseID != "" && d.Receipt == nil:
		// An older sale the journal no longer keeps: v1 needs only the
		// purchase id.
		rec = journal.Sale{PurchaseID: d.PurchaseID, Outcome: Completed.String()}
	case errors.Is(err, ErrNotFound) && d.PurchaseID != "":
		return fmt.Errorf("%w: v2 fiscal needs the sale's QR: %w", ErrInvalid, err)
	case err != nil && !errors.Is(err, ErrNotFound):
		return err
	}
	if !paid(rec) {
		return fmt.Errorf("%w: no paid sale to attach the fiscal data to", ErrWrongState)
	}
	fr := journal.Fiscal{Version: 1, SaleID: rec.ID, PurchaseID: rec.PurchaseID, KKTRegNumber: d.KKTRegNumber, FiscalSign: d.FiscalSign}
	if d.Receipt != nil {
		fr.Version, fr.Receipt, fr.Code = 2, d.Receipt, rec.Code
	}
	return f.journalErr(f.fiscal.enqueue(fr))
}

// Refund asks the service to refund a paid purchase (Host). A repeated
// request with the same RequestID gets the refund the first one made (its
// refusal again, if it was refused); the same key with another purchase or
// amount is ErrInvalid.
func (f *Flow) Refund(ctx context.Context, r RefundRequest) (RefundInfo, error) {
	select {
	case <-f.ready:
	default:
		// A sale being recovered may be the purchase to refund: until it
		// is confirmed the service would refuse, and the host would take
		// that for a final answer.
		return RefundInfo{}, fmt.Errorf("%w: recovery not finished", ErrNotRunning)
	}
	return f.refunds.request(ctx, r)
}

// RefundInfo returns the refund with kassa_refund_id id (Host).
func (f *Flow) RefundInfo(_ context.Context, id string) (RefundInfo, error) {
	return f.refunds.info(id)
}

// housekeep keeps the journal's id reservation ahead of the clock (so that
// issuing a sale's id needs no write) and deletes finished records older
// than the retention.
func (f *Flow) housekeep(ctx context.Context) error {
	compactEvery := min(f.cfg.Retention/4, time.Hour)
	t := f.cfg.Clock.NewTicker(min(journal.ReserveAhead/4, compactEvery))
	defer t.Stop()
	var compacted time.Time
	for {
		now := f.cfg.Clock.Now()
		if err := f.j.Reserve(now); err != nil {
			f.log.Warn("journal: reserving kassa ids failed", zap.Error(err))
		}
		if now.Sub(compacted) >= compactEvery {
			compacted = now
			if n, err := f.j.Compact(now.Add(-f.cfg.Retention)); err != nil {
				f.log.Warn("journal compaction failed", zap.Error(err))
			} else if n > 0 {
				f.log.Info("journal compacted", zap.Int("records", n))
			}
		}
		// While the journal cannot be written, probe it every few seconds:
		// sales resume on their own once it can (space freed, disk back).
		problem, changed := f.disk.watch()
		var probe clockwork.Timer
		var probed <-chan time.Time
		if problem != nil {
			probe = f.cfg.Clock.NewTimer(3 * time.Second)
			probed = probe.Chan()
		}
		select {
		case <-ctx.Done():
		case <-t.Chan():
		case <-changed:
		case <-probed:
			if f.j.Probe(f.cfg.Clock.Now()) == nil { // a failure reaches diskGuard itself
				f.disk.cleared()
			}
		}
		if probe != nil {
			probe.Stop()
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// warmer makes the service session ready when a frame starts, once for
// however many scanners report it at a time.
type warmer struct {
	svc     Service
	timeout time.Duration
	log     *zap.Logger
	kick    chan struct{} // cap 1
}

func (w *warmer) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *warmer) run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.kick:
		}
		cctx, cancel := context.WithTimeout(ctx, w.timeout)
		err := w.svc.Warm(cctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			w.log.Warn("warming the service session failed", zap.Error(err))
		}
		// Kicks that came during the warm-up were served by it.
		select {
		case <-w.kick:
		default:
		}
	}
}
