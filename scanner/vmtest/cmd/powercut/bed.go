package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/kiosktest"
	sp "github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
	"github.com/kioskd/kioskd/scanner/vmtest"
)

// bed is the power-cut test bed: disk, simulator, host and the guest of
// the moment.
type bed struct {
	o        options
	image    string
	disk     *vmtest.Disk // nil with -disk file
	drive    diskArg
	sim      *kiosktest.Sim
	token    string
	apiPort  int
	api      *kiosktest.Client
	host     *kiosktest.Host
	ledger   *kiosktest.Ledger
	stop     context.CancelFunc
	wg       sync.WaitGroup
	reports  []vmtest.BootReport // every boot's journal report
	reported map[string]bool     // violations already printed
	orphans  map[string]bool     // orphan purchases seen

	mu   sync.Mutex
	vm   *vm
	trig *trigger // the armed cut, nil when none
	cut  *cutResult
}

// trigger is an armed cut.
type trigger struct {
	plan      vmtest.CutPlan
	seen      int // matching calls (or flushes) so far
	flushBase int // the disk's flush count when armed
}

// cutResult is one cut, then the recovery from it.
type cutResult struct {
	n       int
	plan    vmtest.CutPlan
	fired   string // what cut the power: the plan, or "fallback"
	cutAt   time.Time
	stopped string // why the host's sales ended before the cut, if they did
	hit     string // the host's view of the sale in flight
	disk    string // what the disk's cache lost
	selling time.Duration
	fsck    string
	// commitID is the sale whose commit the cut met (commit cuts);
	// committed says where its record was after the cut: "journaled", or
	// "not journaled" (the record had not reached the disk: an orphan).
	commitID, committed string

	boot       time.Duration // QEMU start to the guest's report
	mount      time.Duration
	open       []string // the journal's open sales at boot, by phase
	recovery   []string // phase→what became of the purchase
	orphans    int      // new orphan commits: committed at the service, not in the journal
	settle     time.Duration
	violations []string
}

// commitTTL is the simulator's: long enough that a purchase the agent
// cancels after a slow boot is cancelled, not expired, short enough that
// orphans expire before the run ends.
const commitTTL = 30 * time.Second

// stall is how long a sale may show no progress before the cut before it
// counts as stuck.
const stall = 15 * time.Second

func newBed(o options) (*bed, error) {
	b := &bed{o: o, ledger: kiosktest.NewLedger(), reported: map[string]bool{}, orphans: map[string]bool{}}
	s, err := kiosktest.ServeSim(sim.Config{Dir: filepath.Join(o.dir, "sim"), SuccessDelay: 300 * time.Millisecond,
		CommitTTL: commitTTL, Middleware: b.middleware}, "127.0.0.1:0", zap.NewNop())
	if err != nil {
		return nil, err
	}
	b.sim = s
	var tok [16]byte
	_, _ = crand.Read(tok[:])
	b.token = hex.EncodeToString(tok[:])
	if b.apiPort, err = freePort(); err != nil {
		return nil, err
	}
	// The disk: ext4 made here, holding the kassa's certificates and the
	// API token; kioskd creates its journal on the first boot.
	stage := filepath.Join(o.dir, "stage")
	kdir := filepath.Join(stage, strings.TrimPrefix(vmtest.GuestKioskDir, vmtest.GuestDataDir+"/"))
	if err := os.MkdirAll(kdir, 0o755); err != nil {
		return nil, err
	}
	ca, cert, key := s.KassaFiles()
	for src, dst := range map[string]string{ca: "ca.crt", cert: "kassa.crt", key: "kassa.key"} {
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(kdir, dst), data, 0o600); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(kdir, "token"), []byte(b.token+"\n"), 0o600); err != nil {
		return nil, err
	}
	b.image = filepath.Join(o.dir, "disk.img")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-L", "kiosk", "-d", stage, b.image, "64M").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mkfs.ext4: %w: %s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.stop = cancel
	switch o.diskMode {
	case "nbd":
		if b.disk, err = vmtest.OpenDisk(b.image, 0); err != nil {
			return nil, err
		}
		sock := filepath.Join(o.dir, "nbd.sock")
		ln, err := net.Listen("unix", sock)
		if err != nil {
			return nil, err
		}
		b.wg.Add(1)
		go func() { // owner: the bed; ends with close
			defer b.wg.Done()
			if err := b.disk.Serve(ctx, ln); err != nil {
				fmt.Fprintln(os.Stderr, "powercut: disk:", err)
			}
		}()
		b.disk.BeforeFlush(b.atFlush)
		b.drive = diskArg{nbdSock: sock}
	case "file":
		b.drive = diskArg{file: b.image, cache: o.cache}
	default:
		return nil, fmt.Errorf("-disk %q: want nbd or file", o.diskMode)
	}
	b.api = kiosktest.TCPClient(fmt.Sprintf("127.0.0.1:%d", b.apiPort), b.token)
	b.host = &kiosktest.Host{API: b.api, Ledger: b.ledger, QR: s.QR, Poll: 50 * time.Millisecond, Step: 40 * time.Second}
	return b, nil
}

