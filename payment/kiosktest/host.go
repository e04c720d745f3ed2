package kiosktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/kioskd/kioskd/payment"
	sp "github.com/kioskd/kioskd/payment/smartpay"
)

// Scripts: what a host does in one sale. The amount decides the simulator's
// outcome (ending in 51 kopecks: declined).
const (
	ScriptPaid          = "paid"              // amount first, scan, paid, hand-over, fiscal v1
	ScriptPaidLate      = "paid-amount-after" // scan, then the amount; paid, hand-over, fiscal v2
	ScriptDeclined      = "declined"          // the service declines the payment
	ScriptCancel        = "cancel"            // scan, the customer walks away: cancel before the amount
	ScriptPaidElsewhere = "paid-elsewhere"    // scan, then the customer pays another way
	ScriptNotHandedOver = "not-handed-over"   // paid, the goods could not be given: hand-over false
)

// ErrAgentGone is a script stopped because the agent stopped answering (it
// was killed, or the power went).
var ErrAgentGone = errors.New("kiosktest: the agent stopped answering")

// Host sells through the API and keeps the Ledger.
type Host struct {
	API    *Client
	Ledger *Ledger
	// QR makes a fresh payload for a QR user (the simulator's app keys).
	QR func(user string) (string, error)
	// Feed delivers a payload to the agent; nil is POST /v1/scan. A test
	// with a pty scanner writes it to the serial line instead.
	Feed func(ctx context.Context, payload string) error
	// Wake, from Client.Watch, makes waits look again as soon as an event
	// arrives; nil leaves them to Poll.
	Wake <-chan struct{}
	Poll time.Duration // state poll interval [50ms]
	Step time.Duration // bound of each wait for the agent [30s]

	lastSale string // the kassa_purchase_id of the sale being made
}

func (h *Host) wait(ctx context.Context, ok func(payment.Status) bool) (payment.Status, error) {
	poll, step := h.Poll, h.Step
	if poll <= 0 {
		poll = 50 * time.Millisecond
	}
	if step <= 0 {
		step = 30 * time.Second
	}
	wctx, cancel := context.WithTimeout(ctx, step)
	defer cancel()
	st, err := h.API.WaitState(wctx, poll, h.Wake, ok)
	if err != nil && ctx.Err() == nil && StatusOf(err) == 0 {
		return st, fmt.Errorf("%w: %w", ErrAgentGone, err)
	}
	return st, err
}

// Idle waits until no sale is running, so a scan starts a new one.
func (h *Host) Idle(ctx context.Context) error {
	_, err := h.idle(ctx)
	return err
}

func (h *Host) idle(ctx context.Context) (payment.Status, error) {
	return h.wait(ctx, Quiet)
}

// Quiet is a wait's condition: the agent is ready and no sale is running,
// so a scan starts a new one.
func Quiet(st payment.Status) bool {
	return st.Ready && (st.State == payment.Idle || st.State.Terminal())
}

// Receipt is a valid fiscal receipt for amount kopecks.
func Receipt(amount int64, fd int64) json.RawMessage {
	b, _ := json.Marshal(sp.Receipt{KKTRegNumber: "0000000012345678", FNNumber: "9999078900012345", FDNumber: fd,
		FiscalSign: fmt.Sprint(1000000 + fd), DateTime: time.Now().UTC().Truncate(time.Second), Operation: sp.OperationIncome,
		Total: amount, Items: []sp.ReceiptItem{{Name: "Товар", Price: amount, Quantity: 1, Amount: amount, VAT: "vat20"}}})
	return b
}

// Sell runs one sale by script for QR user with amount, recording it in the
// Ledger as it goes. It returns when the sale is over (or the agent is gone:
// ErrAgentGone, the record's Stopped says where).
func (h *Host) Sell(ctx context.Context, script, user string, amount int64) error {
	s := &Sale{User: user, Script: script, Amount: amount}
	h.Ledger.AddSale(s)
	err := h.sell(ctx, s)
	h.Ledger.Update(func() {
		if err != nil {
			s.Stopped = err.Error()
		} else {
			s.Done = true
		}
	})
	return err
}

