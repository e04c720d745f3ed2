package vmcsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/kioskd/kioskd/payment/vending"
)

// Product is one selection of the emulated machine.
type Product struct {
	Item  int    // the selection number the VMC reports
	Name  string // for people
	Price int64  // kopecks
}

// DemoProducts is the machine's default assortment.
var DemoProducts = []Product{
	{Item: 11, Name: "Вода 0,5 л", Price: 8000},
	{Item: 12, Name: "Кофе американо", Price: 12000},
	{Item: 21, Name: "Шоколад", Price: 9550},
	{Item: 22, Name: "Чипсы", Price: 15000},
}

// Config sets up a Machine. Zero durations take the defaults.
type Config struct {
	// Link is the path of the symlink kioskd opens as the adapter's port
	// (required), e.g. /run/kioskd/mdb0.
	Link     string
	Products []Product // default DemoProducts
	// VMCTimeout is how long the VMC waits for approval or denial of a vend
	// request before it gives up. Default: the adapter's mdb-timeout-vend,
	// or 30 s when kioskd did not set it.
	VMCTimeout time.Duration
	// DispenseTime is how long a product takes to drop. Default 1 s.
	DispenseTime time.Duration
	// SetupDelay is each step of the VMC setting the reader up after the
	// slave appears (INACTIVE → DISABLED → ENABLED). Default 100 ms.
	SetupDelay time.Duration
	// BootTime is how long the adapter takes to reboot. Default 500 ms.
	BootTime time.Duration
	// UnknownKeys are SETCONF keys this adapter's firmware refuses, as an
	// older firmware would.
	UnknownKeys []string
	// Narrate, when set, gets a sentence for people about each thing that
	// happens (the REPL prints it); Trace adds every line on the wire.
	Narrate io.Writer
	Trace   bool
}

func (c Config) withDefaults() Config {
	if c.Products == nil {
		c.Products = DemoProducts
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.DispenseTime, time.Second)
	def(&c.SetupDelay, 100*time.Millisecond)
	def(&c.BootTime, 500*time.Millisecond)
	return c
}

// Dispense is what the machine does with an approved vend.
type Dispense int

// Dispense modes.
const (
	DispenseOK   Dispense = iota // the product drops: c,VEND,SUCCESS
	DispenseFail                 // it does not (empty spiral): c,ERR,VEND 3
	DispenseHang                 // no result until FinishVend, a reset or an unplug
)

// OutcomeKind is how a vend ended on the machine.
type OutcomeKind int

// Outcome kinds.
const (
	Vended              OutcomeKind = iota // dispensed and reported: c,VEND,SUCCESS
	VendFailed                             // not dispensed and reported: c,ERR,VEND 3
	Denied                                 // kioskd denied the request (C,STOP or C,VEND,-1)
	TimedOut                               // the VMC's own vend timeout ran out
	CustomerCancelled                      // the customer pressed cancel
	ResetBeforeApproval                    // the VMC reset the reader while the request was pending
	// ResetAfterApproval: the VMC reset the reader between Vend Approved and
	// the result. The product is taken as dispensed: MDB counts this as a
	// success, and no result line is sent (the driver reports
	// VendSuccess{ByVMCReset: true}).
	ResetAfterApproval
	// AdapterLost: the adapter rebooted or its slave was switched off while
	// the vend was in progress; Dispensed says whether it had been approved
	// (the machine then drops the product, but nobody hears of it).
	AdapterLost
	WrongAmount // kioskd approved another amount than the price: refused, not dispensed
)

var outcomeNames = [...]string{"vended", "vend_failed", "denied", "timed_out", "customer_cancelled",
	"reset_before_approval", "reset_after_approval", "adapter_lost", "wrong_amount"}

// String returns the kind's label.
func (k OutcomeKind) String() string {
	if k < 0 || int(k) >= len(outcomeNames) {
		return fmt.Sprintf("OutcomeKind(%d)", int(k))
	}
	return outcomeNames[k]
}

// Outcome is one vend as the machine saw it.
type Outcome struct {
	Kind      OutcomeKind
	Item      int
	Price     int64  // kopecks
	Approved  string // the amount of C,VEND, if any
	Dispensed bool
}