func (b *bed) close() {
	b.mu.Lock()
	v := b.vm
	b.mu.Unlock()
	if v != nil {
		v.kill()
	}
	b.api.CloseIdle()
	b.stop()
	b.wg.Wait()
	if b.disk != nil {
		b.disk.Close()
	}
	b.sim.Close()
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func simPort(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// methods maps the wire paths to the simulator's method names.
var methods = map[string]string{
	sp.PathCommit: sim.MethodCommit, sp.PathRelease: sim.MethodRelease, sp.PathStatus: sim.MethodStatus,
	sp.PathKassaStatus: sim.MethodKassaStatus, sp.PathFiscalV1: sim.MethodFiscalV1, sp.PathFiscalV2: sim.MethodFiscalV2,
	sp.PathRefund: sim.MethodRefund, sp.PathRefundStatus: sim.MethodRefundStatus, sp.PathRefundKassaStatus: sim.MethodRefundKassaStatus,
}

// middleware cuts the power when the armed call reaches the simulator:
// before it is handled, or after (it took effect; the answer is lost).
func (b *bed) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		m := methods[r.URL.Path]
		b.mu.Lock()
		t := b.trig
		fire := t != nil && (t.plan.Kind == vmtest.CutCommit || t.plan.Kind == vmtest.CutCall) && m == t.plan.Method &&
			(t.plan.Detail == "" || bytes.Contains(body, []byte(`"`+t.plan.Detail+`"`)))
		if fire {
			t.seen++
			fire = t.seen == t.plan.Nth
		}
		b.mu.Unlock()
		if !fire {
			next.ServeHTTP(w, r)
			return
		}
		if m == sim.MethodCommit {
			var cb sp.CommitBody
			_ = json.Unmarshal(body, &cb)
			b.mu.Lock()
			if b.cut != nil {
				b.cut.commitID = cb.KassaPurchaseID
			}
			b.mu.Unlock()
		}
		if t.plan.Handled {
			next.ServeHTTP(discard{http.Header{}}, r)
		}
		b.powerOff(t.plan.String())
		panic(http.ErrAbortHandler) // the guest is gone: no answer
	})
}

type discard struct{ h http.Header }

func (d discard) Header() http.Header         { return d.h }
func (d discard) Write(p []byte) (int, error) { return len(p), nil }
func (d discard) WriteHeader(int)             {}

// atFlush is the disk's flush hook: the flush-timed cut.
func (b *bed) atFlush(n int) {
	b.mu.Lock()
	t := b.trig
	fire := t != nil && t.plan.Kind == vmtest.CutFlush && n-t.flushBase == t.plan.Nth
	b.mu.Unlock()
	if fire {
		b.powerOff(t.plan.String())
	}
}

