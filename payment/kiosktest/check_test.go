package kiosktest

import (
	"sort"
	"strings"
	"testing"

	sp "github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

// Each rule fires on the state that breaks it, and only there.
func TestCheckFindsEachViolation(t *testing.T) {
	l := NewLedger()
	add := func(s Sale) { l.AddSale(&s) }
	add(Sale{User: "ok", HandedOver: true, HandoverAcked: true, SawCompleted: true, FiscalAcked: true})
	add(Sale{User: "completed-lost", HandedOver: true, HandoverAcked: true})
	add(Sale{User: "no-handover"})
	add(Sale{User: "cancelled", Cancelled: true})
	add(Sale{User: "twice"})
	add(Sale{User: "fiscal", HandedOver: true, SawCompleted: true, FiscalAcked: true})
	add(Sale{User: "stuck"})
	add(Sale{User: "unconfirmed"})
	add(Sale{User: "orphan"})
	add(Sale{User: "mixed-up", SaleID: "41", SawCompleted: true})
	add(Sale{User: "reused", SaleID: "1", SawDeclined: true, Code: sp.CodeIdempotencyConflict})
	r := l.RefundRequest("rq1", "p-ok", 100)
	r.IDs = []string{"k1", "k2"}
	l.RefundRequest("rq2", "p-ok", 100).IDs = []string{"k3"}

	paid := func(id, user, kid string) sim.Purchase {
		return sim.Purchase{ID: id, Kassa: "kassa-1", KassaPurchaseID: kid, IDLoyalty: user, Status: sp.Success, Amount: 1000, Confirmed: true}
	}
	st := sim.State{
		Purchases: []sim.Purchase{
			paid("p-ok", "ok", "1"),
			{ID: "p-lost", Kassa: "kassa-1", KassaPurchaseID: "2", IDLoyalty: "completed-lost", Status: sp.Cancelled, Reversed: true},
			paid("p-nh", "no-handover", "3"),
			paid("p-c", "cancelled", "4"),
			{ID: "p-t1", Kassa: "kassa-1", KassaPurchaseID: "5", IDLoyalty: "twice", Status: sp.Cancelled},
			{ID: "p-t2", Kassa: "kassa-1", KassaPurchaseID: "5", IDLoyalty: "twice", Status: sp.Cancelled},
			paid("p-f", "fiscal", "6"),
			{ID: "p-s", Kassa: "kassa-1", KassaPurchaseID: "7", IDLoyalty: "stuck", Status: sp.Processing},
			{ID: "p-u", Kassa: "kassa-1", KassaPurchaseID: "8", IDLoyalty: "unconfirmed", Status: sp.Success},
			{ID: "p-o", Kassa: "kassa-1", KassaPurchaseID: "9", IDLoyalty: "orphan", Status: sp.Committed},
			{ID: "p-x", Kassa: "kassa-1", KassaPurchaseID: "10", IDLoyalty: "stranger", Status: sp.Cancelled},
			{ID: "p-m", Kassa: "kassa-1", KassaPurchaseID: "42", IDLoyalty: "mixed-up", Status: sp.Cancelled},
		},
		Refunds: []sim.Refund{
			{ID: "r1", KassaRefundID: "k1", PurchaseID: "p-ok", Amount: 600, Status: sp.RefundSuccess, Confirmed: true},
			{ID: "r3", KassaRefundID: "k3", PurchaseID: "p-ok", Amount: 600, Status: sp.RefundPending},
		},
		Fiscal: []sim.FiscalRecord{{PurchaseID: "p-ok"}},
	}
	journaled := func(id string) bool { return id != "9" }
	got := rules(Check(st, l, CheckOptions{Journaled: journaled, FiscalDrained: true}))
	want := "charged-after-cancel completed-not-confirmed fiscal-lost host-mismatch kassa-id-reused kassa-id-twice paid-without-handover " +
		"processing qr-twice refund-over refund-twice refund-unfinished refund-unsettled success-unconfirmed unknown-qr"
	if got != want {
		t.Errorf("rules\n got %s\nwant %s", got, want)
	}
	// The orphan is allowed until the commit TTL has passed.
	if got := rules(Check(st, l, CheckOptions{Journaled: journaled, Final: true})); !strings.Contains(got, "committed") {
		t.Errorf("final check: %s, want committed", got)
	}
	if ok, why := Settled(st, CheckOptions{Journaled: journaled}); ok || !strings.Contains(why, "p-s") && !strings.Contains(why, "p-u") {
		t.Errorf("Settled = %v %q", ok, why)
	}
	if o := Orphans(st, CheckOptions{Journaled: journaled}); len(o) != 1 || o[0].ID != "p-o" {
		t.Errorf("orphans %v", o)
	}
}

func TestCheckPassesAConsistentState(t *testing.T) {
	l := NewLedger()
	l.AddSale(&Sale{User: "a", HandedOver: true, HandoverAcked: true, SawCompleted: true, FiscalAcked: true})
	l.AddSale(&Sale{User: "b", SawDeclined: true})
	l.AddSale(&Sale{User: "c", Cancelled: true, SawCancelled: true})
	l.RefundRequest("rq", "p-a", 500).IDs = []string{"k"}
	st := sim.State{
		Purchases: []sim.Purchase{
			{ID: "p-a", Kassa: "kassa-1", KassaPurchaseID: "1", IDLoyalty: "a", Status: sp.Success, Amount: 1000, Confirmed: true},
			{ID: "p-b", Kassa: "kassa-1", KassaPurchaseID: "2", IDLoyalty: "b", Status: sp.Failed},
			{ID: "p-c", Kassa: "kassa-1", KassaPurchaseID: "3", IDLoyalty: "c", Status: sp.Cancelled, Reversed: true},
		},
		Refunds: []sim.Refund{{ID: "r", KassaRefundID: "k", PurchaseID: "p-a", Amount: 500, Status: sp.RefundSuccess, Confirmed: true}},
		Fiscal:  []sim.FiscalRecord{{PurchaseID: "p-a"}},
	}
	if vs := Check(st, l, CheckOptions{FiscalDrained: true, Final: true}); len(vs) != 0 {
		t.Errorf("violations on a consistent state: %v", vs)
	}
	if ok, why := Settled(st, CheckOptions{}); !ok {
		t.Errorf("not settled: %s", why)
	}
}

// The rules the chaos test brought in: each case breaks one invariant of a
// consistent state, and exactly that rule fires.
func TestCheckFindsChaosRules(t *testing.T) {
	base := func() (*Ledger, sim.State) {
		l := NewLedger()
		l.AddSale(&Sale{User: "a", SaleID: "1", HandedOver: true, HandoverAcked: true, SawCompleted: true, FiscalAcked: true, FiscalVersion: 2})
		l.AddSale(&Sale{User: "e", SaleID: "2", Cancelled: true, PaidElsewhere: true, SawCancelled: true})
		l.RefundRequest("rq", "p-a", 500).IDs = []string{"k"}
		return l, sim.State{
			Purchases: []sim.Purchase{
				{ID: "p-a", Kassa: "kassa-1", KassaPurchaseID: "1", IDLoyalty: "a", Status: sp.Success, Amount: 1000, Confirmed: true, Refunded: 500},
				{ID: "p-e", Kassa: "kassa-1", KassaPurchaseID: "2", IDLoyalty: "e", Status: sp.Cancelled},
			},
			Refunds: []sim.Refund{{ID: "r", KassaRefundID: "k", PurchaseID: "p-a", Amount: 500, Status: sp.RefundSuccess, Confirmed: true}},
			Fiscal:  []sim.FiscalRecord{{Version: 2, IDLoyalty: "e"}, {Version: 2, PurchaseID: "p-a"}},
		}
	}
	cases := []struct {
		rules string // the rules that fire, sorted
		spoil func(l *Ledger, st *sim.State)
	}{
		// A refund the host never learnt the id of (its answer was lost)
		// is still to be finished.
		{"refund-unsettled", func(l *Ledger, st *sim.State) {
			l.RefundRequest("rq2", "p-a", 100)
			st.Refunds = append(st.Refunds, sim.Refund{ID: "r2", KassaRefundID: "k2", PurchaseID: "p-a", Amount: 100, Status: sp.RefundPending})
		}},
		{"refund-unsettled", func(l *Ledger, st *sim.State) {
			l.RefundRequest("rq2", "p-a", 100)
			st.Refunds = append(st.Refunds, sim.Refund{ID: "r2", KassaRefundID: "k2", PurchaseID: "p-a", Amount: 100, Status: sp.RefundSuccess})
		}},
		{"refund-over", func(_ *Ledger, st *sim.State) { st.Purchases[0].Refunded = 1001 }},
		{"refund-unrequested", func(_ *Ledger, st *sim.State) {
			st.Refunds = append(st.Refunds, sim.Refund{ID: "r2", KassaRefundID: "k2", PurchaseID: "p-a", Amount: 100, Status: sp.RefundFailed})
		}},
		{"two-ends", func(l *Ledger, _ *sim.State) { l.Update(func() { l.byUser["e"].SawDeclined = true }) }},
		{"fiscal-lost", func(_ *Ledger, st *sim.State) { st.Fiscal = st.Fiscal[1:] }}, // the receipt paid elsewhere
		{"fiscal-lost", func(_ *Ledger, st *sim.State) { st.Fiscal[1].Version = 1 }},  // v2 accepted, only a v1 delivered
		// Confirmed, then reversed: the kassa still told the service to
		// keep money for goods never given, or after a cancel.
		{"paid-without-handover", func(l *Ledger, st *sim.State) {
			st.Purchases = append(st.Purchases, sim.Purchase{ID: "p-n", Kassa: "kassa-1", KassaPurchaseID: "3", IDLoyalty: "n",
				Status: sp.Cancelled, Amount: 1000, Confirmed: true, Reversed: true})
			l.AddSale(&Sale{User: "n", SaleID: "3"})
		}},
		{"charged-after-cancel paid-without-handover", func(_ *Ledger, st *sim.State) {
			st.Purchases[1].Confirmed = true
			st.Purchases[1].Reversed = true
		}},
	}
	l, st := base()
	if vs := Check(st, l, CheckOptions{FiscalDrained: true, Final: true}); len(vs) != 0 {
		t.Fatalf("violations on the consistent state: %v", vs)
	}
	for _, c := range cases {
		l, st := base()
		c.spoil(l, &st)
		if got := rules(Check(st, l, CheckOptions{FiscalDrained: true, Final: true})); got != c.rules {
			t.Errorf("%s: rules %q", c.rules, got)
		}
	}
}

// A fiscal record the agent gave up after its bound of lost answers is not
// lost; only that record (purchase or QR user, and version) is excused.
func TestCheckExcusesOnlyGivenUpFiscalRecords(t *testing.T) {
	l := NewLedger()
	l.AddSale(&Sale{User: "a", SaleID: "1", HandedOver: true, HandoverAcked: true, SawCompleted: true, FiscalAcked: true, FiscalVersion: 2})
	l.AddSale(&Sale{User: "e", SaleID: "2", Cancelled: true, PaidElsewhere: true, SawCancelled: true})
	st := sim.State{Purchases: []sim.Purchase{
		{ID: "p-a", Kassa: "kassa-1", KassaPurchaseID: "1", IDLoyalty: "a", Status: sp.Success, Amount: 1000, Confirmed: true},
		{ID: "p-e", Kassa: "kassa-1", KassaPurchaseID: "2", IDLoyalty: "e", Status: sp.Cancelled},
	}} // neither record reached the service
	for _, c := range []struct {
		name    string
		givenUp func(purchaseID, user string, version int) bool
		want    int // fiscal-lost violations
	}{
		{"none given up", nil, 2},
		{"the sale's v2", func(p, _ string, v int) bool { return p == "p-a" && v == 2 }, 1},
		{"the sale's v1 only", func(p, _ string, v int) bool { return p == "p-a" && v == 1 }, 2},
		{"the receipt paid elsewhere", func(_, u string, v int) bool { return u == "e" && v == 2 }, 1},
		{"both", func(p, u string, v int) bool { return v == 2 && (p == "p-a" || u == "e") }, 0},
	} {
		n := 0
		for _, v := range Check(st, l, CheckOptions{FiscalDrained: true, Final: true, GivenUp: c.givenUp}) {
			if v.Rule != "fiscal-lost" {
				t.Errorf("%s: unexpected %s", c.name, v)
			}
			n++
		}
		if n != c.want {
			t.Errorf("%s: %d fiscal-lost, want %d", c.name, n, c.want)
		}
	}
}

func rules(vs []Violation) string {
	seen := map[string]bool{}
	var out []string
	for _, v := range vs {
		if !seen[v.Rule] {
			seen[v.Rule] = true
			out = append(out, v.Rule)
		}
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}