func (h *Host) sell(ctx context.Context, s *Sale) error {
	st0, err := h.idle(ctx)
	if err != nil {
		return err
	}
	amountFirst := s.Script == ScriptPaid || s.Script == ScriptDeclined || s.Script == ScriptNotHandedOver
	if amountFirst {
		if err := h.API.SetAmount(ctx, s.Amount); err != nil {
			return h.gone(err)
		}
	}
	qr, err := h.QR(s.User)
	if err != nil {
		return err
	}
	h.Ledger.Update(func() { s.Scanned, s.Last, s.LastAt = true, "scan sent", time.Now() })
	if h.Feed != nil {
		err = h.Feed(ctx, qr)
	} else {
		err = h.API.Scan(ctx, qr)
	}
	if err != nil {
		return h.gone(err)
	}
	// The scan is answered before its sale starts: the sale is the first
	// one whose id differs from the one the state showed before the scan
	// (a finished sale, perhaps one recovered after a restart).
	prev := st0.SaleID
	st, err := h.wait(ctx, func(st payment.Status) bool { return st.SaleID != "" && st.SaleID != prev })
	if err != nil {
		return err
	}
	h.lastSale = st.SaleID
	h.note(s, st)
	switch s.Script {
	case ScriptPaidLate, ScriptCancel, ScriptPaidElsewhere:
		if st, err = h.waitSale(ctx, s, payment.WaitingAmount); err != nil || st.State != payment.WaitingAmount {
			return err
		}
		switch s.Script {
		case ScriptPaidLate:
			err = h.API.SetAmount(ctx, s.Amount)
		case ScriptCancel:
			err = h.API.Cancel(ctx)
		case ScriptPaidElsewhere:
			err = h.API.PaidElsewhere(ctx, Receipt(s.Amount, time.Now().UnixNano()%1e9+1))
		}
		if err != nil {
			return h.gone(err)
		}
		if s.Script != ScriptPaidLate {
			h.Ledger.Update(func() { s.Cancelled, s.PaidElsewhere = true, s.Script == ScriptPaidElsewhere })
			_, err := h.waitSale(ctx, s)
			return err
		}
	}
	if st, err = h.waitSale(ctx, s, payment.Paid); err != nil || st.State != payment.Paid {
		return err
	}
	ok := s.Script != ScriptNotHandedOver
	h.Ledger.Update(func() { s.HandedOver = ok }) // the goods are out before the host says so
	if err := h.API.Handover(ctx, ok); err != nil {
		return h.gone(err)
	}
	h.Ledger.Update(func() {
		if ok {
			s.HandoverAcked = true
		} else {
			s.Cancelled = true
		}
	})
	if st, err = h.waitSale(ctx, s); err != nil || st.State != payment.Completed {
		return err
	}
	f := Fiscal{PurchaseID: st.PurchaseID, KKTRegNumber: "0000000012345678", FiscalSign: fmt.Sprint(time.Now().UnixNano() % 1e10)}
	if s.Script == ScriptPaidLate {
		f = Fiscal{PurchaseID: st.PurchaseID, Receipt: Receipt(s.Amount, time.Now().UnixNano()%1e9+1)}
	}
	if err := h.API.SendFiscal(ctx, f); err != nil {
		return h.gone(err)
	}
	h.Ledger.Update(func() {
		s.FiscalAcked, s.FiscalVersion = true, 1
		if f.Receipt != nil {
			s.FiscalVersion = 2
		}
	})
	return nil
}

// waitSale waits until the sale is in one of want or over, notes what the
// state showed, and returns it.
func (h *Host) waitSale(ctx context.Context, s *Sale, want ...payment.State) (payment.Status, error) {
	st, err := h.wait(ctx, SaleReached(h.lastSale, want...))
	if err == nil {
		h.note(s, st)
	}
	return st, err
}