// powerOff is the cut: the disk drops its cache first (nothing the guest
// does after this instant reaches it), then QEMU dies. Only the first call
// per boot acts.
func (b *bed) powerOff(why string) {
	b.mu.Lock()
	v, t, c := b.vm, b.trig, b.cut
	if v == nil || t == nil || c == nil {
		b.mu.Unlock()
		return
	}
	b.trig = nil
	c.fired, c.cutAt = why, time.Now()
	b.mu.Unlock()
	if b.disk != nil {
		rep := b.disk.Cut(vmtest.RNG(t.plan.Seed, "disk"), t.plan.Keep)
		b.mu.Lock()
		c.disk = rep.String()
		b.mu.Unlock()
	}
	_ = v.cmd.Process.Kill()
}

func (b *bed) run() error {
	t0 := time.Now()
	fmt.Printf("powercut: seed %d, disk %s, %s\n", b.o.seed, b.o.diskMode, budget(b.o))
	if b.o.control && b.o.diskMode == "nbd" {
		if err := control(b.o); err != nil {
			return err
		}
	}
	var results []*cutResult
	var prev *cutResult
	for i := 1; ; i++ {
		v, rep, err := b.bootGuest()
		if err != nil {
			return err
		}
		if prev != nil {
			b.recover(v, rep, prev)
			printCut(prev)
		} else {
			b.recover(v, rep, &cutResult{}) // the first boot: a fresh disk
		}
		elapsed := time.Since(t0)
		if b.o.n > 0 && i > b.o.n || b.o.n <= 0 && i > 1 && elapsed+elapsed/time.Duration(i) > b.o.duration {
			break
		}
		plan := vmtest.PlanCutOf(vmtest.CutSeed(b.o.seed, i), vmtest.CutKind(b.o.kind))
		if b.o.cutSeed != 0 {
			plan = vmtest.PlanCut(b.o.cutSeed)
		}
		prev = b.cutOnce(v, i, plan)
		results = append(results, prev)
	}
	final := b.finish()
	took := time.Since(t0)
	return summarize(b.o, results, final, took)
}

func budget(o options) string {
	if o.n > 0 {
		return fmt.Sprintf("%d cuts", o.n)
	}
	return "cuts for " + o.duration.String()
}

// bootGuest boots on the disk and waits for the guest's journal report and
// kioskd's API.
func (b *bed) bootGuest() (*vm, vmtest.BootReport, error) {
	for try := 1; ; try++ {
		if b.disk != nil {
			b.disk.PowerOn()
		}
		v, err := startVM(b.o.kernel, b.o.initrd, b.drive, "run", simPort(b.sim.Addr), b.apiPort, b.o.verbose)
		if err != nil {
			return nil, vmtest.BootReport{}, err
		}
		b.mu.Lock()
		b.vm = v
		b.mu.Unlock()
		select {
		case rep := <-v.boot:
			b.reports = append(b.reports, rep)
			return v, rep, nil
		case <-v.exited:
			err = fmt.Errorf("qemu exited during boot\n%s", v.tail(40))
		case <-time.After(90 * time.Second):
			v.kill()
			err = fmt.Errorf("no boot report in 90s\n%s", v.tail(40))
		}
		b.mu.Lock()
		b.vm = nil
		b.mu.Unlock()
		if v.reachedGuest() || try == 3 {
			return nil, vmtest.BootReport{}, err
		}
		fmt.Printf("powercut: the guest kernel died before the guest program started (try %d); booting again\n", try)
	}
}

// journaled: did the journal on the disk hold the sale at any boot? The
// checks run after a boot's recovery, before new sales, so every purchase
// then is from an earlier boot and the reports are the whole truth; the
// host's view is not (it may have seen a sale's id before its record was
// durable).
func (b *bed) journaled(id string) bool {
	for _, r := range b.reports {
		for _, s := range r.Sales {
			if s.ID == id {
				return true
			}
		}
	}
	return false
}

