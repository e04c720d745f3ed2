package payment_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/fiscal"
	"github.com/kioskd/kioskd/payment/fiscal/atol"
	"github.com/kioskd/kioskd/payment/fiscal/atolonline"
	"github.com/kioskd/kioskd/payment/fiscal/fiscalsim"
	fsimtest "github.com/kioskd/kioskd/payment/fiscal/fiscalsim/simtest"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

// startKKT serves the ATOL web-server simulator and a client for it.
func startKKT(t *testing.T) (*fsimtest.AtolServer, *atol.Client) {
	t.Helper()
	kkt := fsimtest.NewAtol(t, fiscalsim.Config{}, zap.NewNop())
	c, err := atol.New(atol.Config{URL: kkt.URL, Timing: fiscal.Timing{PollFirst: time.Millisecond}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return kkt, c
}

func receiptsConfig(p fiscal.Provider) payment.Receipts {
	return payment.Receipts{Provider: p, Taxation: fiscal.TaxUSNIncome, VAT: fiscal.VATNone, Item: "Товар",
		MachineNumber: "VM-7", Place: "Вестибюль", Address: "Москва, ул. Тверская, 1"}
}

// receiptEvent waits for the receipt of purchase pid.
func (h *harness) receiptEvent(pid string) payment.ReceiptInfo {
	h.tb.Helper()
	e := h.next("receipt of "+pid, func(e payment.Event) bool {
		return e.Kind == payment.KindReceipt && e.Receipt.PurchaseID == pid
	})
	return *e.Receipt
}

// A confirmed sale gets exactly one sell receipt at the ККТ; Smart Pay gets
// its registration number and fiscal sign (v1) and the receipt (v2); a
// refund gets one return receipt and its own record; the customer sees the
// receipt's QR. A restart re-sends nothing.
func TestOwnReceipts(t *testing.T) {
	t.Parallel()
	se := startSim(t, sim.Config{SuccessDelay: time.Nanosecond})
	kkt, provider := startKKT(t)
	j := openJournal(t)
	cfg := payment.Config{Receipts: receiptsConfig(provider)}
	h := run(t, cfg, se.Client, j)
	delivered := countEvents(t, h.flow, payment.KindFiscal)
	h.ready()
	ctx := context.Background()
	h.sell(se.Payload(t, "fiscal"), 12345, "Кофе латте")
	paid := h.state(payment.Paid)
	if err := h.flow.Handover(ctx, true); err != nil {
		t.Fatal(err)
	}
	sold := h.receiptEvent(paid.PurchaseID)
	st := kkt.Sim.State()
	if len(st.Receipts) != 1 {
		t.Fatalf("%d receipts at the ККТ, want 1", len(st.Receipts))
	}
	doc := st.Receipts[0]
	if doc.Type != "sell" || doc.Total != 12345 || doc.Items[0].Name != "Кофе латте" || doc.MachineNumber != "VM-7" || !doc.Electronic {
		t.Fatalf("ККТ document: %+v", doc)
	}
	if sold.QR == "" || sold.FiscalSign != doc.Fiscal.FiscalSign || sold.FDNumber != doc.Fiscal.FDNumber {
		t.Fatalf("receipt shown %+v for document %+v", sold, doc.Fiscal)
	}
	if err := h.flow.Fiscal(ctx, payment.FiscalData{KKTRegNumber: "0000000012345678", FiscalSign: "1"}); err == nil {
		t.Fatal("the host's fiscal data accepted while the kassa issues its own")
	}

	info, err := h.flow.Refund(ctx, payment.RefundRequest{PurchaseID: paid.PurchaseID, Amount: 5000})
	if err != nil {
		t.Fatal(err)
	}
	returned := h.next("return receipt", func(e payment.Event) bool {
		return e.Kind == payment.KindReceipt && e.Receipt.Return
	}).Receipt
	if returned.Total != 5000 || info.ID == "" {
		t.Fatalf("return receipt %+v", returned)
	}
	if !delivered.atLeast(4) { // v1 and v2 of the sale and of the return
		t.Fatal("fiscal records not delivered")
	}

	// A restart finds nothing to issue or send again.
	h.stop()
	h = run(t, cfg, se.Client, j)
	h.ready()
	if st := h.flow.Snapshot(); st.ReceiptsPending != 0 || st.FiscalPending != 0 {
		t.Fatalf("after restart: %+v", st)
	}
	st = kkt.Sim.State()
	if len(st.Receipts) != 2 || st.Receipts[1].Type != "sellReturn" || st.Receipts[1].Total != 5000 {
		t.Fatalf("ККТ documents: %+v", st.Receipts)
	}
	var v1, v2 int
	for _, f := range se.State().Fiscal {
		doc := st.Receipts[0]
		if f.Receipt != nil && f.Receipt.Operation != "income" {
			doc = st.Receipts[1]
		}
		switch {
		case f.Version == 1 && f.PurchaseID == paid.PurchaseID && f.KKTRegNumber == doc.Fiscal.RegistrationNumber:
			v1++
		case f.Version == 2 && f.Receipt.FiscalSign == doc.Fiscal.FiscalSign && f.Receipt.FNNumber == doc.Fiscal.FNNumber && f.IDLoyalty == "fiscal":
			v2++
		}
	}
	if v1 != 2 || v2 != 2 {
		t.Fatalf("Smart Pay holds %d v1 and %d v2 matching records, want 2 each: %+v", v1, v2, se.State().Fiscal)
	}
}

// A cloud kassa that cannot confirm (a malformed answer, a report without
// the fiscal sign, an error) leaves the receipt queued with the reason and
// sends nothing to Smart Pay, and issues it once the cloud is back: one
// document, its records then delivered.
func TestReceiptQueuedWhileKassaFails(t *testing.T) {
	t.Parallel()
	se := startSim(t, sim.Config{SuccessDelay: time.Nanosecond})
	cloud := fsimtest.NewOnline(t, fiscalsim.OnlineConfig{}, zap.NewNop())
	provider, err := atolonline.New(atolonline.Config{URL: cloud.URL, Group: "kioskd-group", Login: "kioskd", Password: "kioskd-secret",
		INN: "7700000000", CompanyEmail: "shop@example.com", ClientEmail: "receipts@example.com", Timing: fiscal.Timing{PollFirst: time.Millisecond}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []fiscalsim.Fault{
		{Method: "report", Kind: "no_sign", Count: 1},
		{Method: "operation", Kind: "malformed", Count: 1},
		{Method: "operation", Kind: "status", Status: 500, Count: 1},
	} {
		cloud.Sim.InjectFault(f)
	}
	clock := newFakeClock(t)
	h := run(t, payment.Config{FixedAmount: 700, Clock: clock, Receipts: receiptsConfig(provider)}, se.Client, nil)
	clock.autoAdvance(restingTimers+1, time.Second) // the waits between attempts; the shift keeper's ticker rests
	delivered := countEvents(t, h.flow, payment.KindFiscal)
	h.ready()
	h.scan(se.Payload(t, "kassa-down"))
	done := h.state(payment.Completed)
	h.receiptEvent(done.PurchaseID)
	if st := cloud.Sim.State(); len(st.Receipts) != 1 {
		t.Fatalf("%d documents", len(st.Receipts))
	}
	rs, _ := h.j.Receipts(false)
	if len(rs) != 1 || rs[0].Attempts == 0 {
		t.Fatalf("journal receipts: %+v (the failed attempts are not noted)", rs)
	}
	if !delivered.atLeast(2) {
		t.Fatal("v1 and v2 not delivered")
	}
	for _, f := range se.State().Fiscal {
		if f.Version == 1 && f.FiscalSign != cloud.Sim.State().Receipts[0].Fiscal.FiscalSign {
			t.Fatalf("Smart Pay got fiscal sign %q, the cloud made %+v", f.FiscalSign, cloud.Sim.State().Receipts[0].Fiscal)
		}
	}
}

// A shift older than 24 h at the ККТ is closed and a new one opened before
// the next receipt, which is issued once, in the new shift: nothing is
// lost, and the queue does not stick on the refusal.
func TestReceiptAfterShiftExpired(t *testing.T) {
	t.Parallel()
	se := startSim(t, sim.Config{SuccessDelay: time.Nanosecond})
	kkt, provider := startKKT(t)
	h := run(t, payment.Config{FixedAmount: 900, Receipts: receiptsConfig(provider)}, se.Client, nil)
	h.ready()
	sell := func(user string) payment.ReceiptInfo {
		t.Helper()
		h.scan(se.Payload(t, user))
		done := h.state(payment.Completed)
		return h.receiptEvent(done.PurchaseID)
	}
	first := sell("before")
	opened := kkt.Sim.State().Shift
	kkt.Sim.AdvanceClock(25 * time.Hour) // the shift is now expired
	if st := kkt.Sim.State(); !st.Shift.Expired {
		t.Fatalf("shift not expired: %+v", st.Shift)
	}
	second := sell("after")
	st := kkt.Sim.State()
	if len(st.Receipts) != 2 || st.Shift.Number != opened.Number+1 || !st.Shift.Open || st.Shift.Expired {
		t.Fatalf("after renewal: shift %+v (was %+v), %d receipts", st.Shift, opened, len(st.Receipts))
	}
	doc := st.Receipts[1]
	if doc.Fiscal.ShiftNumber != opened.Number+1 || doc.Fiscal.FiscalSign != second.FiscalSign || doc.Fiscal.FDNumber <= first.FDNumber+2 {
		// +2: the Z report and the opening report are fiscal documents too.
		t.Fatalf("second receipt %+v; first FD %d", doc.Fiscal, first.FDNumber)
	}
	// Refused in the expired shift (no document), then issued under the
	// receipt's next attempt id.
	if refused, _ := st.Task(second.ID); refused.Code != 68 || doc.ID != fiscal.AttemptID(second.ID, 1) {
		t.Fatalf("first attempt %+v; document made under %s", refused, doc.ID)
	}
	if fh := h.flow.FiscalHealth(); fh.ReceiptsPending != 0 || fh.ReceiptProblem != nil {
		t.Fatalf("health after renewal: %+v", fh)
	}
}
