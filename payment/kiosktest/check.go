package kiosktest

import (
	"fmt"
	"sort"

	sp "github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

// Violation is one broken invariant: Rule names it, Detail says where.
type Violation struct {
	Rule   string
	Detail string
}

func (v Violation) String() string { return v.Rule + ": " + v.Detail }

// CheckOptions say how far the run has settled.
type CheckOptions struct {
	// Journaled reports whether the agent's journal holds the sale with
	// this kassa_purchase_id. A committed purchase the journal does not
	// hold is an orphan: the power went between the commit and its journal
	// record reaching the disk, nobody will release it and the service
	// expires it. Nil: the journal holds every sale (no power cuts).
	Journaled func(kassaPurchaseID string) bool
	// Final: the service's commit time-to-live has passed since the last
	// commit, so orphans must have expired too.
	Final bool
	// FiscalDrained: the agent reported no fiscal record pending, so every
	// record the API accepted must have reached the service.
	FiscalDrained bool
}

// Orphans lists the committed purchases the journal does not hold.
func Orphans(st sim.State, o CheckOptions) []sim.Purchase {
	var out []sim.Purchase
	for _, p := range st.Purchases {
		if p.Status == sp.Committed && o.Journaled != nil && !o.Journaled(p.KassaPurchaseID) {
			out = append(out, p)
		}
	}
	return out
}

// Settled reports whether every purchase and refund at the service is at an
// end the kassa has told the service about (orphans aside), with the reason
// when not.
func Settled(st sim.State, o CheckOptions) (bool, string) {
	for _, p := range st.Unsettled() {
		if p.Status == sp.Committed && o.Journaled != nil && !o.Journaled(p.KassaPurchaseID) {
			continue // an orphan: the service expires it
		}
		return false, fmt.Sprintf("purchase %s (sale %s) %s, confirmed=%v", p.ID, p.KassaPurchaseID, p.Status, p.Confirmed)
	}
	for _, r := range st.Refunds {
		if r.Status == sp.RefundPending || (r.Status == sp.RefundSuccess && !r.Confirmed) {
			return false, "refund " + r.ID + " " + string(r.Status)
		}
	}
	return true, ""
}

// Check compares the service's state with what the host saw and returns
// every broken invariant:
//   - nothing left success unconfirmed, released or processing; nothing
//     committed that the journal knows (or, when Final, at all);
//   - every sale the host saw completed, or whose hand-over the API
//     acknowledged, is paid and confirmed;
//   - no money kept for goods not handed over; no charge for a sale the host
//     saw declined or cancelled, or cancelled itself;
//   - no QR committed twice, no purchase from a QR the host never scanned,
//     no kassa_purchase_id used twice (nor refused as one used before);
//   - refunds never over the amount, one per host request id, each finished
//     and confirmed; every fiscal record the API accepted delivered;
//   - and, about the test itself, that the host followed the sale of its QR.
func Check(st sim.State, l *Ledger, o CheckOptions) []Violation {
	var vs []Violation
	add := func(rule, format string, a ...any) {
		vs = append(vs, Violation{Rule: rule, Detail: fmt.Sprintf(format, a...)})
	}
	byUser := map[string][]sim.Purchase{}
	byKassaID := map[string]int{}
	for _, p := range st.Purchases {
		byUser[p.IDLoyalty] = append(byUser[p.IDLoyalty], p)
		byKassaID[p.Kassa+"/"+p.KassaPurchaseID]++
		switch {
		case p.Status == sp.Success && !p.Confirmed:
			add("success-unconfirmed", "purchase %s (sale %s) paid, never confirmed", p.ID, p.KassaPurchaseID)
		case p.Status == sp.Released || p.Status == sp.Processing:
			add("processing", "purchase %s (sale %s) still %s", p.ID, p.KassaPurchaseID, p.Status)
		case p.Status == sp.Committed && o.Final:
			add("committed", "purchase %s (sale %s) still committed past the commit TTL", p.ID, p.KassaPurchaseID)
		case p.Status == sp.Committed && (o.Journaled == nil || o.Journaled(p.KassaPurchaseID)):
			add("committed", "purchase %s (sale %s) committed, in the journal, neither released nor cancelled", p.ID, p.KassaPurchaseID)
		}
	}
	for k, n := range byKassaID {
		if n > 1 {
			add("kassa-id-twice", "kassa_purchase_id %s used by %d purchases", k, n)
		}
	}
	users := make([]string, 0, len(byUser))
	for u := range byUser {
		users = append(users, u)
	}
	sort.Strings(users)
	for _, u := range users {
		ps := byUser[u]
		if len(ps) > 1 {
			add("qr-twice", "QR of %s committed %d times", u, len(ps))
		}
		if _, ok := l.Sale(u); !ok {
			add("unknown-qr", "purchase %s from a QR (%s) the host never scanned", ps[0].ID, u)
		}
	}
	for _, s := range l.Sales() {
		ps := byUser[s.User]
		var p *sim.Purchase
		if len(ps) > 0 {
			p = &ps[0]
		}
		if p != nil && s.SaleID != "" && p.KassaPurchaseID != s.SaleID {
			// The host took another sale for its own: the ledger, not the
			// agent, is wrong, and the rules below would mislead.
			add("host-mismatch", "sale of %s: the host followed sale %s, the QR's purchase is sale %s", s.User, s.SaleID, p.KassaPurchaseID)
			continue
		}
		switch s.Code {
		case sp.CodeIdempotencyConflict:
			// The kassa sent a kassa_purchase_id the service already had
			// with another QR: an id issued twice (after a restart).
			add("kassa-id-reused", "sale of %s (%s): the service refused the commit, its kassa_purchase_id belongs to another QR", s.User, s.SaleID)
		case sp.CodeQRAlreadyCommitted:
			add("qr-twice", "sale of %s (%s): the service refused the commit, the QR was committed before", s.User, s.SaleID)
		}
		kept := p != nil && p.Status == sp.Success && p.Confirmed && !p.Reversed
		if s.SawCompleted || s.HandoverAcked {
			if !kept {
				add("completed-not-confirmed", "sale of %s (%s): host saw completed=%v handover acked=%v; service: %s",
					s.User, s.Script, s.SawCompleted, s.HandoverAcked, describe(p))
			}
		}
		if kept && !s.HandedOver {
			add("paid-without-handover", "sale of %s (%s): money kept, goods never handed over", s.User, s.Script)
		}
		if (s.SawDeclined || s.SawCancelled || s.Cancelled) && p != nil && p.Status == sp.Success {
			add("charged-after-cancel", "sale of %s (%s): host saw declined=%v cancelled=%v, cancel acked=%v; service: %s",
				s.User, s.Script, s.SawDeclined, s.SawCancelled, s.Cancelled, describe(p))
		}
		if o.FiscalDrained && s.FiscalAcked && p != nil && !fiscalFor(st, p.ID) {
			add("fiscal-lost", "sale of %s: fiscal record accepted by the API, never delivered to purchase %s", s.User, p.ID)
		}
	}
	refunded := map[string]int64{}
	amounts := map[string]int64{}
	for _, p := range st.Purchases {
		amounts[p.ID] = p.Amount
	}
	simRefund := map[string]sim.Refund{}
	for _, r := range st.Refunds {
		simRefund[r.KassaRefundID] = r
		if r.Status != sp.RefundCancelled && r.Status != sp.RefundFailed {
			refunded[r.PurchaseID] += r.Amount
		}
	}
	for pid, sum := range refunded {
		if sum > amounts[pid] {
			add("refund-over", "purchase %s: refunds %d over the amount %d", pid, sum, amounts[pid])
		}
	}
	for _, r := range l.Refunds() {
		if len(r.IDs) > 1 {
			add("refund-twice", "request %s answered with refunds %v", r.RequestID, r.IDs)
		}
		if len(r.IDs) == 0 {
			continue
		}
		sr, ok := simRefund[r.IDs[0]]
		switch {
		case !ok:
			// Accepted by the agent, not yet sent: only wrong once settled.
			add("refund-lost", "request %s (refund %s) never reached the service", r.RequestID, r.IDs[0])
		case sr.Status != sp.RefundSuccess || !sr.Confirmed:
			add("refund-unfinished", "request %s: refund %s is %s, confirmed=%v", r.RequestID, sr.ID, sr.Status, sr.Confirmed)
		}
	}
	return vs
}

func fiscalFor(st sim.State, purchaseID string) bool {
	for _, f := range st.Fiscal {
		if f.PurchaseID == purchaseID {
			return true
		}
	}
	return false
}

func describe(p *sim.Purchase) string {
	if p == nil {
		return "no purchase"
	}
	return fmt.Sprintf("purchase %s %s confirmed=%v reversed=%v confirmations=%v", p.ID, p.Status, p.Confirmed, p.Reversed, p.KassaConfirmations)
}
