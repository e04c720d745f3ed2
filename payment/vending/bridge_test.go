package vending_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/journal"
	sp "github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
	"github.com/kioskd/kioskd/payment/smartpay/sim/simtest"
	"github.com/kioskd/kioskd/payment/vending"
	"github.com/kioskd/kioskd/payment/vending/qibixx"
	"github.com/kioskd/kioskd/payment/vending/vmcsim"
	"github.com/kioskd/kioskd/payment/vending/vmcsim/vmctest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// guard bounds every wait for something that must happen; a passing test
// never waits it out.
const guard = 20 * time.Second

// The machine's assortment: prices ending in 51 are declined by the
// simulator, in 52 stay processing until the kassa cancels.
var products = []vmcsim.Product{
	{Item: 11, Name: "Вода 0,5 л", Price: 8000},
	{Item: 12, Name: "Кофе американо", Price: 12000},
	{Item: 51, Name: "Отклоняемый товар", Price: 5051},
	{Item: 52, Name: "Долгая оплата", Price: 5052},
}

var catalogue = vending.Catalogue{
	11: {Name: "Вода 0,5 л", Price: 8000},
	12: {Name: "Кофе американо"},
	51: {Name: "Отклоняемый товар"},
	52: {Name: "Долгая оплата"},
}

// rig is a whole vending kiosk in the test: the Smart Pay simulator over
// mTLS, the flow on a journal file, the Qibixx driver on a pty whose other
// end is the emulated machine, and the bridge between them.
type rig struct {
	t       *testing.T
	srv     *simtest.Server
	m       *vmcsim.Machine
	dev     *qibixx.Device
	flow    *payment.Flow
	bridge  *vending.Bridge
	obs     *observer
	screens *screens
}

type rigOptions struct {
	vmcTimeout time.Duration // the machine's own vend timeout (default: what kioskd configures)
	vendTO     time.Duration // vending.vend_timeout (default 20s)
	amountTO   time.Duration // timeouts.amount (default 20s)
	handoverTO time.Duration // timeouts.handover (default 20s)
	bootTime   time.Duration // the adapter's reboot (default 100ms)
}

func newRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.vendTO, 20*time.Second)
	def(&o.amountTO, 20*time.Second)
	def(&o.handoverTO, 20*time.Second)
	def(&o.bootTime, 100*time.Millisecond)
	srv := simtest.NewServer(t, sim.Config{SuccessDelay: 50 * time.Millisecond})
	log := zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	j, err := journal.Open(filepath.Join(t.TempDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	flow, err := payment.New(payment.Config{KassaID: "vend", Handover: payment.HandoverVending, Linger: 10 * time.Millisecond,
		Timeouts: payment.Timeouts{Amount: o.amountTO, Handover: o.handoverTO, Payment: 20 * time.Second}},
		srv.NewClient(t), j, log.Named("flow"))
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "mdb0")
	m := vmctest.NewMachine(t, vmcsim.Config{Link: link, Products: products, VMCTimeout: o.vmcTimeout,
		DispenseTime: 30 * time.Millisecond, SetupDelay: 10 * time.Millisecond, BootTime: o.bootTime})
	cfg := qibixx.DefaultConfig()
	cfg.Port, cfg.Catalogue, cfg.VendTimeout = link, catalogue, o.vendTO
	dev, err := qibixx.New(cfg, log.Named("qibixx"), qibixx.Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		ProbeEvery: 300 * time.Millisecond, ProbeTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, srv: srv, m: m, dev: dev, flow: flow, obs: &observer{}}
	r.bridge = vending.NewBridge(flow, dev, log.Named("bridge"), vending.BridgeOptions{AnswerWithin: cfg.AnswerWithin(), Observer: r.obs})
	r.screens = watchScreens(flow, r.bridge)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for name, run := range map[string]func(context.Context) error{
		"device": dev.Run, "flow": flow.Run, "bridge": r.bridge.Run, "screens": r.screens.run,
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("%s: %v", name, err)
			}
		}()
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		j.Close()
	})
	select {
	case <-flow.Ready():
	case <-time.After(guard):
		t.Fatal("the flow never became ready")
	}
	r.waitMachine("the reader enabled", func(s vmcsim.Snapshot) bool { return s.Reader == vending.ReaderEnabled })
	return r
}

