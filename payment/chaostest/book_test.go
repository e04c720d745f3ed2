package chaostest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/journal"
	"github.com/kioskd/kioskd/payment/kiosktest"
	sp "github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

// book is what the host did and what the API told it.
type book struct {
	mu          sync.Mutex // kills are counted from the simulator's handlers and timers too
	violations  []string
	kills       map[string]int // by killPlan.String()
	killsMissed int            // armed at a call that did not come during the sale

	plans    [len(kindNames)]int
	sales    map[string]*sale     // by sale id (kassa_purchase_id)
	obs      map[string]*observed // what the API reported, by sale id
	fiscal   []*fiscalRec
	refunds  []*refundRec
	restarts int
	twice    int            // host requests sent twice at once
	ptyScans map[string]int // scans over the serial pty, by scanForm
	apiScans map[string]int // scans with POST /v1/scan, by apiForm
	injected int            // faults injected
	// unrecorded are commits left at the service with no journal record
	// (a kill between the commit and its record), by kassa_purchase_id.
	unrecorded map[string]bool
	// givenUp are the fiscal records kioskd's journal shows given up as
	// unconfirmed after its bound of lost answers, by fiscalKey.
	givenUp  map[string]bool
	forCalls int // ...for this many calls in all
}

func newBook() *book {
	return &book{kills: map[string]int{}, sales: map[string]*sale{}, obs: map[string]*observed{},
		ptyScans: map[string]int{}, apiScans: map[string]int{}}
}

// sale is one sale as the host drove it.
type sale struct {
	plan
	id, user           string
	replaced           string // the sale this one replaced
	handover           bool   // the host gave the goods and said so
	handoverAcked      bool   // ...and kioskd answered 200
	handoverFalse      bool
	handoverFalseAcked bool
	paidElsewhere      bool // paid-elsewhere answered 200
}

// observed is what the API reported about a sale.
type observed struct {
	purchaseID string
	ends       map[payment.State]bool // terminal states reported
}

type fiscalRec struct {
	purchaseID string
	version    int
	acked      bool
}

// refundRec is one host refund request, with its duplicates and repeats.
type refundRec struct {
	requestID  string // "" when the host sent no key
	purchaseID string
	amount     int64
	ids        map[string]bool // kassa_refund_id in the API's answers
	sends      int             // times sent (a keyless request sent twice is two refunds)
	answered   bool
	refused    bool
	odd        []string // answers other than 202 and 422
}

func (r *refundRec) note(as []answer) {
	r.sends += len(as)
	for _, a := range as {
		if !a.ok {
			continue
		}
		switch a.code {
		case http.StatusAccepted:
			var info payment.RefundInfo
			if json.Unmarshal(a.body, &info) == nil && info.ID != "" {
				r.ids[info.ID] = true
			}
			r.answered = true
		case http.StatusUnprocessableEntity:
			r.refused, r.answered = true, true
		case http.StatusServiceUnavailable: // not ready: no answer yet
		default:
			r.odd = append(r.odd, a.String())
		}
	}
}

func (b *book) violation(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.violations = append(b.violations, fmt.Sprintf(format, args...))
}

func (b *book) countKill(kind string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.kills[kind]++
}

func (b *book) count(n *int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	*n++
}

// check compares the simulator's state with what the host was told: the
// rules of kiosktest (the service's state, each sale with its fiscal
// record, the refund requests) and those about the API's answers that only
// this host keeps.
// infos are the API's final word on every refund id it gave out.
func (b *book) check(st sim.State, infos map[string]payment.RefundInfo) {
	opts := kiosktest.CheckOptions{
		Journaled:     func(kassaPurchaseID string) bool { return !b.unrecorded[kassaPurchaseID] },
		FiscalDrained: true, // settle waited for no fiscal record pending
		GivenUp: func(purchaseID, user string, version int) bool {
			return b.givenUp[fiscalKey(sim.FiscalRecord{Version: version, PurchaseID: purchaseID, IDLoyalty: user})]
		},
	}
	vs := kiosktest.CheckService(st, opts)
	byKassaID := map[string]*sim.Purchase{}
	ids := map[string]bool{}
	for i, p := range st.Purchases {
		byKassaID[p.KassaPurchaseID] = &st.Purchases[i]
		ids[p.KassaPurchaseID] = true
	}
	for id := range b.sales {
		ids[id] = true
	}
	for id := range b.obs {
		ids[id] = true
	}
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		vs = append(vs, kiosktest.CheckSale(st, b.ledgerSale(id, byKassaID[id]), byKassaID[id], opts)...)
	}
	vs = append(vs, kiosktest.CheckRefundRequests(st, b.refundRequests())...)
	for _, v := range vs {
		b.violation("%s", v)
	}
	b.checkRefunds(st, infos)
	b.checkFiscal(st)
}

