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
	// record the API accepted must have reached the service, unless the
	// agent gave it up (GivenUp).
	FiscalDrained bool
	// GivenUp reports whether the agent's journal shows the fiscal record
	// of the purchase (or, for a sale paid elsewhere, which has none, of
	// the QR's user) and version given up as unconfirmed: it got no
	// answer payment.MaxFiscalLostAnswers times, so the service holds it at
	// most that many times, or not at all when every send was lost before
	// it arrived. The bound is the agent's rule (repeats of a record have
	// no idempotency key), so such a record is not a lost one. Nil: none.
	GivenUp func(purchaseID, user string, version int) bool
}

func (o CheckOptions) givenUp(purchaseID, user string, version int) bool {
	return o.GivenUp != nil && o.GivenUp(purchaseID, user, version)
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

// Charged reports whether the customer's money stays with the merchant, or
// is about to: the payment succeeded, or the kassa confirmed it (a
// confirmation reversed later still told the service to keep the money).
func Charged(p sim.Purchase) bool { return p.Confirmed || p.Status == sp.Success }

// CheckService returns the broken invariants the service's state shows on
// its own, whatever the host did (Check includes them):
//   - nothing left success unconfirmed, released or processing; nothing
//     committed that the journal knows (or, when Final, at all);
//   - no kassa_purchase_id used twice, no QR (id_loyalty: one per QR the
//     host makes) committed twice;
//   - refunds never over the amount, none left pending or succeeded
//     unconfirmed.
func CheckService(st sim.State, o CheckOptions) []Violation {
	var vs violations
	byUser := map[string]int{}
	byKassaID := map[string]int{}
	for _, p := range st.Purchases {
		byUser[p.IDLoyalty]++
		byKassaID[p.Kassa+"/"+p.KassaPurchaseID]++
		switch {
		case p.Status == sp.Success && !p.Confirmed:
			vs.add("success-unconfirmed", "purchase %s (sale %s) paid, never confirmed", p.ID, p.KassaPurchaseID)
		case p.Status == sp.Released || p.Status == sp.Processing:
			vs.add("processing", "purchase %s (sale %s) still %s", p.ID, p.KassaPurchaseID, p.Status)
		case p.Status == sp.Committed && o.Final:
			vs.add("committed", "purchase %s (sale %s) still committed past the commit TTL", p.ID, p.KassaPurchaseID)
		case p.Status == sp.Committed && (o.Journaled == nil || o.Journaled(p.KassaPurchaseID)):
			vs.add("committed", "purchase %s (sale %s) committed, in the journal, neither released nor cancelled", p.ID, p.KassaPurchaseID)
		}
		if p.Refunded > p.Amount {
			vs.add("refund-over", "purchase %s: the service counts %d refunded of %d", p.ID, p.Refunded, p.Amount)
		}
	}
	for _, k := range sortedKeys(byKassaID) {
		if n := byKassaID[k]; n > 1 {
			vs.add("kassa-id-twice", "kassa_purchase_id %s used by %d purchases", k, n)
		}
	}
	for _, u := range sortedKeys(byUser) {
		if n := byUser[u]; n > 1 {
			vs.add("qr-twice", "QR of %s committed %d times", u, n)
		}
	}
	refunded := map[string]int64{}
	amounts := map[string]int64{}
	for _, p := range st.Purchases {
		amounts[p.ID] = p.Amount
	}
	for _, r := range st.Refunds {
		switch {
		case r.Status == sp.RefundPending:
			vs.add("refund-unsettled", "refund %s (purchase %s) left pending", r.ID, r.PurchaseID)
		case r.Status == sp.RefundSuccess && !r.Confirmed:
			vs.add("refund-unsettled", "refund %s (purchase %s) succeeded, never confirmed", r.ID, r.PurchaseID)
		}
		if r.Status != sp.RefundCancelled && r.Status != sp.RefundFailed {
			refunded[r.PurchaseID] += r.Amount
		}
	}
	for _, pid := range sortedKeys(refunded) {
		if sum := refunded[pid]; sum > amounts[pid] {
			vs.add("refund-over", "purchase %s: refunds %d over the amount %d", pid, sum, amounts[pid])
		}
	}
	return vs
}

// Check compares the service's state with what the host saw and returns
// every broken invariant: those of CheckService, and
//   - every sale the host saw completed, or whose hand-over the API
//     acknowledged, is paid and confirmed;
//   - no confirmation for goods not handed over; no charge for a sale the
//     host saw declined or cancelled, or cancelled itself (a hand-over
//     refused, paid elsewhere); no sale seen ending two ways;
//   - no purchase from a QR the host never scanned, no commit refused as a
//     QR or a kassa_purchase_id used before;
//   - one refund per host request id, each finished and confirmed, and no
//     more refunds of a purchase than the host asked for; every fiscal
//     record the API accepted delivered, and the receipt of every sale
//     paid elsewhere;
//   - and, about the test itself, that the host followed the sale of its QR.
func Check(st sim.State, l *Ledger, o CheckOptions) []Violation {
	vs := violations(CheckService(st, o))
	byUser := map[string][]sim.Purchase{}
	for _, p := range st.Purchases {
		byUser[p.IDLoyalty] = append(byUser[p.IDLoyalty], p)
	}
	for _, u := range sortedKeys(byUser) {
		if _, ok := l.Sale(u); !ok {
			vs.add("unknown-qr", "purchase %s from a QR (%s) the host never scanned", byUser[u][0].ID, u)
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
			vs.add("host-mismatch", "sale of %s: the host followed sale %s, the QR's purchase is sale %s", s.User, s.SaleID, p.KassaPurchaseID)
			continue
		}
		switch s.Code {
		case sp.CodeIdempotencyConflict:
			// The kassa sent a kassa_purchase_id the service already had
			// with another QR: an id issued twice (after a restart).
			vs.add("kassa-id-reused", "sale of %s (%s): the service refused the commit, its kassa_purchase_id belongs to another QR", s.User, s.SaleID)
		case sp.CodeQRAlreadyCommitted:
			vs.add("qr-twice", "sale of %s (%s): the service refused the commit, the QR was committed before", s.User, s.SaleID)
		}
		vs = append(vs, CheckSale(st, s, p, o)...)
	}
	vs = append(vs, CheckRefundRequests(st, l.Refunds())...)
	simRefund := map[string]sim.Refund{}
	for _, r := range st.Refunds {
		simRefund[r.KassaRefundID] = r
	}
	for _, r := range l.Refunds() {
		if len(r.IDs) == 0 {
			continue
		}
		sr, ok := simRefund[r.IDs[0]]
		switch {
		case !ok:
			// Accepted by the agent, not yet sent: only wrong once settled.
			vs.add("refund-lost", "request %s (refund %s) never reached the service", r.RequestID, r.IDs[0])
		case sr.Status != sp.RefundSuccess || !sr.Confirmed:
			vs.add("refund-unfinished", "request %s: refund %s is %s, confirmed=%v", r.RequestID, sr.ID, sr.Status, sr.Confirmed)
		}
	}
	return vs
}

// CheckSale returns the broken invariants of one sale the host made; p is
// the purchase of its QR at the service, nil when there is none:
//   - seen completed, or its hand-over acknowledged: paid and confirmed;
//   - confirmed only for goods handed over; not charged when seen declined
//     or cancelled, or cancelled by the host (a hand-over refused, paid
//     elsewhere); never seen ending two ways;
//   - its fiscal record (of the version sent), and the receipt of a sale
//     paid elsewhere, delivered once the agent has none pending
//     (FiscalDrained).
func CheckSale(st sim.State, s Sale, p *sim.Purchase, o CheckOptions) []Violation {
	var vs violations
	kept := p != nil && p.Status == sp.Success && p.Confirmed && !p.Reversed
	if (s.SawCompleted || s.HandoverAcked) && !kept {
		vs.add("completed-not-confirmed", "sale of %s (%s %s): host saw completed=%v handover acked=%v; service: %s",
			s.User, s.SaleID, s.Script, s.SawCompleted, s.HandoverAcked, describe(p))
	}
	if p != nil && p.Confirmed && !s.HandedOver {
		vs.add("paid-without-handover", "sale of %s (%s %s): payment confirmed, goods never handed over; service: %s",
			s.User, s.SaleID, s.Script, describe(p))
	}
	if (s.SawDeclined || s.SawCancelled || s.Cancelled) && p != nil && Charged(*p) {
		vs.add("charged-after-cancel", "sale of %s (%s %s): host saw declined=%v cancelled=%v, cancel acked=%v; service: %s",
			s.User, s.SaleID, s.Script, s.SawDeclined, s.SawCancelled, s.Cancelled, describe(p))
	}
	if count(s.SawCompleted, s.SawDeclined, s.SawCancelled) > 1 {
		vs.add("two-ends", "sale of %s (%s): host saw completed=%v declined=%v cancelled=%v",
			s.User, s.SaleID, s.SawCompleted, s.SawDeclined, s.SawCancelled)
	}
	if o.FiscalDrained && s.FiscalAcked && p != nil && !fiscalFor(st, p.ID, s.FiscalVersion) && !o.givenUp(p.ID, "", s.FiscalVersion) {
		vs.add("fiscal-lost", "sale of %s: fiscal record (v%d) accepted by the API, never delivered to purchase %s", s.User, s.FiscalVersion, p.ID)
	}
	if o.FiscalDrained && s.PaidElsewhere && !receiptFor(st, s.User) && !o.givenUp("", s.User, 2) {
		vs.add("fiscal-lost", "sale of %s (%s) paid elsewhere: the receipt accepted by the API never delivered", s.User, s.SaleID)
	}
	return vs
}

// CheckRefundRequests returns the broken invariants of the host's refund
// requests rs (one with no RequestID per request sent without a key): one
// refund per request id, and no more refunds of a purchase at the service
// than the host asked for.
func CheckRefundRequests(st sim.State, rs []Refund) []Violation {
	var vs violations
	asked := map[string]int{}
	for _, r := range rs {
		asked[r.PurchaseID]++
		if r.RequestID != "" && len(r.IDs) > 1 {
			vs.add("refund-twice", "request %s answered with refunds %v", r.RequestID, r.IDs)
		}
	}
	perPurchase := map[string]int{}
	for _, r := range st.Refunds {
		perPurchase[r.PurchaseID]++
	}
	for _, pid := range sortedKeys(perPurchase) {
		if n := perPurchase[pid]; n > asked[pid] {
			vs.add("refund-unrequested", "purchase %s: %d refunds at the service for %d host requests", pid, n, asked[pid])
		}
	}
	return vs
}

// violations collects broken invariants.
type violations []Violation

func (vs *violations) add(rule, format string, a ...any) {
	*vs = append(*vs, Violation{Rule: rule, Detail: fmt.Sprintf(format, a...)})
}

func count(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// receiptFor reports whether a v2 receipt of the QR user's sale paid
// elsewhere reached the service.
func receiptFor(st sim.State, user string) bool {
	for _, f := range st.Fiscal {
		if f.Version == 2 && f.PurchaseID == "" && f.IDLoyalty == user {
			return true
		}
	}
	return false
}

// fiscalFor reports whether a fiscal record of the purchase reached the
// service, of the version when it is not 0.
func fiscalFor(st sim.State, purchaseID string, version int) bool {
	for _, f := range st.Fiscal {
		if f.PurchaseID == purchaseID && (version == 0 || f.Version == version) {
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