// waitMachine waits until the machine's snapshot satisfies cond.
func (r *rig) waitMachine(what string, cond func(vmcsim.Snapshot) bool) vmcsim.Snapshot {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	s, err := r.m.Wait(ctx, cond)
	if err != nil {
		r.t.Fatalf("machine: no %s: %v; commands %q", what, err, s.Commands)
	}
	return s
}

// outcome waits for the machine's n-th vend (1-based) to end and returns it.
func (r *rig) outcome(n int) vmcsim.Outcome {
	r.t.Helper()
	return r.waitMachine(fmt.Sprintf("vend #%d ended", n), func(s vmcsim.Snapshot) bool { return len(s.Outcomes) >= n }).Outcomes[n-1]
}

// scan hands a fresh QR to the flow, as a scanner does.
func (r *rig) scan() { r.flow.Scan(context.Background(), []byte(r.srv.Payload(r.t, "buyer")), "test") }

// purchase waits until the simulator has exactly one purchase and cond
// holds for it.
func (r *rig) purchase(what string, cond func(sim.Purchase) bool) sim.Purchase {
	r.t.Helper()
	deadline := time.Now().Add(guard)
	for {
		st := r.srv.State()
		if len(st.Purchases) == 1 && cond(st.Purchases[0]) {
			return st.Purchases[0]
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("simulator: no purchase %s: %+v", what, st.Purchases)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// settled waits for the flow to end its sale and be idle again.
func (r *rig) settled() payment.Status {
	r.t.Helper()
	deadline := time.Now().Add(guard)
	for {
		st := r.flow.Snapshot()
		if st.State == payment.Idle || st.State.Terminal() {
			return st
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("the flow is still %s", st.State)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func confirmed(p sim.Purchase) bool { return p.Status == sp.Success && p.Confirmed }

// notCharged: the customer keeps the money.
func notCharged(p sim.Purchase) bool {
	return !p.Confirmed && (p.Status == sp.Failed || p.Status == sp.Cancelled || p.Status == sp.Expired)
}

// observer records the bridge's outcomes.
type observer struct {
	mu       sync.Mutex
	outcomes []vending.Outcome
	approved int
	status   vending.Status
}

func (o *observer) VendEnded(out vending.Outcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.outcomes = append(o.outcomes, out)
}

func (o *observer) Approved(time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.approved++
}

func (o *observer) MachineStatus(s vending.Status) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.status = s
}

// want waits until the bridge counted exactly outs.
func (r *rig) want(outs ...vending.Outcome) {
	r.t.Helper()
	deadline := time.Now().Add(guard)
	for {
		r.obs.mu.Lock()
		got := slices.Clone(r.obs.outcomes)
		r.obs.mu.Unlock()
		if slices.Equal(got, outs) {
			return
		}
		if len(got) > len(outs) || time.Now().After(deadline) {
			r.t.Fatalf("bridge outcomes %v, want %v", got, outs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// screens keeps every screen the bridge chose for the flow's events, as
// the agent's display loop does.
type screens struct {
	flow   *payment.Flow
	bridge *vending.Bridge
	mu     sync.Mutex
	shown  []display.Screen
}

func watchScreens(flow *payment.Flow, b *vending.Bridge) *screens {
	return &screens{flow: flow, bridge: b}
}

func (s *screens) run(ctx context.Context) error {
	events, stop := s.flow.Subscribe()
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-events:
			if sc, ok := s.bridge.Screen(ev); ok {
				s.mu.Lock()
				s.shown = append(s.shown, sc)
				s.mu.Unlock()
			}
		}
	}
}

// saw waits until a screen satisfying ok was shown.
func (r *rig) saw(what string, ok func(display.Screen) bool) {
	r.t.Helper()
	deadline := time.Now().Add(guard)
	for {
		r.screens.mu.Lock()
		found := slices.ContainsFunc(r.screens.shown, ok)
		all := slices.Clone(r.screens.shown)
		r.screens.mu.Unlock()
		if found {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("no screen %s among %+v", what, all)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The customer selects first: the display shows the product and its price
// and asks for the QR; the payment approves the vend with exactly the
// price, and the vend success confirms it.
func TestVendSelectionFirst(t *testing.T) {
	r := newRig(t, rigOptions{})
	if err := r.m.Select(12); err != nil {
		t.Fatal(err)
	}
	r.saw("with the product and price", func(s display.Screen) bool {
		return s.State == display.Selected && s.Product == "Кофе американо" && s.Amount == 12000
	})
	r.scan()
	if o := r.outcome(1); o.Kind != vmcsim.Vended || o.Approved != "120.00" || !o.Dispensed {
		t.Fatalf("machine: %+v", o)
	}
	p := r.purchase("confirmed", confirmed)
	if p.Amount != 12000 {
		t.Errorf("paid %d, want the price 12000", p.Amount)
	}
	r.want(vending.OutcomeVended)
	if st := r.settled(); st.State != payment.Completed && st.State != payment.Idle {
		t.Errorf("flow ended %s", st.State)
	}
	r.obs.mu.Lock()
	defer r.obs.mu.Unlock()
	if r.obs.approved != 1 || r.obs.status.Problem() != nil {
		t.Errorf("observer: %d approvals, machine status %+v", r.obs.approved, r.obs.status)
	}
}

// A QR scanned before any selection is committed and waits for it.
func TestVendQRFirst(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.scan()
	r.purchase("committed", func(p sim.Purchase) bool { return p.Status == sp.Committed })
	if err := r.m.Select(11); err != nil {
		t.Fatal(err)
	}
	if o := r.outcome(1); o.Kind != vmcsim.Vended || o.Approved != "80.00" {
		t.Fatalf("machine: %+v", o)
	}
	if p := r.purchase("confirmed", confirmed); p.Amount != 8000 {
		t.Errorf("paid %d", p.Amount)
	}
	r.want(vending.OutcomeVended)
}

// A vend the machine reports failed reverses the payment, and the display
// says the money comes back.
func TestVendFailureReverses(t *testing.T) {
	r := newRig(t, rigOptions{})
	if err := r.m.SetDispense(vmcsim.DispenseFail); err != nil {
		t.Fatal(err)
	}
	if err := r.m.Select(11); err != nil {
		t.Fatal(err)
	}
	r.scan()
	if o := r.outcome(1); o.Kind != vmcsim.VendFailed || o.Approved != "80.00" {
		t.Fatalf("machine: %+v", o)
	}
	p := r.purchase("reversed", func(p sim.Purchase) bool { return p.Status == sp.Cancelled })
	if !p.Reversed || p.Confirmed {
		t.Errorf("purchase %+v: want paid, then reversed", p)
	}
	r.want(vending.OutcomeFailed)
	r.saw("saying the vend failed", func(s display.Screen) bool { return s.State == display.VendFailed && s.Amount == 8000 })
}

// must fails the test on a script error.
func (r *rig) must(err error) {
	r.t.Helper()
	if err != nil {
		r.t.Fatal(err)
	}
}

// paying waits until the payment is released and still processing.
func (r *rig) paying() {
	r.t.Helper()
	r.purchase("released", func(p sim.Purchase) bool { return p.Status == sp.Processing })
}

// dispensing waits until the machine is dropping the approved product.
func (r *rig) dispensing() {
	r.t.Helper()
	r.waitMachine("a vend dispensing", func(s vmcsim.Snapshot) bool { return s.Session.Phase == "dispensing" })
}

// How a vend ends at both ends. Denied and nothing charged: the customer
// cancels on the machine, the machine's own vend timeout runs out, the
// payment is declined, the machine asks another price than the
// catalogue's. Faults of the link and the machine: before the approval the
// vend is denied and nothing charged; after it, a vend with no result
// counts as dispensed (MDB), and the machine did drop the product.
func TestVendEnds(t *testing.T) {
	for _, c := range []struct {
		name      string
		opts      rigOptions
		item      int
		price     int64 // the machine asks this instead of the item's price
		qrFirst   bool
		dispense  vmcsim.Dispense
		when      func(*rig)                  // the moment of the fault
		fault     func(*vmcsim.Machine) error // nil: none
		after     func(*vmcsim.Machine) error // once the payment ended
		machine   []vmcsim.OutcomeKind        // how the machine may have ended it
		dispensed bool                        // and whether it dropped the product
		charged   bool                        // confirmed, or not charged at all
		outcome   vending.Outcome             // as the bridge counts it
	}{
		{name: "customer cancel", item: 52, when: (*rig).paying, fault: (*vmcsim.Machine).Cancel,
			machine: []vmcsim.OutcomeKind{vmcsim.CustomerCancelled}, outcome: vending.OutcomeCancelled},
		{name: "VMC timeout", opts: rigOptions{vmcTimeout: 1500 * time.Millisecond}, item: 52,
			machine: []vmcsim.OutcomeKind{vmcsim.TimedOut}, outcome: vending.OutcomeCancelled},
		{name: "declined", item: 51, machine: []vmcsim.OutcomeKind{vmcsim.Denied}, outcome: vending.OutcomeDeclined},
		// The QR first: its sale waits for a selection, and is cancelled
		// at timeouts.amount when the only one is refused.
		{name: "price mismatch", opts: rigOptions{amountTO: 1500 * time.Millisecond}, item: 11, price: 9000, qrFirst: true,
			machine: []vmcsim.OutcomeKind{vmcsim.Denied}, outcome: vending.OutcomeRefused},
		{name: "unplugged before approval", opts: rigOptions{vmcTimeout: 3 * time.Second}, item: 52,
			when: (*rig).paying, fault: (*vmcsim.Machine).Unplug, after: (*vmcsim.Machine).Replug,
			machine: []vmcsim.OutcomeKind{vmcsim.TimedOut, vmcsim.AdapterLost}, outcome: vending.OutcomeCancelled},
		{name: "unplugged after approval", item: 11, dispense: vmcsim.DispenseHang,
			when: (*rig).dispensing, fault: (*vmcsim.Machine).Unplug,
			after:   func(m *vmcsim.Machine) error { return m.FinishVend(true) }, // the product drops; nobody hears of it
			machine: []vmcsim.OutcomeKind{vmcsim.Vended}, dispensed: true, charged: true, outcome: vending.OutcomeVendedByRule},
		{name: "VMC reset after approval", item: 12, dispense: vmcsim.DispenseHang,
			when: (*rig).dispensing, fault: (*vmcsim.Machine).ResetVMC,
			machine: []vmcsim.OutcomeKind{vmcsim.ResetAfterApproval}, dispensed: true, charged: true, outcome: vending.OutcomeVendedByRule},
		{name: "adapter reset before approval", item: 52,
			when: (*rig).paying, fault: func(m *vmcsim.Machine) error { return m.ResetAdapter(true) },
			machine: []vmcsim.OutcomeKind{vmcsim.AdapterLost}, outcome: vending.OutcomeCancelled},
		// Longer than the driver's probe (300 ms + 300 ms here): it sees
		// the adapter stop answering. A shorter reboot goes unseen, and the
		// flow's timeouts.handover confirms the same way, later.
		{name: "silent adapter reboot after approval", opts: rigOptions{bootTime: 1500 * time.Millisecond}, item: 11, dispense: vmcsim.DispenseHang,
			when: (*rig).dispensing, fault: func(m *vmcsim.Machine) error { return m.ResetAdapter(false) }, // a Pi HAT: the tty stays
			machine: []vmcsim.OutcomeKind{vmcsim.AdapterLost}, dispensed: true, charged: true, outcome: vending.OutcomeVendedByRule},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, c.opts)
			r.must(r.m.SetDispense(c.dispense))
			if c.qrFirst {
				r.scan()
				r.purchase("committed", func(p sim.Purchase) bool { return p.Status == sp.Committed })
			}
			if c.price != 0 {
				r.must(r.m.SelectAt(c.item, c.price))
			} else {
				r.must(r.m.Select(c.item))
			}
			if !c.qrFirst {
				r.scan()
			}
			if c.when != nil {
				c.when(r)
			}
			if c.fault != nil {
				r.must(c.fault(r.m))
			}
			if c.charged {
				r.purchase("confirmed", confirmed)
			} else {
				r.purchase("not charged", notCharged)
			}
			r.want(c.outcome)
			if c.after != nil {
				r.must(c.after(r.m))
			}
			if o := r.outcome(1); !slices.Contains(c.machine, o.Kind) || o.Dispensed != c.dispensed || (o.Approved != "") != c.charged {
				t.Fatalf("machine: %+v, want one of %v, dispensed %v", o, c.machine, c.dispensed)
			}
			r.waitMachine("the reader enabled again", func(s vmcsim.Snapshot) bool { return s.Reader == vending.ReaderEnabled && s.SlaveOn })
		})
	}
}

// A vend failure reported after the flow confirmed the payment (the
// machine said nothing for timeouts.handover) is refunded.
func TestVendFailureAfterTheHandoverTimeout(t *testing.T) {
	r := newRig(t, rigOptions{handoverTO: time.Second})
	r.must(r.m.SetDispense(vmcsim.DispenseHang))
	r.must(r.m.Select(11))
	r.scan()
	r.dispensing()
	p := r.purchase("confirmed by the flow's timeout", confirmed)
	r.must(r.m.FinishVend(false))
	r.want(vending.OutcomeFailed)
	deadline := time.Now().Add(guard)
	for {
		st := r.srv.State()
		if len(st.Refunds) == 1 && st.Refunds[0].PurchaseID == p.ID && st.Refunds[0].Amount == 8000 &&
			st.Refunds[0].Status == sp.RefundSuccess && st.Refunds[0].Confirmed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no refund of the failed vend: %+v", st.Refunds)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Lines the driver does not understand, and a vend result out of order,
// change nothing: the sale ends as the machine really reports it.
func TestVendNoGuessFromBadLines(t *testing.T) {
	r := newRig(t, rigOptions{})
	if err := r.m.Select(11); err != nil {
		t.Fatal(err)
	}
	r.saw("the selection", func(s display.Screen) bool { return s.State == display.Selected })
	for _, l := range []string{
		"c,VEND,SUCCESS\n",             // out of order: nothing approved yet
		"c,ERR,VEND 3\n",               // the same for a failure
		"c,VEND,SUCC\n",                // truncated
		"c,STATUS,VEND,abc,11\n",       // malformed
		"\xff\xfe garbage \x00\n",      // noise
		"c,FROB,1\n",                   // unknown
		"c,STATUS,VEND,80.00,11,7,9\n", // a known line with extra fields
	} {
		if err := r.m.Raw(l); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(guard)
	for st := r.dev.Stats(); st.Malformed+st.Unknown+st.OutOfOrder < 5; st = r.dev.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("the driver did not see the lines: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.obs.mu.Lock()
	early := slices.Clone(r.obs.outcomes)
	r.obs.mu.Unlock()
	if len(early) > 0 || len(r.srv.State().Purchases) > 0 {
		t.Fatalf("bad lines ended something: outcomes %v, purchases %+v", early, r.srv.State().Purchases)
	}
	r.scan()
	if o := r.outcome(1); o.Kind != vmcsim.Vended {
		t.Fatalf("machine: %+v", o)
	}
	r.purchase("confirmed", confirmed)
	r.want(vending.OutcomeVended)
}
