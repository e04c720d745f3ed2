package vmcsim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kioskd/kioskd/payment/vending"
)

// Session phases.
const (
	phaseRequested  = "requested"  // c,STATUS,VEND sent; waiting for C,VEND or C,STOP
	phaseDispensing = "dispensing" // approved; the product is dropping
)

// job is a timed step of the machine (a setup step, the VMC's vend timeout,
// a product dropping). Jobs check an epoch when they run, so that a reset
// or an ended session cancels them without bookkeeping.
type job struct {
	at time.Time
	fn func()
}

// state is the machine: the adapter and the VMC. Only Run's goroutine
// touches it.
type state struct {
	m     *Machine
	ctx   context.Context
	link  *link // nil while unplugged
	lines chan string
	timer *time.Timer
	jobs  []job

	// The adapter.
	silent, booting bool
	slaveOn         bool
	conf            map[string]string
	setupEpoch      uint64 // bumped when the slave goes away: pending setup steps do nothing

	// The VMC.
	reader    vending.ReaderState // as last reported on the wire
	readerOff bool                // the VMC keeps the reader disabled
	sess      Session
	approved  string
	sessEpoch uint64 // bumped when a session ends: its timers do nothing
	dispense  Dispense
	commands  []string
	displays  []string
	outcomes  []Outcome
}

func (s *state) startReader() { go s.link.read(s.ctx, s.lines) }

// after schedules fn on Run's goroutine in d.
func (s *state) after(d time.Duration, fn func()) {
	s.jobs = append(s.jobs, job{at: time.Now().Add(d), fn: fn})
	slices.SortStableFunc(s.jobs, func(a, b job) int { return a.at.Compare(b.at) })
	s.timer.Reset(time.Until(s.jobs[0].at))
}

// runDue runs the jobs whose time has come and rearms the timer.
func (s *state) runDue() {
	for len(s.jobs) > 0 && !time.Now().Before(s.jobs[0].at) {
		j := s.jobs[0]
		s.jobs = s.jobs[1:]
		j.fn()
	}
	if len(s.jobs) > 0 {
		s.timer.Reset(time.Until(s.jobs[0].at))
	}
}

func (s *state) narrate(format string, args ...any) {
	if w := s.m.cfg.Narrate; w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}

func (s *state) product(item int) (Product, bool) {
	i := slices.IndexFunc(s.m.cfg.Products, func(p Product) bool { return p.Item == item })
	if i < 0 {
		return Product{}, false
	}
	return s.m.cfg.Products[i], true
}

func (s *state) productName(item int) string {
	if p, ok := s.product(item); ok {
		return p.Name
	}
	return "item " + strconv.Itoa(item)
}

// send writes lines to kioskd as the adapter. A status line also records
// the reader state it reports. Lines are lost while the adapter is silent,
// rebooting or unplugged.
func (s *state) send(lines ...string) {
	for _, l := range lines {
		if st, ok := strings.CutPrefix(l, "c,STATUS,"); ok {
			st, _, _ = strings.Cut(st, ",")
			if r, ok := readerStates[st]; ok {
				s.reader = r
			}
		}
		if s.silent || s.booting || s.link == nil {
			if s.m.cfg.Trace {
				s.narrate("  (lost) -> %s", l)
			}
			continue
		}
		if s.m.cfg.Trace {
			s.narrate("  -> %s", l)
		}
		if err := s.link.write(l + "\n"); err != nil {
			s.narrate("write to kioskd failed: %v", err)
		}
	}
}

var readerStates = map[string]vending.ReaderState{
	"INACTIVE": vending.ReaderInactive, "DISABLED": vending.ReaderDisabled, "ENABLED": vending.ReaderEnabled,
	"IDLE": vending.ReaderSessionIdle, "VEND": vending.ReaderVend,
}

// setconfKeys are the cashless slave parameters the adapter knows [V: the
// vendor's parameter table, see package qibixx].
var setconfKeys = []string{"mdb-always-idle", "mdb-currency-code", "mdb-ftl-enabled", "mdb-address",
	"mdb-decimal-places", "mdb-scale-factor", "mdb-timeout", "mdb-timeout-idle", "mdb-timeout-vend",
	"mdb-cashsale-enabled", "mdb-restore-funds", "mdb-display-time"}

// host handles one line from kioskd. The answers follow the vendor's
// examples where they show them [V]; the error lines for commands in the
// wrong state copy the shape of the one seen in a client, c,ERR,"START -3"
// [I].
func (s *state) host(line string) {
	if len(s.commands) == maxCommands {
		s.commands = s.commands[1:]
	}
	s.commands = append(s.commands, line)
	if s.silent || s.booting {
		return // the adapter hears nothing
	}
	if s.m.cfg.Trace {
		s.narrate("  <- %s", line)
	}
	cmd, arg, _ := strings.Cut(line, ",")
	sub, val, _ := strings.Cut(arg, ",")
	switch {
	case line == "V":
		s.send("v,4.0.0.0,VMCSIM000001")
	case cmd == "C" && arg == "0":
		s.slaveOff()
		s.send("c,0")
	case cmd == "C" && arg == "1":
		s.slaveOnCmd()
	case cmd == "C" && sub == "SETCONF":
		s.setconf(val)
	case cmd == "C" && sub == "VEND":
		s.approve(val)
	case line == "C,STOP":
		s.stop()
	case cmd == "C" && sub == "START":
		s.start(val)
	case cmd == "C" && sub == "DISPLAY":
		s.displays = append(s.displays, val)
		s.narrate("machine display: %q", val)
	default:
		s.narrate("kioskd sent an unknown command %q", line)
		s.send(`c,ERR,"UNKNOWN -1"`)
	}
}