// SaleReached is a wait's condition: sale id is in one of want, or over
// (ended, or the state shows another sale or none: ours lingered out, was
// replaced, or was recovered to its end after a restart).
func SaleReached(id string, want ...payment.State) func(payment.Status) bool {
	return func(st payment.Status) bool {
		if st.SaleID != id {
			return st.SaleID != "" || st.State == payment.Idle
		}
		return st.State.Terminal() || slices.Contains(want, st.State)
	}
}

// note records what a state shows about s.
func (h *Host) note(s *Sale, st payment.Status) {
	if st.SaleID != h.lastSale {
		return
	}
	h.Ledger.Update(func() {
		if st.State.String() != s.Last {
			s.Last, s.LastAt = st.State.String(), time.Now()
		}
		s.SaleID = st.SaleID
		if st.Code != 0 {
			s.Code = st.Code
		}
		if st.PurchaseID != "" {
			s.PurchaseID = st.PurchaseID
		}
		switch st.State {
		case payment.Completed:
			s.SawCompleted = true
		case payment.Declined:
			s.SawDeclined = true
		case payment.Cancelled:
			s.SawCancelled = true
		}
	})
}

// gone turns a request error into ErrAgentGone when nothing answered.
func (h *Host) gone(err error) error {
	if StatusOf(err) == 0 {
		return fmt.Errorf("%w: %w", ErrAgentGone, err)
	}
	return err
}

// Refund asks for a refund with the host's idempotency key requestID and
// waits until the agent reports it finished. Sent again after a restart,
// the same requestID must name the same refund.
func (h *Host) Refund(ctx context.Context, requestID, purchaseID string, amount int64) error {
	r := h.Ledger.RefundRequest(requestID, purchaseID, amount)
	info, err := h.API.Refund(ctx, purchaseID, amount, requestID)
	if err != nil {
		return h.gone(err)
	}
	h.Ledger.Update(func() {
		for _, id := range r.IDs {
			if id == info.ID {
				return
			}
		}
		r.IDs = append(r.IDs, info.ID)
	})
	step := h.Step
	if step <= 0 {
		step = 30 * time.Second
	}
	deadline := time.Now().Add(step)
	for !info.Done {
		if time.Now().After(deadline) {
			return fmt.Errorf("kiosktest: refund %s not done in %s: %s", info.ID, step, info.Phase)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(h.pollEvery()):
		}
		if info, err = h.API.RefundInfo(ctx, info.ID); err != nil {
			return h.gone(err)
		}
	}
	h.Ledger.Update(func() { r.Done, r.Outcome = true, string(info.Outcome) })
	return nil
}

func (h *Host) pollEvery() time.Duration {
	if h.Poll <= 0 {
		return 50 * time.Millisecond
	}
	return h.Poll
}

// Mix is a sale mix: scripts with weights.
type Mix []struct {
	Script string
	Weight int
}

// DefaultMix is mostly paid sales (each waits for at least one status
// check, and the flow's poll budget allows about one a second), with the
// other ways a sale ends in between.
var DefaultMix = Mix{
	{ScriptPaid, 58},
	{ScriptPaidLate, 14},
	{ScriptDeclined, 6},
	{ScriptCancel, 8},
	{ScriptPaidElsewhere, 7},
	{ScriptNotHandedOver, 7},
}

// Pick draws a script and an amount for it (whole rubles, so only the
// declined script ends in 51 kopecks).
func (m Mix) Pick(r *rand.Rand) (script string, amount int64) {
	total := 0
	for _, x := range m {
		total += x.Weight
	}
	n := r.IntN(total)
	script = m[0].Script
	for _, x := range m {
		if n < x.Weight {
			script = x.Script
			break
		}
		n -= x.Weight
	}
	amount = int64(10+r.IntN(990)) * 100
	if script == ScriptDeclined {
		amount += 51
	}
	return script, amount
}