// ledgerSale is the sale with kassa_purchase_id id as kiosktest's ledger
// would hold it: what the host did, and the ends the API reported.
func (b *book) ledgerSale(id string, p *sim.Purchase) kiosktest.Sale {
	ks := kiosktest.Sale{SaleID: id}
	if p != nil {
		ks.User, ks.PurchaseID = p.IDLoyalty, p.ID
	}
	if s := b.sales[id]; s != nil {
		ks.User, ks.Script = s.user, s.kind.String()
		ks.HandedOver, ks.HandoverAcked = s.handover, s.handoverAcked
		ks.Cancelled = s.handoverFalseAcked || s.paidElsewhere
		ks.PaidElsewhere = s.paidElsewhere
	}
	for _, f := range b.fiscal {
		if p != nil && f.purchaseID == p.ID && f.acked {
			ks.FiscalAcked, ks.FiscalVersion = true, f.version
		}
	}
	if o := b.obs[id]; o != nil {
		ks.SawCompleted, ks.SawDeclined, ks.SawCancelled = o.ends[payment.Completed], o.ends[payment.Declined], o.ends[payment.Cancelled]
	}
	return ks
}

// refundRequests are the host's refund requests as kiosktest counts them:
// one per key, one per send of a request without a key.
func (b *book) refundRequests() []kiosktest.Refund {
	var out []kiosktest.Refund
	for _, rr := range b.refunds {
		if rr.requestID == "" {
			for range rr.sends {
				out = append(out, kiosktest.Refund{PurchaseID: rr.purchaseID, Amount: rr.amount})
			}
			continue
		}
		out = append(out, kiosktest.Refund{RequestID: rr.requestID, PurchaseID: rr.purchaseID, Amount: rr.amount,
			IDs: slices.Sorted(maps.Keys(rr.ids))})
	}
	return out
}

// checkRefunds holds the API's answers to the refund requests against the
// service: no answer but 202, 422 or 503, and every refund id it gave out
// done, its outcome the service's.
func (b *book) checkRefunds(st sim.State, infos map[string]payment.RefundInfo) {
	simRefunds := map[string]sim.Refund{} // by kassa_refund_id
	for _, r := range st.Refunds {
		simRefunds[r.KassaRefundID] = r
	}
	for _, rr := range b.refunds {
		if len(rr.odd) > 0 {
			b.violation("refund request %q (purchase %s, %d): answers %v", rr.requestID, rr.purchaseID, rr.amount, rr.odd)
		}
		for id := range rr.ids {
			info, ok := infos[id]
			sr, atService := simRefunds[id]
			switch {
			case !ok || !info.Done:
				b.violation("refund %s not done after settling: %+v", id, info)
			case info.Outcome == journal.RefundSucceeded && (!atService || sr.Status != sp.RefundSuccess || !sr.Confirmed):
				b.violation("refund %s reported succeeded but the service has %+v", id, sr)
			case info.Outcome != journal.RefundSucceeded && atService && sr.Status == sp.RefundSuccess:
				b.violation("refund %s reported %q but the service refunded it", id, info.Outcome)
			}
		}
	}
}

// fiscalKey names one fiscal record: a purchase's v1 or v2, or a
// paid-elsewhere v2 by the QR's id_loyalty.
func fiscalKey(f sim.FiscalRecord) string {
	if f.PurchaseID != "" {
		return fmt.Sprintf("v%d/%s", f.Version, f.PurchaseID)
	}
	return fmt.Sprintf("v%d/qr:%s", f.Version, f.IDLoyalty)
}

// checkFiscal finds the fiscal records the API accepted for a purchase the
// service does not have (CheckSale checks those it has).
func (b *book) checkFiscal(st sim.State) {
	purchases := map[string]bool{}
	for _, p := range st.Purchases {
		purchases[p.ID] = true
	}
	for _, f := range b.fiscal {
		if f.acked && !purchases[f.purchaseID] {
			b.violation("fiscal v%d accepted by the API for purchase %q, which the service does not have", f.version, f.purchaseID)
		}
	}
}

