package qibixx_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kioskd/kioskd/payment/vending"
	"github.com/kioskd/kioskd/payment/vending/qibixx"
	"github.com/kioskd/kioskd/payment/vending/vmcsim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait bounds every wait of these tests: long, because the machine is
// shared and the tests run under -race; a passing test never waits it out.
const wait = 15 * time.Second

var catalogue = vending.Catalogue{
	11: {Name: "Вода 0,5 л", Price: 8000},
	12: {Name: "Кофе американо"},
	21: {Name: "Шоколад", Price: 9550},
}

// rig is the real driver on one end of a pty and the emulated machine on
// the other.
type rig struct {
	t    testing.TB
	ctx  context.Context
	m    *vmcsim.Machine
	dev  *qibixx.Device
	logs *observer.ObservedLogs
	evs  chan vending.Event // filled by a pump goroutine unless noPump
}

type rigOptions struct {
	sim    vmcsim.Config
	before func(*vmcsim.Machine) error // runs on the machine before the device starts
	cfg    func(*qibixx.Config)
	opts   qibixx.Options
	noPump bool
}

func newRig(t testing.TB, o rigOptions) *rig {
	t.Helper()
	link := filepath.Join(t.TempDir(), "mdb0")
	sc := o.sim
	sc.Link = link
	if sc.DispenseTime == 0 {
		sc.DispenseTime = 30 * time.Millisecond
	}
	if sc.SetupDelay == 0 {
		sc.SetupDelay = 10 * time.Millisecond
	}
	m, err := vmcsim.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := qibixx.DefaultConfig()
	cfg.Port = link
	cfg.Catalogue = catalogue
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	if o.opts.MinBackoff == 0 {
		o.opts.MinBackoff, o.opts.MaxBackoff = 20*time.Millisecond, 200*time.Millisecond
	}
	core, logs := observer.New(zapcore.DebugLevel)
	dev, err := qibixx.New(cfg, zap.New(core), o.opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &rig{t: t, ctx: ctx, m: m, dev: dev, logs: logs, evs: make(chan vending.Event, 4096)}
	done := make(chan error, 3)
	go func() { done <- m.Run(ctx) }()
	if o.before != nil {
		if err := o.before(m); err != nil {
			t.Fatal(err)
		}
	}
	go func() { done <- dev.Run(ctx) }()
	n := 2
	if !o.noPump {
		n++
		go func() {
			for {
				ev, err := dev.Next(ctx)
				if err != nil {
					done <- err
					return
				}
				r.evs <- ev
			}
		}()
	}
	t.Cleanup(func() {
		cancel()
		for range n {
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Run: %v", err)
			}
		}
	})
	return r
}

// ready waits until the device can sell and the machine shows it.
func (r *rig) ready() {
	r.t.Helper()
	deadline := time.Now().Add(wait)
	for r.dev.Status().Problem() != nil || r.m.Snapshot().Reader != vending.ReaderEnabled {
		if time.Now().After(deadline) {
			r.t.Fatalf("not ready: device %+v, machine reader %v", r.dev.Status(), r.m.Snapshot().Reader)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// next returns the next event that is not a StatusChanged.
func (r *rig) next() vending.Event {
	r.t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case ev := <-r.evs:
			if _, ok := ev.(vending.StatusChanged); !ok {
				return ev
			}
		case <-timeout:
			r.t.Fatal("no event")
		}
	}
}

// nextVend returns the next vend event, skipping status changes, resets and
// adapter errors.
func (r *rig) nextVend() vending.Event {
	r.t.Helper()
	for {
		switch ev := r.next(); ev.(type) {
		case vending.Reset, vending.AdapterError:
		default:
			return ev
		}
	}
}

// drain returns the events queued now.
func (r *rig) drain() []vending.Event {
	var evs []vending.Event
	for {
		select {
		case ev := <-r.evs:
			evs = append(evs, ev)
		default:
			return evs
		}
	}
}

func expect[T vending.Event](t testing.TB, ev vending.Event) T {
	t.Helper()
	got, ok := ev.(T)
	if !ok {
		var want T
		t.Fatalf("event %T %+v, want %T", ev, ev, want)
	}
	return got
}

// machine waits until the machine's state satisfies cond.
func (r *rig) machine(what string, cond func(vmcsim.Snapshot) bool) vmcsim.Snapshot {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.ctx, wait)
	defer cancel()
	s, err := r.m.Wait(ctx, cond)
	if err != nil {
		r.t.Fatalf("machine never %s: %v; %+v", what, err, s)
	}
	return s
}