// recover waits for kioskd to recover and everything to settle after the
// boot, then checks the invariants; the outcome goes into c.
func (b *bed) recover(v *vm, rep vmtest.BootReport, c *cutResult) {
	c.boot = time.Since(v.started)
	c.mount = time.Duration(rep.MountMillis) * time.Millisecond
	fail := func(rule, detail string) { c.violations = append(c.violations, rule+": "+detail) }
	switch {
	case rep.MountError != "":
		fail("mount", rep.MountError)
		return
	case rep.OpenError != "":
		fail("journal-open", rep.OpenError)
	case len(rep.CheckErrors) > 0:
		fail("journal-check", strings.Join(rep.CheckErrors, "; "))
	}
	for _, s := range rep.Open() {
		c.open = append(c.open, s.Phase)
	}
	if c.commitID != "" {
		c.committed = "not journaled"
		for _, s := range rep.Sales {
			if s.ID == c.commitID {
				c.committed = "journaled"
			}
		}
	}
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	b.api.CloseIdle()
	// Bounded by ctx, not by the host's per-step wait: a guest slow under
	// emulation may fail its first logins, retried with a growing pause,
	// and must be given that long.
	if _, err := b.api.WaitState(ctx, 50*time.Millisecond, nil, kiosktest.Quiet); err != nil {
		fail("agent-up", fmt.Sprintf("kioskd not ready %s after the boot: %v\n%s", time.Since(t0).Round(time.Second), err, v.tail(40)))
		return
	}
	// The host asks again for the refunds whose end it did not see.
	for _, r := range b.ledger.Refunds() {
		if !r.Done {
			if err := b.host.Refund(ctx, r.RequestID, r.PurchaseID, r.Amount); err != nil {
				fail("refund-retry", err.Error())
			}
		}
	}
	opts := kiosktest.CheckOptions{Journaled: b.journaled, FiscalDrained: true}
	for {
		st, err := b.api.State(ctx)
		ok, why := kiosktest.Settled(b.sim.State(), opts)
		if err == nil && ok && st.FiscalPending == 0 && (st.State == payment.Idle || st.State.Terminal()) {
			break
		}
		if ctx.Err() != nil {
			fail("settle", fmt.Sprintf("not settled: %s (state %s, fiscal pending %d, err %v)\n%s", why, st.State, st.FiscalPending, err, v.tail(40)))
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.settle = time.Since(t0)
	st := b.sim.State()
	for _, s := range rep.Open() {
		c.recovery = append(c.recovery, s.Phase+"→"+fate(st, s.ID))
	}
	for _, p := range kiosktest.Orphans(st, opts) {
		if !b.orphans[p.ID] {
			b.orphans[p.ID] = true
			c.orphans++
		}
	}
	for _, vi := range kiosktest.Check(st, b.ledger, opts) {
		// The check covers the whole run: report what is new.
		if !b.reported[vi.String()] {
			b.reported[vi.String()] = true
			c.violations = append(c.violations, vi.String())
		}
	}
	select {
	case n := <-v.notes:
		if strings.HasPrefix(n, "fatal") {
			fail("guest", n)
		}
	default:
	}
}

// fate is what became of the purchase of journal sale id.
func fate(st sim.State, id string) string {
	for _, p := range st.Purchases {
		if p.KassaPurchaseID != id {
			continue
		}
		switch {
		case p.Status == sp.Success && p.Confirmed:
			return "confirmed"
		case p.Reversed:
			return "reversed"
		}
		return string(p.Status)
	}
	return "no purchase"
}

// cutOnce arms cut n, sells until the power goes, and checks the disk.
func (b *bed) cutOnce(v *vm, n int, plan vmtest.CutPlan) *cutResult {
	seed := plan.Seed
	c := &cutResult{n: n, plan: plan}
	t := &trigger{plan: plan}
	if b.disk != nil {
		t.flushBase = b.disk.Flushes()
	}
	b.mu.Lock()
	b.trig, b.cut = t, c
	b.mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	sold := make(chan struct{})
	var sellErr error
	var sellEnd time.Time
	go func() { // owner: cutOnce; ends when the agent is gone or ctx ends
		defer close(sold)
		sellErr = b.sell(ctx, n, vmtest.RNG(seed, "sales"))
		sellEnd = time.Now()
	}()
	start := time.Now()
	fallback := 20 * time.Second
	var timer <-chan time.Time
	if plan.Kind == vmtest.CutTimed {
		timer = time.After(plan.After)
	}
	select {
	case <-v.exited:
	case <-timer:
		b.powerOff(plan.String())
	case <-time.After(fallback):
		b.powerOff(fmt.Sprintf("fallback after %s (planned %s)", fallback, plan))
	}
	<-v.exited
	c.selling = time.Since(start)
	cancel()
	<-sold
	b.mu.Lock()
	b.trig, b.cut, b.vm = nil, nil, nil
	if c.fired == "" {
		c.fired = "qemu exited on its own"
		c.violations = append(c.violations, "guest: QEMU exited before the cut\n"+v.tail(40))
	}
	if sellErr != nil && sellEnd.Before(c.cutAt) {
		// With the agent running, the host's sales end only at the cut.
		c.stopped = sellErr.Error()
		c.violations = append(c.violations, "host: the sales stopped before the cut: "+c.stopped+"\n"+v.tail(40))
	}
	b.mu.Unlock()
	if sales := b.ledger.Sales(); len(sales) > 0 {
		s := sales[len(sales)-1]
		switch {
		case s.Done:
			c.hit = "between sales"
		case s.Last == "":
			c.hit = s.Script + "@before the scan"
		default:
			c.hit = s.Script + "@" + s.Last
		}
		// A sale stuck in one state (a scan that never started a sale, a
		// payment never polled to its end) is the agent's fault, not TCG's:
		// every step takes a second or two in the guest.
		if !s.Done && !s.LastAt.IsZero() && c.cutAt.Sub(s.LastAt) > stall {
			c.violations = append(c.violations, fmt.Sprintf("stall: sale %s (%s) showed no progress for %s before the cut, at %q\n%s",
				s.User, s.Script, c.cutAt.Sub(s.LastAt).Round(time.Second), s.Last, v.tail(40)))
		}
	}
	c.fsck = fsck(b.image, filepath.Join(b.o.dir, "fsck.img"))
	if c.fsck != "" {
		c.violations = append(c.violations, "fsck: "+c.fsck)
	}
	return c
}

// sell runs sales (and now and then a refund) until the agent is gone;
// it returns what ended them.
func (b *bed) sell(ctx context.Context, cut int, rr *rand.Rand) error {
	for i := 1; ctx.Err() == nil; i++ {
		script, amount := kiosktest.DefaultMix.Pick(rr)
		user := fmt.Sprintf("cut%d-sale%d", cut, i)
		if err := b.host.Sell(ctx, script, user, amount); err != nil {
			return fmt.Errorf("sale %s (%s): %w", user, script, err)
		}
		if s, _ := b.ledger.Sale(user); s.SawCompleted && rr.IntN(100) < 15 {
			if err := b.host.Refund(ctx, "rq-"+user, s.PurchaseID, amount/2); err != nil {
				return fmt.Errorf("refund of %s: %w", user, err)
			}
		}
	}
	return ctx.Err()
}

// finish waits until any orphan commit has expired at the service, stops
// the guest, and checks everything once more.
func (b *bed) finish() []string {
	opts := kiosktest.CheckOptions{Journaled: b.journaled, FiscalDrained: true, Final: true}
	deadline := time.Now().Add(commitTTL + 5*time.Second)
	for time.Now().Before(deadline) && len(kiosktest.Orphans(b.sim.State(), opts)) > 0 {
		time.Sleep(500 * time.Millisecond)
	}
	b.mu.Lock()
	v := b.vm
	b.vm = nil
	b.mu.Unlock()
	if v != nil {
		v.kill()
	}
	var out []string
	for _, vi := range kiosktest.Check(b.sim.State(), b.ledger, opts) {
		out = append(out, vi.String())
	}
	return out
}