func (s *state) setconf(kv string) {
	k, v, ok := strings.Cut(kv, "=")
	switch {
	case s.slaveOn:
		s.send(`c,ERR,"SETCONF -1"`) // parameters only change while the slave is off [V]
	case !ok || v == "" || !slices.Contains(setconfKeys, k) || slices.Contains(s.m.cfg.UnknownKeys, k):
		s.send(`c,ERR,"SETCONF -2"`)
	default:
		s.conf[k] = v
		s.send("c,SET,OK")
	}
}

// slaveOnCmd: C,1. The slave appears on the bus and the VMC sets it up
// [V: the vendor's session example: INACTIVE, c,1, r,ACK…, DISABLED, ENABLED].
func (s *state) slaveOnCmd() {
	if s.slaveOn {
		s.send("c,1")
		return
	}
	s.slaveOn = true
	s.narrate("kioskd switched the cashless device on (%s)", s.confSummary())
	s.send("c,STATUS,INACTIVE", "c,1")
	s.setup()
}

// setup is the VMC setting the reader up: Setup, Expansion ID, Reader
// Enable (unless its menu keeps cashless disabled).
func (s *state) setup() {
	epoch := s.setupEpoch
	s.after(s.m.cfg.SetupDelay, func() {
		if epoch != s.setupEpoch {
			return
		}
		s.send("r,ACK", "c,STATUS,DISABLED", "r,ACK")
		s.after(s.m.cfg.SetupDelay, func() {
			if epoch != s.setupEpoch || s.readerOff {
				return
			}
			s.send("c,STATUS,ENABLED")
			s.narrate("the machine accepts cashless payment: choose a product")
		})
	})
}

// slaveOff: C,0 or a reboot. The VMC loses the reader; a vend in progress
// can no longer be reported.
func (s *state) slaveOff() {
	if !s.slaveOn {
		return
	}
	s.slaveOn = false
	s.setupEpoch++
	s.loseSession()
	s.reader = vending.ReaderInactive
	s.narrate("kioskd switched the cashless device off")
}

func (s *state) loseSession() {
	if s.sess.Phase != "" {
		s.end(Outcome{Kind: AdapterLost, Dispensed: s.sess.Phase == phaseDispensing})
	}
}

func (s *state) confSummary() string {
	keys := make([]string, 0, len(s.conf))
	for k, v := range s.conf {
		keys = append(keys, k+"="+v)
	}
	slices.Sort(keys)
	return strings.Join(keys, " ")
}

// request: the customer selected item and the VMC asks for price.
func (s *state) request(item int, price int64) error {
	idle := s.conf["mdb-always-idle"] == "1"
	switch {
	case !s.slaveOn:
		return errors.New("vmcsim: the machine has no cashless device (kioskd has not switched it on)")
	case s.sess.Phase != "":
		return errors.New("vmcsim: a vend is already in progress")
	case idle && s.reader != vending.ReaderEnabled:
		return fmt.Errorf("vmcsim: the reader is %v, not enabled: the machine shows \"cashless unavailable\"", s.reader)
	case !idle && s.reader != vending.ReaderSessionIdle:
		return errors.New("vmcsim: not always-idle: a session must be started (C,START) before a selection")
	}
	text, err := moneyFrom(s.conf).text(price)
	if err != nil {
		return err
	}
	s.sess = Session{Phase: phaseRequested, Item: item, Price: price, RequestedAt: time.Now()}
	s.send("c,STATUS,VEND," + text + "," + strconv.Itoa(item))
	s.approved = ""
	timeout := s.vmcTimeout()
	s.narrate("customer selects %d %s for %s; the machine waits %v for kioskd to approve", item, s.productName(item), rubles(price), timeout)
	epoch := s.sessEpoch
	s.after(timeout, func() {
		if epoch == s.sessEpoch && s.sess.Phase == phaseRequested {
			s.narrate("the machine gave up waiting for kioskd")
			s.end(Outcome{Kind: TimedOut}, "c,STATUS,IDLE", "c,STATUS,ENABLED")
		}
	})
	return nil
}

func (s *state) vmcTimeout() time.Duration {
	if s.m.cfg.VMCTimeout > 0 {
		return s.m.cfg.VMCTimeout
	}
	if n, err := strconv.Atoi(s.conf["mdb-timeout-vend"]); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return 30 * time.Second
}