// Session is the vend in progress.
type Session struct {
	Phase       string // "", "requested", "dispensing"
	Item        int
	Price       int64
	RequestedAt time.Time // just before the request line was written
}

// Snapshot is the machine's state, for tests and the REPL.
type Snapshot struct {
	Linked   bool              // the pty exists behind Config.Link
	Silent   bool              // the adapter neither reads nor writes
	Booting  bool              // the adapter is rebooting
	SlaveOn  bool              // C,1 received (and no C,0 or reset since)
	Config   map[string]string // SETCONF values since the adapter's last reset
	Reader   vending.ReaderState
	Session  Session
	Commands []string // host lines received, oldest first (the last maxCommands)
	Displays []string // texts of C,DISPLAY
	Outcomes []Outcome
}

const maxCommands = 1000

// ErrStopped is returned by the script methods once Run has ended.
var ErrStopped = errors.New("vmcsim: machine stopped")

// Machine is a vending machine with a Qibixx adapter in it, seen from the
// adapter's USB port: a pty that kioskd opens. Its methods script what the
// machine and the customer do; each returns once the action was applied.
type Machine struct {
	cfg     Config
	acts    chan action
	stopped chan struct{}

	mu      sync.Mutex
	snap    Snapshot
	changed chan struct{} // closed and replaced at each change

	st state // owned by Run's goroutine
}

// New creates the machine and its pty behind cfg.Link; Run brings it to life.
func New(cfg Config) (*Machine, error) {
	if cfg.Link == "" {
		return nil, errors.New("vmcsim: Config.Link is required: the path kioskd opens as the adapter's port")
	}
	cfg = cfg.withDefaults()
	for _, p := range cfg.Products {
		if p.Item < 0 || p.Item > 65535 || p.Price < 0 {
			return nil, fmt.Errorf("vmcsim: product %+v: want item 0–65535 and a price ≥ 0", p)
		}
	}
	l, err := openLink(cfg.Link)
	if err != nil {
		return nil, err
	}
	m := &Machine{cfg: cfg, acts: make(chan action), stopped: make(chan struct{}), changed: make(chan struct{})}
	m.st = state{m: m, link: l, conf: map[string]string{}, lines: make(chan string)}
	m.publish()
	return m, nil
}

// Link returns the path kioskd opens.
func (m *Machine) Link() string { return m.cfg.Link }

// Products returns the assortment.
func (m *Machine) Products() []Product { return slices.Clone(m.cfg.Products) }

// Run plays the machine until ctx ends, then unplugs the pty. It returns
// ctx's error.
func (m *Machine) Run(ctx context.Context) error {
	defer close(m.stopped)
	s := &m.st
	s.ctx = ctx
	s.timer = time.NewTimer(time.Hour)
	s.timer.Stop()
	s.startReader()
	defer func() {
		s.timer.Stop()
		if s.link != nil {
			s.link.unplug()
		}
		m.publish()
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case line := <-s.lines:
			s.host(line)
		case a := <-m.acts:
			err := a.f(s)
			m.publish()
			a.done <- err
			continue
		case <-s.timer.C:
			s.runDue()
		}
		m.publish()
	}
}

// action is a script method's work for Run's goroutine.
type action struct {
	f    func(*state) error
	done chan<- error
}

// do runs f on Run's goroutine and returns its error once the snapshot
// shows its effect.
func (m *Machine) do(f func(s *state) error) error {
	done := make(chan error, 1)
	select {
	case m.acts <- action{f: f, done: done}:
		return <-done
	case <-m.stopped:
		return ErrStopped
	}
}

// publish copies the state into the snapshot and wakes Wait.
func (m *Machine) publish() {
	s := &m.st
	snap := Snapshot{
		Linked: s.link != nil, Silent: s.silent, Booting: s.booting, SlaveOn: s.slaveOn,
		Config: make(map[string]string, len(s.conf)), Reader: s.reader, Session: s.sess,
		Commands: slices.Clone(s.commands), Displays: slices.Clone(s.displays), Outcomes: slices.Clone(s.outcomes),
	}
	for k, v := range s.conf {
		snap.Config[k] = v
	}
	m.mu.Lock()
	m.snap = snap
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
}