// fiscalRepeats is how many records were delivered once, twice…
func fiscalRepeats(st sim.State) map[int]int {
	deliveries := map[string]int{}
	for _, f := range st.Fiscal {
		deliveries[fiscalKey(f)]++
	}
	out := map[int]int{}
	for _, n := range deliveries {
		out[n]++
	}
	return out
}

func states(m map[payment.State]bool) []string {
	var out []string
	for s := range m {
		out = append(out, s.String())
	}
	sort.Strings(out)
	return out
}

// summary is the run in a few lines.
func (b *book) summary(seed uint64, n int, st sim.State) string {
	var w strings.Builder
	fmt.Fprintf(&w, "chaos summary: seed %d, %d sales planned\n", seed, n)
	var kinds []string
	for k, c := range b.plans {
		kinds = append(kinds, fmt.Sprintf("%s %d", saleKind(k), c))
	}
	fmt.Fprintf(&w, "  plans: %s\n", strings.Join(kinds, ", "))
	outcomes := map[string]int{}
	for id := range b.sales {
		o := b.obs[id]
		switch {
		case o == nil || len(o.ends) == 0:
			outcomes["end not seen by the host"]++
		default:
			outcomes[strings.Join(states(o.ends), "+")]++
		}
	}
	fmt.Fprintf(&w, "  sales started %d: %s\n", len(b.sales), joinCounts(outcomes))
	statuses := map[string]int{}
	for _, p := range st.Purchases {
		s := string(p.Status)
		if p.Confirmed {
			s += "+confirmed"
		}
		if p.Reversed {
			s += "+reversed"
		}
		statuses[s]++
	}
	fmt.Fprintf(&w, "  purchases at the service %d: %s\n", len(st.Purchases), joinCounts(statuses))
	fmt.Fprintf(&w, "  commits left for the service to expire (killed between the commit and its journal record): %d\n", len(b.unrecorded))
	kills := 0
	for _, c := range b.kills {
		kills += c
	}
	fmt.Fprintf(&w, "  kills %d (%s), restarts %d; kills planned at a call that never came: %d\n",
		kills, joinCounts(b.kills), b.restarts, b.killsMissed)
	byKind, byMethod, fired := map[string]int{}, map[string]int{}, 0
	for k, c := range st.FaultsFired {
		method, kind, _ := strings.Cut(k, "/")
		byKind[kind] += c
		byMethod[method] += c
		fired += c
	}
	fmt.Fprintf(&w, "  faults injected %d (for up to %d calls), fired on %d calls: by kind %s; by method %s\n",
		b.injected, b.forCalls, fired, joinCounts(byKind), joinCounts(byMethod))
	fmt.Fprintf(&w, "  requests sent twice at once %d\n  scans over the serial pty %d: %s\n  scans with POST /v1/scan %d: %s\n",
		b.twice, sum(b.ptyScans), joinCounts(b.ptyScans), sum(b.apiScans), joinCounts(b.apiScans))
	ids, accepted, refused := map[string]bool{}, 0, 0
	for _, rr := range b.refunds {
		if rr.requestID != "" {
			ids[rr.requestID] = true
		}
		if len(rr.ids) > 0 {
			accepted++
		}
		if rr.refused {
			refused++
		}
	}
	rs := map[string]int{}
	for _, r := range st.Refunds {
		s := string(r.Status)
		if r.Confirmed {
			s += "+confirmed"
		}
		rs[s]++
	}
	fmt.Fprintf(&w, "  refunds: %d host requests (%d with a key), %d accepted, %d refused by the service; at the service %d: %s\n",
		len(b.refunds), len(ids), accepted, refused, len(st.Refunds), joinCounts(rs))
	acked := 0
	for _, f := range b.fiscal {
		if f.acked {
			acked++
		}
	}
	reps := map[string]int{}
	for n, c := range fiscalRepeats(st) {
		reps[fmt.Sprintf("%d×", n)] = c
	}
	fmt.Fprintf(&w, "  fiscal: %d records sent by the host (%d accepted), %d deliveries at the service; records delivered %s; given up unconfirmed after %d lost answers: %d\n",
		len(b.fiscal), acked, len(st.Fiscal), joinCounts(reps), payment.MaxFiscalLostAnswers, len(b.givenUp))
	fmt.Fprintf(&w, "  violations: %d", len(b.violations))
	return w.String()
}

func joinCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func sum(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}