// approve: C,VEND,<amount>. C,VEND,-1 denies ("stop an active session" [V]).
func (s *state) approve(amount string) {
	if s.sess.Phase != phaseRequested {
		s.narrate("kioskd approved %q with no vend request pending: refused", amount)
		s.send(`c,ERR,"VEND -3"`)
		return
	}
	if amount == "-1" {
		s.stop()
		return
	}
	s.approved = amount
	k, err := moneyFrom(s.conf).kopecks(amount)
	if err != nil || k != s.sess.Price {
		s.narrate("kioskd approved %q for a price of %s: refused, nothing dispensed", amount, rubles(s.sess.Price))
		s.end(Outcome{Kind: WrongAmount}, "c,STATUS,IDLE", "c,STATUS,ENABLED")
		return
	}
	s.send("r,ACK")
	s.sess.Phase = phaseDispensing
	s.narrate("kioskd approved %s: dispensing %s…", rubles(k), s.productName(s.sess.Item))
	if s.dispense == DispenseHang {
		return
	}
	ok, epoch := s.dispense == DispenseOK, s.sessEpoch
	s.after(s.m.cfg.DispenseTime, func() {
		if epoch == s.sessEpoch {
			s.finish(ok)
		}
	})
}

// finish reports the vend's result [V: c,VEND,SUCCESS then IDLE and
// ENABLED; c,ERR,VEND 3 for a failure, the status lines after it are I].
func (s *state) finish(ok bool) {
	if ok {
		s.narrate("vend success: %s dropped", s.productName(s.sess.Item))
		s.end(Outcome{Kind: Vended, Dispensed: true}, "c,VEND,SUCCESS", "c,STATUS,IDLE", "c,STATUS,ENABLED")
		return
	}
	s.narrate("vend failed: %s did not drop; kioskd must give the money back", s.productName(s.sess.Item))
	s.end(Outcome{Kind: VendFailed}, "c,ERR,VEND 3", "c,STATUS,IDLE", "c,STATUS,ENABLED")
}

// stop: C,STOP denies the pending request, or ends a started session.
func (s *state) stop() {
	switch s.sess.Phase {
	case phaseRequested:
		s.narrate("kioskd denied the vend")
		s.end(Outcome{Kind: Denied}, "c,STATUS,IDLE", "c,STATUS,ENABLED")
	case phaseDispensing:
		s.send(`c,ERR,"STOP -3"`)
	default:
		if s.reader == vending.ReaderSessionIdle {
			s.send("c,STATUS,ENABLED")
		}
	}
}

// start: C,START,<funds> opens a session (authorization first).
func (s *state) start(funds string) {
	if s.reader != vending.ReaderEnabled {
		s.send(`c,ERR,"START -3"`)
		return
	}
	s.send("c,STATUS,IDLE," + funds)
}

// end records how the session ended and writes lines.
func (s *state) end(o Outcome, lines ...string) {
	o.Item, o.Price, o.Approved = s.sess.Item, s.sess.Price, s.approved
	s.outcomes = append(s.outcomes, o)
	s.sess, s.approved = Session{}, ""
	s.sessEpoch++
	s.send(lines...)
}

func (s *state) resetVMC() error {
	if !s.slaveOn {
		return errors.New("vmcsim: the cashless device is off: the VMC has no reader to reset")
	}
	s.setupEpoch++
	switch s.sess.Phase {
	case phaseRequested:
		s.end(Outcome{Kind: ResetBeforeApproval})
	case phaseDispensing:
		// MDB: a reset between Vend Approved and Vend Success counts as a
		// success; the product drops, no result line is sent.
		s.end(Outcome{Kind: ResetAfterApproval, Dispensed: true})
	}
	s.narrate("the VMC resets the reader")
	s.send("c,STATUS,INACTIVE")
	s.setup()
	return nil
}

func (s *state) enableReader(on bool) error {
	if s.sess.Phase != "" {
		return errors.New("vmcsim: a vend is in progress")
	}
	s.readerOff = !on
	switch {
	case !s.slaveOn:
	case on && s.reader == vending.ReaderDisabled:
		s.send("c,STATUS,ENABLED")
	case !on && (s.reader == vending.ReaderEnabled || s.reader == vending.ReaderSessionIdle):
		s.send("c,STATUS,DISABLED")
	}
	s.narrate("the VMC %s the reader", map[bool]string{true: "enables", false: "disables"}[on])
	return nil
}

func (s *state) resetAdapter(hangup bool) {
	s.narrate("the adapter reboots (hang-up: %v)", hangup)
	s.slaveOff()
	s.conf = map[string]string{}
	s.booting = true
	if hangup && s.link != nil {
		s.unplug()
	}
	s.after(s.m.cfg.BootTime, func() {
		s.booting = false
		if hangup && s.link == nil {
			if err := s.replug(); err != nil {
				s.narrate("the adapter did not come back: %v", err)
			}
		}
		s.narrate("the adapter is up again, unconfigured")
	})
}

func (s *state) unplug() {
	s.link.unplug()
	s.link = nil
	s.narrate("adapter unplugged")
}

func (s *state) replug() error {
	l, err := openLink(s.m.cfg.Link)
	if err != nil {
		return err
	}
	s.link = l
	s.startReader()
	s.narrate("adapter plugged in at %s", s.m.cfg.Link)
	return nil
}