func (r *rig) outcome(n int) vmcsim.Outcome {
	r.t.Helper()
	s := r.machine("ended vend "+fmt.Sprint(n), func(s vmcsim.Snapshot) bool { return len(s.Outcomes) >= n })
	return s.Outcomes[n-1]
}

// dispensing makes the machine hang on approved vends, requests item and
// approves it; it returns once the machine is dispensing.
func (r *rig) dispensing(item int) vending.VendRequest {
	r.t.Helper()
	if err := r.m.SetDispense(vmcsim.DispenseHang); err != nil {
		r.t.Fatal(err)
	}
	req := r.request(item)
	if err := r.dev.Approve(r.ctx, req.ID, req.Amount); err != nil {
		r.t.Fatal(err)
	}
	r.machine("dispensed", func(s vmcsim.Snapshot) bool { return s.Session.Phase == "dispensing" })
	return req
}

func (r *rig) request(item int) vending.VendRequest {
	r.t.Helper()
	if err := r.m.Select(item); err != nil {
		r.t.Fatal(err)
	}
	return expect[vending.VendRequest](r.t, r.nextVend())
}

func (r *rig) waitStatus(what string, ok func(vending.Status) bool) {
	r.t.Helper()
	deadline := time.Now().Add(wait)
	for !ok(r.dev.Status()) {
		if time.Now().After(deadline) {
			r.t.Fatalf("device never %s: %+v", what, r.dev.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHandshake(t *testing.T) {
	r := newRig(t, rigOptions{cfg: func(c *qibixx.Config) { c.Address = qibixx.AddressCashless2; c.VendTimeout = 40 * time.Second }})
	r.ready()
	s := r.m.Snapshot()
	want := []string{"C,0",
		"C,SETCONF,mdb-address=0x60", "C,SETCONF,mdb-currency-code=0x1643", "C,SETCONF,mdb-scale-factor=1",
		"C,SETCONF,mdb-decimal-places=2", "C,SETCONF,mdb-always-idle=1", "C,SETCONF,mdb-timeout-vend=40",
		"C,1"}
	if fmt.Sprint(s.Commands[:len(want)]) != fmt.Sprint(want) {
		t.Errorf("commands %q\nwant %q", s.Commands, want)
	}
	if !s.SlaveOn || s.Config["mdb-address"] != "0x60" || s.Config["mdb-timeout-vend"] != "40" {
		t.Errorf("machine: %+v", s)
	}
	if st := r.dev.Status(); st.Adapter != vending.AdapterReady || st.Reader != vending.ReaderEnabled || st.Err != nil {
		t.Errorf("status %+v", st)
	}
}

func TestVendSuccess(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.ready()
	req := r.request(21)
	if req.Amount != 9550 || req.Item != 21 || req.Product != "Шоколад" || req.ID == 0 {
		t.Fatalf("request %+v", req)
	}
	if err := r.dev.Approve(r.ctx, req.ID, req.Amount); err != nil {
		t.Fatal(err)
	}
	ok := expect[vending.VendSuccess](t, r.nextVend())
	if ok.Vend != req.Vend || ok.ByVMCReset {
		t.Errorf("success %+v for %+v", ok, req)
	}
	if o := r.outcome(1); o.Kind != vmcsim.Vended || o.Approved != "95.50" || o.Item != 21 {
		t.Errorf("machine outcome %+v", o)
	}
	// The next vend gets a new id.
	if req2 := r.request(11); req2.ID <= req.ID || req2.Amount != 8000 {
		t.Errorf("second request %+v after %+v", req2, req)
	}
}

func TestVendFailure(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.ready()
	if err := r.m.SetDispense(vmcsim.DispenseFail); err != nil {
		t.Fatal(err)
	}
	req := r.request(11)
	if err := r.dev.Approve(r.ctx, req.ID, 8000); err != nil {
		t.Fatal(err)
	}
	f := expect[vending.VendFailure](t, r.nextVend())
	if f.Vend != req.Vend || f.Reason != "VEND 3" {
		t.Errorf("failure %+v", f)
	}
	if o := r.outcome(1); o.Kind != vmcsim.VendFailed {
		t.Errorf("machine outcome %+v", o)
	}
}

func TestDeny(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.ready()
	req := r.request(12) // not priced in the catalogue: any price
	if err := r.dev.Deny(r.ctx, req.ID); err != nil {
		t.Fatal(err)
	}
	if o := r.outcome(1); o.Kind != vmcsim.Denied {
		t.Errorf("machine outcome %+v", o)
	}
	if err := r.dev.Approve(r.ctx, req.ID, req.Amount); !errors.Is(err, vending.ErrNotPending) {
		t.Errorf("Approve after Deny = %v", err)
	}
	r.ready()
	// Nothing else happened in between: the next vend event is the next request.
	if req2 := r.request(12); req2.ID != req.ID+1 {
		t.Errorf("request %+v after %+v", req2, req)
	}
}

func TestRefusedApprovals(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.ready()
	req := r.request(21)
	if err := r.dev.Approve(r.ctx, req.ID, req.Amount+1); !errors.Is(err, vending.ErrAmountMismatch) {
		t.Errorf("Approve of another amount = %v", err)
	}
	if err := r.dev.Approve(r.ctx, req.ID+1, req.Amount); !errors.Is(err, vending.ErrNotPending) {
		t.Errorf("Approve of another request = %v", err)
	}
	if err := r.dev.Approve(r.ctx, req.ID, req.Amount); err != nil {
		t.Fatal(err)
	}
	if err := r.dev.Deny(r.ctx, req.ID); !errors.Is(err, vending.ErrApproved) {
		t.Errorf("Deny after Approve = %v", err)
	}
	expect[vending.VendSuccess](t, r.nextVend())
	for _, c := range r.m.Snapshot().Commands {
		if c == "C,VEND,95.51" {
			t.Error("a refused approval reached the machine")
		}
	}
}

func TestCustomerCancel(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.ready()
	req := r.request(21)
	if err := r.m.Cancel(); err != nil {
		t.Fatal(err)
	}
	c := expect[vending.SessionCancelled](t, r.nextVend())
	if c.Vend != req.Vend || c.Cause != vending.CauseVMC {
		t.Errorf("cancel %+v", c)
	}
	if err := r.dev.Approve(r.ctx, req.ID, req.Amount); !errors.Is(err, vending.ErrNotPending) {
		t.Errorf("Approve after cancel = %v", err)
	}
	if o := r.outcome(1); o.Kind != vmcsim.CustomerCancelled {
		t.Errorf("machine outcome %+v", o)
	}
}

func TestVMCTimeout(t *testing.T) {
	r := newRig(t, rigOptions{sim: vmcsim.Config{VMCTimeout: 200 * time.Millisecond}})
	r.ready()
	req := r.request(11)
	c := expect[vending.SessionCancelled](t, r.nextVend())
	if c.Vend != req.Vend || c.Cause != vending.CauseVMC {
		t.Errorf("cancel %+v", c)
	}
	if o := r.outcome(1); o.Kind != vmcsim.TimedOut {
		t.Errorf("machine outcome %+v", o)
	}
	if err := r.dev.Approve(r.ctx, req.ID, req.Amount); !errors.Is(err, vending.ErrNotPending) {
		t.Errorf("late Approve = %v", err)
	}
}

// TestVMCTimeoutFromConfig: the emulated VMC waits as long as kioskd's
// vend_timeout told the adapter.
func TestVMCTimeoutFromConfig(t *testing.T) {
	r := newRig(t, rigOptions{cfg: func(c *qibixx.Config) { c.VendTimeout = time.Second }})
	r.ready()
	req := r.request(11)
	c := expect[vending.SessionCancelled](t, r.nextVend())
	// The default would be 30 s; a lower bound well below 1 s keeps a slow
	// read of the request from failing the test.
	if waited := c.At.Sub(req.At); waited < 500*time.Millisecond {
		t.Errorf("the VMC gave up after %v, want about 1s", waited)
	}
}

func TestDeviceDeniesWhatItCannotPay(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.ready()
	if err := r.m.SelectAt(21, 9000); err != nil { // the catalogue says 95.50
		t.Fatal(err)
	}
	d := expect[vending.VendDenied](t, r.nextVend())
	if d.Cause != vending.CausePriceMismatch || d.Amount != 9000 || d.Item != 21 {
		t.Errorf("denied %+v", d)
	}
	if o := r.outcome(1); o.Kind != vmcsim.Denied {
		t.Errorf("machine outcome %+v", o)
	}
}

func TestUnrepresentablePriceDenied(t *testing.T) {
	r := newRig(t, rigOptions{cfg: func(c *qibixx.Config) { c.ScaleFactor = 5; c.Catalogue = nil }})
	r.ready()
	// The machine asks a price that is no whole number of 5-kopeck units.
	if err := r.m.Raw("c,STATUS,VEND,1.23,5\n"); err != nil {
		t.Fatal(err)
	}
	d := expect[vending.VendDenied](t, r.nextVend())
	if d.Cause != vending.CauseNotRepresentable || d.Item != 5 {
		t.Errorf("denied %+v", d)
	}
	r.machine("got C,STOP", func(s vmcsim.Snapshot) bool {
		return len(s.Commands) > 0 && s.Commands[len(s.Commands)-1] == "C,STOP"
	})
}

func TestUnplugAndReopen(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.ready()
	req := r.dispensing(21)
	if err := r.m.Unplug(); err != nil {
		t.Fatal(err)
	}
	u := expect[vending.VendResultUnknown](t, r.nextVend())
	if u.Vend != req.Vend || u.Cause != vending.CauseLinkLost {
		t.Errorf("unknown %+v", u)
	}
	r.waitStatus("missing", func(s vending.Status) bool {
		return errors.Is(s.Problem(), vending.ErrAdapterMissing)
	})
	if err := r.m.Replug(); err != nil {
		t.Fatal(err)
	}
	if rs := expect[vending.Reset](t, r.next()); rs.By != vending.ResetByAdapter {
		t.Errorf("reset %+v", rs)
	}
	r.ready()
	if n := count(r.m.Snapshot().Commands, "C,1"); n != 2 {
		t.Errorf("configured %d times, want 2", n)
	}

	// The symlink alone goes away (udev removed it) and comes back.
	target, err := os.Readlink(r.m.Link())
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(r.m.Link())
	r.waitStatus("missing", func(s vending.Status) bool { return s.Adapter == vending.AdapterMissing })
	if err := os.Symlink(target, r.m.Link()); err != nil {
		t.Fatal(err)
	}
	r.ready()
	if n := count(r.m.Snapshot().Commands, "C,1"); n != 3 {
		t.Errorf("configured %d times, want 3", n)
	}
	req2 := r.request(11)
	if req2.ID <= req.ID {
		t.Errorf("id %d after %d", req2.ID, req.ID)
	}
}

func (r *rig) waitStats(what string, ok func(qibixx.Stats) bool) {
	r.t.Helper()
	deadline := time.Now().Add(wait)
	for !ok(r.dev.Stats()) {
		if time.Now().After(deadline) {
			r.t.Fatalf("device never read %s: %+v", what, r.dev.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func count(lines []string, s string) int {
	n := 0
	for _, l := range lines {
		if l == s {
			n++
		}
	}
	return n
}

// TestAdapterResetHangup: an MDB-USB reboots mid-vend; its tty goes away and
// comes back unconfigured.
func TestAdapterResetHangup(t *testing.T) {
	r := newRig(t, rigOptions{sim: vmcsim.Config{BootTime: 300 * time.Millisecond}})
	r.ready()
	req := r.dispensing(11)
	if err := r.m.ResetAdapter(true); err != nil {
		t.Fatal(err)
	}
	u := expect[vending.VendResultUnknown](t, r.nextVend())
	if u.Vend != req.Vend || u.Cause != vending.CauseLinkLost {
		t.Errorf("unknown %+v", u)
	}
	if rs := expect[vending.Reset](t, r.next()); rs.By != vending.ResetByAdapter {
		t.Errorf("reset %+v", rs)
	}
	r.ready()
	s := r.m.Snapshot()
	if o := s.Outcomes[0]; o.Kind != vmcsim.AdapterLost || !o.Dispensed {
		t.Errorf("machine outcome %+v", o)
	}
	if s.Config["mdb-currency-code"] != "0x1643" {
		t.Errorf("not configured again: %v", s.Config)
	}
	if err := r.m.SetDispense(vmcsim.DispenseOK); err != nil {
		t.Fatal(err)
	}
	req2 := r.request(11)
	if err := r.dev.Approve(r.ctx, req2.ID, req2.Amount); err != nil {
		t.Fatal(err)
	}
	expect[vending.VendSuccess](t, r.nextVend())
}

// TestAdapterResetSilent: a Pi HAT reboots mid-request; its UART stays, the
// adapter falls silent, the probe notices, and it is configured again once
// it answers.
func TestAdapterResetSilent(t *testing.T) {
	r := newRig(t, rigOptions{
		sim:  vmcsim.Config{BootTime: 2 * time.Second},
		opts: qibixx.Options{ProbeEvery: 100 * time.Millisecond, ProbeTimeout: 200 * time.Millisecond},
	})
	r.ready()
	req := r.request(21)
	if err := r.m.ResetAdapter(false); err != nil {
		t.Fatal(err)
	}
	c := expect[vending.SessionCancelled](t, r.nextVend())
	if c.Vend != req.Vend || c.Cause != vending.CauseNotAnswering {
		t.Errorf("cancel %+v", c)
	}
	r.waitStatus("not answering", func(s vending.Status) bool { return errors.Is(s.Problem(), vending.ErrAdapterNotAnswering) })
	if rs := expect[vending.Reset](t, r.next()); rs.By != vending.ResetByAdapter {
		t.Errorf("reset %+v", rs)
	}
	r.ready()
	if n := count(r.m.Snapshot().Commands, "C,1"); n != 2 {
		t.Errorf("configured %d times, want 2", n)
	}
}

func TestVMCResetAfterApprovalIsSuccess(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.ready()
	req := r.dispensing(21)
	if err := r.m.ResetVMC(); err != nil {
		t.Fatal(err)
	}
	ok := expect[vending.VendSuccess](t, r.next())
	if ok.Vend != req.Vend || !ok.ByVMCReset {
		t.Errorf("success %+v", ok)
	}
	if rs := expect[vending.Reset](t, r.next()); rs.By != vending.ResetByVMC {
		t.Errorf("reset %+v", rs)
	}
	if o := r.outcome(1); o.Kind != vmcsim.ResetAfterApproval || !o.Dispensed {
		t.Errorf("machine outcome %+v", o)
	}
	r.ready()
}

func TestVMCResetBeforeApproval(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.ready()
	req := r.request(21)
	if err := r.m.ResetVMC(); err != nil {
		t.Fatal(err)
	}
	c := expect[vending.SessionCancelled](t, r.nextVend())
	if c.Vend != req.Vend || c.Cause != vending.CauseVMCReset {
		t.Errorf("cancel %+v", c)
	}
	r.ready()
}

func TestDisabledByVMC(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.ready()
	if err := r.m.EnableReader(false); err != nil {
		t.Fatal(err)
	}
	r.waitStatus("disabled", func(s vending.Status) bool { return errors.Is(s.Problem(), vending.ErrDisabledByVMC) })
	if err := r.m.EnableReader(true); err != nil {
		t.Fatal(err)
	}
	r.ready()
}

// TestBadLinesLoggedOnceAndIgnored: unknown, malformed, over-long and noisy
// lines change nothing and are logged once per kind.
func TestBadLinesLoggedOnceAndIgnored(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.ready()
	garbage := []string{
		"c,FOO,1\n", "c,FOO,2\n", "c,FOO,3\n", // unknown, one kind
		"c,STATUS,VE\n",                                  // unknown status (truncated keyword)
		"c,STATUS,VEND,abc,1\n", "c,STATUS,VEND,x.y,2\n", // malformed, one kind
		"c,STATUS,VEND,1.00\n",           // truncated: no item
		"\x00\x01\xfe noise\n", "\x7f\n", // noise, one kind
		string(make([]byte, 5000)) + "\n", // over-long
		"c,VEND,SUCCESS,EXTRA\n",          // malformed result: no result
	}
	for _, g := range garbage {
		if err := r.m.Raw(g); err != nil {
			t.Fatal(err)
		}
	}
	// The device still sells, and no event came from the garbage.
	req := r.request(11)
	if req.Amount != 8000 || req.ID != 1 {
		t.Errorf("request %+v", req)
	}
	if err := r.dev.Approve(r.ctx, req.ID, req.Amount); err != nil {
		t.Fatal(err)
	}
	expect[vending.VendSuccess](t, r.nextVend())
	st := r.dev.Stats()
	if st.Unknown != 4 || st.Malformed != 6 || st.Oversize != 1 {
		t.Errorf("stats %+v", st)
	}
	warn := func(msg string) int {
		return r.logs.FilterMessage(msg).FilterLevelExact(zapcore.WarnLevel).Len()
	}
	// Distinct kinds: c,FOO and c,STATUS,VE; a vend request with bad
	// fields, noise, c,VEND with an extra field.
	if n := warn("qibixx: unknown line ignored"); n != 2 {
		t.Errorf("%d warnings for unknown lines, want 2", n)
	}
	if n := warn("qibixx: malformed line ignored"); n != 3 {
		t.Errorf("%d warnings for malformed lines, want 3", n)
	}
	if n := warn("qibixx: over-long line ignored (noise on the link?)"); n != 1 {
		t.Errorf("%d warnings for over-long lines, want 1", n)
	}
}

// TestOutOfOrderLines: results without an approved vend are ignored, a
// repeated request is kept, and a session that ends after approval without
// a result ends in VendResultUnknown — never in a guessed result.
func TestOutOfOrderLines(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.ready()
	for _, l := range []string{"c,VEND,SUCCESS\n", "c,ERR,VEND 3\n"} {
		if err := r.m.Raw(l); err != nil {
			t.Fatal(err)
		}
	}
	req := r.request(21) // the results above made no event
	if req.ID != 1 {
		t.Errorf("request %+v", req)
	}
	if err := r.m.Raw("c,STATUS,VEND,95.50,21\n"); err != nil { // the same request again
		t.Fatal(err)
	}
	// Approve once the device has read it (read after the approval, it
	// would be a new request: see TestDecide).
	r.waitStats("the repeated request", func(s qibixx.Stats) bool { return s.OutOfOrder == 3 })
	if err := r.dev.Approve(r.ctx, req.ID, req.Amount); err != nil {
		t.Fatal(err)
	}
	expect[vending.VendSuccess](t, r.nextVend())
	r.ready()

	req2 := r.dispensing(11)
	if err := r.m.Raw("c,STATUS,ENABLED\n"); err != nil { // the session ends with no result
		t.Fatal(err)
	}
	u := expect[vending.VendResultUnknown](t, r.nextVend())
	if u.Vend != req2.Vend || u.Cause != vending.CauseNoResult {
		t.Errorf("unknown %+v", u)
	}
	if err := r.m.FinishVend(true); err != nil { // its success comes too late: ignored
		t.Fatal(err)
	}
	r.ready()
	req3 := r.request(11)
	if req3.ID != req2.ID+1 {
		t.Errorf("request %+v: an event came in between", req3)
	}
	if st := r.dev.Stats(); st.OutOfOrder < 5 {
		t.Errorf("out of order: %d, want ≥ 5", st.OutOfOrder)
	}
}

func TestTruncatedLineAtUnplug(t *testing.T) {
	// No probe: its answer would complete the half line.
	r := newRig(t, rigOptions{opts: qibixx.Options{ProbeEvery: time.Hour}})
	r.ready()
	half := "c,STATUS,VEND,1.0"
	read := r.dev.Stats().Bytes
	if err := r.m.Raw(half); err != nil {
		t.Fatal(err)
	}
	// Unplug once the device has the half line (or the pty would drop it).
	r.waitStats("the half line", func(s qibixx.Stats) bool { return s.Bytes >= read+uint64(len(half)) })
	if err := r.m.Unplug(); err != nil {
		t.Fatal(err)
	}
	r.waitStatus("missing", func(s vending.Status) bool { return s.Adapter == vending.AdapterMissing })
	if err := r.m.Replug(); err != nil {
		t.Fatal(err)
	}
	r.ready()
	if st := r.dev.Stats(); st.Truncated != 1 {
		t.Errorf("stats %+v", st)
	}
	for _, ev := range r.drain() {
		switch ev.(type) {
		case vending.StatusChanged, vending.Reset:
		default:
			t.Errorf("a truncated line made %T %+v", ev, ev)
		}
	}
}

func TestDisplay(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.ready()
	if err := r.dev.Display(r.ctx, "Scan the QR code"); err != nil {
		t.Fatal(err)
	}
	if err := r.dev.Display(r.ctx, "Отсканируйте QR"); err == nil {
		t.Error("Cyrillic accepted for an MDB display")
	}
	r.machine("displayed the text", func(s vmcsim.Snapshot) bool {
		return len(s.Displays) == 1 && s.Displays[0] == "Scan the QR code"
	})
}

// TestSilentAdapter: an adapter that answers nothing is reported as not
// answering, and configured once it answers.
func TestSilentAdapter(t *testing.T) {
	r := newRig(t, rigOptions{
		before: func(m *vmcsim.Machine) error { return m.Silence(true) },
		opts:   qibixx.Options{AnswerTimeout: 100 * time.Millisecond},
	})
	r.waitStatus("not answering", func(s vending.Status) bool {
		return errors.Is(s.Problem(), vending.ErrAdapterNotAnswering)
	})
	if err := r.m.Silence(false); err != nil {
		t.Fatal(err)
	}
	r.ready()
}

// TestRefusedConfiguration: a firmware that does not know a key keeps the
// device unconfigured, saying which key, and retried.
func TestRefusedConfiguration(t *testing.T) {
	r := newRig(t, rigOptions{sim: vmcsim.Config{UnknownKeys: []string{"mdb-always-idle"}}})
	r.waitStatus("refused", func(s vending.Status) bool {
		p := s.Problem()
		return errors.Is(p, vending.ErrNotConfigured) && strings.Contains(p.Error(), "mdb-always-idle=1")
	})
	r.machine("retried", func(s vmcsim.Snapshot) bool { return count(s.Commands, "C,0") >= 2 })
	if s := r.m.Snapshot(); s.SlaveOn {
		t.Error("the slave was switched on with a refused configuration")
	}
}