// Snapshot returns the machine's state as of its last completed step (a
// script method's effect shows once the method returned).
func (m *Machine) Snapshot() Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.snap
}

// Wait returns the first snapshot for which cond holds, waiting for changes
// until ctx ends.
func (m *Machine) Wait(ctx context.Context, cond func(Snapshot) bool) (Snapshot, error) {
	for {
		m.mu.Lock()
		snap, changed := m.snap, m.changed
		m.mu.Unlock()
		if cond(snap) {
			return snap, nil
		}
		select {
		case <-ctx.Done():
			return snap, fmt.Errorf("vmcsim: waiting: %w", ctx.Err())
		case <-changed:
		}
	}
}

// Select: the customer selects item; the VMC asks for its price.
func (m *Machine) Select(item int) error {
	return m.do(func(s *state) error {
		p, ok := s.product(item)
		if !ok {
			return fmt.Errorf("vmcsim: no item %d", item)
		}
		return s.request(item, p.Price)
	})
}

// SelectAt: the VMC asks price kopecks for item (a misprogrammed machine).
func (m *Machine) SelectAt(item int, price int64) error {
	return m.do(func(s *state) error { return s.request(item, price) })
}

// Cancel: the customer presses cancel while the VMC waits for approval.
func (m *Machine) Cancel() error {
	return m.do(func(s *state) error {
		if s.sess.Phase != phaseRequested {
			return errors.New("vmcsim: no vend request to cancel")
		}
		s.end(Outcome{Kind: CustomerCancelled}, "c,STATUS,IDLE", "c,STATUS,ENABLED")
		return nil
	})
}

// SetDispense sets what happens to the vends approved from now on.
func (m *Machine) SetDispense(d Dispense) error {
	return m.do(func(s *state) error { s.dispense = d; return nil })
}

// FinishVend ends a hanging vend (DispenseHang) as a success or a failure.
func (m *Machine) FinishVend(ok bool) error {
	return m.do(func(s *state) error {
		if s.sess.Phase != phaseDispensing {
			return errors.New("vmcsim: no vend is dispensing")
		}
		s.finish(ok)
		return nil
	})
}

// ResetVMC: the VMC resets the reader (MDB RESET) and sets it up again.
func (m *Machine) ResetVMC() error {
	return m.do(func(s *state) error { return s.resetVMC() })
}

// EnableReader: the VMC enables (true) or disables (false) the reader, as
// from its service menu.
func (m *Machine) EnableReader(on bool) error {
	return m.do(func(s *state) error { return s.enableReader(on) })
}

// ResetAdapter: the adapter reboots and forgets its configuration. With
// hangup its tty goes away and comes back after BootTime (an MDB-USB
// re-enumerating); without, it is silent for BootTime (a Pi HAT's UART).
func (m *Machine) ResetAdapter(hangup bool) error {
	return m.do(func(s *state) error { s.resetAdapter(hangup); return nil })
}

// Unplug removes the adapter's tty (the USB cable is pulled); the adapter
// and the machine go on.
func (m *Machine) Unplug() error {
	return m.do(func(s *state) error {
		if s.link == nil {
			return errors.New("vmcsim: already unplugged")
		}
		s.unplug()
		return nil
	})
}

// Replug makes a new tty behind the same link.
func (m *Machine) Replug() error {
	return m.do(func(s *state) error {
		if s.link != nil {
			return errors.New("vmcsim: already plugged in")
		}
		return s.replug()
	})
}

// Silence makes the adapter stop (true) or resume (false) reading and
// writing, as a hung firmware would.
func (m *Machine) Silence(on bool) error {
	return m.do(func(s *state) error { s.silent = on; s.narrate("adapter silent: %v", on); return nil })
}

// Raw writes text to kioskd as the adapter, unchanged: garbage, malformed,
// truncated or out-of-order lines.
func (m *Machine) Raw(text string) error {
	return m.do(func(s *state) error {
		if s.link == nil {
			return errors.New("vmcsim: unplugged")
		}
		return s.link.write(text)
	})
}
