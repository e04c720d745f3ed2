package qibixx

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/vending"
)

// Options tunes a Device. The zero value gives the defaults.
type Options struct {
	// ProbeEvery: after this long without a line, the device sends V; if
	// nothing arrives within ProbeTimeout the adapter counts as not
	// answering (a Pi HAT's tty never goes away, so this is how a dead or
	// rebooting adapter shows). Defaults 5 s and 2 s.
	ProbeEvery, ProbeTimeout time.Duration
	// AnswerTimeout bounds the wait for each answer while configuring.
	// Default 2 s.
	AnswerTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait before reopening a port that
	// failed; it doubles after each failure. Defaults 100 ms and 2 s.
	MinBackoff, MaxBackoff time.Duration
	// EventQueue is how many events wait for Next before the device stops
	// reading the adapter. Default 64.
	EventQueue int
}

func (o Options) withDefaults() Options {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.ProbeEvery, 5*time.Second)
	def(&o.ProbeTimeout, 2*time.Second)
	def(&o.AnswerTimeout, 2*time.Second)
	def(&o.MinBackoff, 100*time.Millisecond)
	def(&o.MaxBackoff, 2*time.Second)
	if o.EventQueue <= 0 {
		o.EventQueue = 64
	}
	return o
}

// Stats counts what the device read; for tests and metrics.
type Stats struct {
	Bytes      uint64 // bytes read from the adapter
	Lines      uint64 // lines understood
	Malformed  uint64 // lines with bad fields or noise (ErrMalformedLine)
	Unknown    uint64 // lines of no known kind (ErrUnknownLine)
	Oversize   uint64 // runs of more than MaxLineLen bytes without a newline
	Truncated  uint64 // unfinished lines lost when the link dropped
	OutOfOrder uint64 // lines that made no sense in the vend's state (see decide)
}

// Device is a Qibixx MDB adapter acting as a cashless device of a vending
// machine. Run drives it; Next delivers its events; Approve, Deny, Display
// and Status may be called from any goroutine.
type Device struct {
	cfg      Config
	money    Money
	opts     Options
	log      *zap.Logger
	problems *onceLog
	events   chan vending.Event
	running  atomic.Bool

	mu         sync.Mutex
	p          *port // nil while the port is closed
	sess       session
	status     vending.Status
	stats      Stats
	configured bool // configured at least once: a later configuration is a Reset
}

var (
	_ vending.Machine   = (*Device)(nil)
	_ vending.Displayer = (*Device)(nil)
)

// New validates cfg and returns a Device; nothing is opened until Run.
func New(cfg Config, log *zap.Logger, opts Options) (*Device, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("port", cfg.Port))
	opts = opts.withDefaults()
	return &Device{
		cfg:      cfg,
		money:    cfg.money(),
		opts:     opts,
		log:      log,
		problems: newOnceLog(log),
		events:   make(chan vending.Event, opts.EventQueue),
		status:   vending.Status{Adapter: vending.AdapterMissing, Err: errors.New("qibixx: not opened yet")},
	}, nil
}

// Money returns the conversion between kopecks and the adapter's amounts.
func (d *Device) Money() Money { return d.money }

// Catalogue returns the configured catalogue.
func (d *Device) Catalogue() vending.Catalogue { return d.cfg.Catalogue }

// Run opens the adapter, configures it and reads it until ctx ends, reopening
// and configuring it again after an unplug, a hang-up or a time without
// answers. It returns ctx's error; it may be called once.
func (d *Device) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("qibixx: Run called twice")
	}
	delay := d.opts.MinBackoff
	for {
		ready, err := d.connect(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if ready {
			delay = d.opts.MinBackoff
		}
		if errors.Is(err, errRecovered) {
			continue // the adapter answers again: configure it at once
		}
		d.problems.warn("link|"+err.Error(), "qibixx: adapter unavailable, retrying", zap.Error(err))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, d.opts.MaxBackoff)
	}
}

// Errors that end one connection.
var (
	errRecovered = errors.New("qibixx: adapter answers again after a silence")
	errNoAnswer  = errors.New("qibixx: adapter did not answer")
	errRefused   = errors.New("qibixx: adapter refused the configuration")
	errOversize  = errors.New("qibixx: line longer than MaxLineLen bytes")
)

// input is one item from the reader goroutine.
type input struct {
	line Line
	err  error // *LineError or errOversize: the line was not understood
	at   time.Time
	end  error // non-nil: the reader ended (link lost); the last item
}

// connect runs one open port: configure, then serve. ready reports whether
// the adapter was configured.
func (d *Device) connect(ctx context.Context) (ready bool, err error) {
	p, err := openPort(d.cfg.Port)
	if err != nil {
		d.setAdapter(ctx, vending.AdapterMissing, err)
		return false, err
	}
	d.log.Info("qibixx: adapter port open")
	rctx, stop := context.WithCancel(ctx)
	in := make(chan input, 32)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		d.read(rctx, p, in)
	}()
	defer func() {
		stop()
		<-finished
		d.mu.Lock()
		d.p = nil // no Approve or Display reaches the closed port
		d.mu.Unlock()
		p.close()
		d.detach(ctx, err)
	}()
	d.mu.Lock()
	d.p = p
	d.mu.Unlock()
	d.setAdapter(ctx, vending.AdapterConfiguring, nil)
	if err := d.configure(ctx, in); err != nil {
		return false, err
	}
	return true, d.serve(ctx, in)
}

// read runs on its own goroutine: it splits and parses what the port
// delivers and hands it to connect, until rctx ends or the link fails.
func (d *Device) read(rctx context.Context, p *port, in chan<- input) {
	give := func(x input) bool {
		select {
		case in <- x:
			return true
		case <-rctx.Done():
			return false
		}
	}
	var sp splitter
	err := p.readLoop(rctx, func(b []byte, at time.Time) {
		d.count(func(s *Stats) { s.Bytes += uint64(len(b)) })
		sp.feed(b, func(raw []byte) {
			l, perr := ParseLine(raw)
			give(input{line: l, err: perr, at: at})
		}, func() { give(input{err: errOversize, at: at}) })
	})
	if rctx.Err() != nil {
		return
	}
	if sp.partial() {
		d.count(func(s *Stats) { s.Truncated++ })
		d.problems.warn("truncated", "qibixx: a line was cut off when the link dropped; ignored")
	}
	give(input{end: err, at: time.Now()})
}

// configure switches the slave off, sets its parameters and switches it on
// again [V: the vendor's configuration page: parameters are set while the
// cashless slave is disabled, after every power-on].
func (d *Device) configure(ctx context.Context, in <-chan input) error {
	if err := d.write(CmdEnable(false)); err != nil {
		return err
	}
	for _, c := range d.cfg.setconf() {
		if err := d.write(c); err != nil {
			return err
		}
		if err := d.await(ctx, in, string(c), func(l Line) bool { return l.Kind == KindSetOK }); err != nil {
			return err
		}
	}
	if err := d.write(CmdEnable(true)); err != nil {
		return err
	}
	if err := d.await(ctx, in, "C,1", func(l Line) bool { return l.Kind == KindEnabled && l.On }); err != nil {
		return err
	}
	d.mu.Lock()
	again := d.configured
	d.configured = true
	d.mu.Unlock()
	d.log.Info("qibixx: adapter configured", zap.Bool("again", again))
	d.setAdapter(ctx, vending.AdapterReady, nil)
	if again {
		d.emit(ctx, vending.Reset{By: vending.ResetByAdapter, At: time.Now()})
	}
	return nil
}

// await handles lines until one satisfies ok. A c,ERR line in between is
// the adapter refusing what was sent.
func (d *Device) await(ctx context.Context, in <-chan input, sent string, ok func(Line) bool) error {
	t := time.NewTimer(d.opts.AnswerTimeout)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			err := fmt.Errorf("%w to %s within %v", errNoAnswer, sent, d.opts.AnswerTimeout)
			d.setAdapter(ctx, vending.AdapterNotAnswering, err)
			return err
		case x := <-in:
			if x.end != nil {
				return x.end
			}
			d.handle(ctx, x)
			switch {
			case x.err != nil:
			case x.line.Kind == KindError:
				err := fmt.Errorf("%w: %s answered %q; does this firmware know the key?", errRefused, sent, x.line.Text)
				d.setAdapter(ctx, vending.AdapterConfiguring, err)
				return err
			case ok(x.line):
				return nil
			}
		}
	}
}

// serve handles the adapter's lines and probes it when it is silent.
func (d *Device) serve(ctx context.Context, in <-chan input) error {
	probe := time.NewTimer(d.opts.ProbeEvery)
	defer probe.Stop()
	probing, silent := false, false
	for {
		select {
		case <-ctx.Done():
			d.shutdown()
			return ctx.Err()
		case x := <-in:
			if x.end != nil {
				return x.end
			}
			d.handle(ctx, x)
			if silent {
				return errRecovered
			}
			probing = false
			probe.Reset(d.opts.ProbeEvery)
		case <-probe.C:
			if probing && !silent {
				silent = true
				d.lost(ctx, vending.CauseNotAnswering, vending.AdapterNotAnswering,
					fmt.Errorf("%w to V within %v", errNoAnswer, d.opts.ProbeTimeout))
			}
			if err := d.write(CmdVersion()); err != nil {
				return err
			}
			probing = true
			probe.Reset(d.opts.ProbeTimeout)
		}
	}
}

// shutdown switches the slave off when Run ends, so that the machine stops
// offering cashless payment while nobody answers, unless an approved vend
// still waits for its result (switching off would lose it).
func (d *Device) shutdown() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.p != nil && d.sess.phase != phaseApproved {
		if err := d.p.write(CmdEnable(false)); err != nil {
			d.log.Debug("qibixx: switching the slave off at exit failed", zap.Error(err))
		}
	}
}

// handle acts on one input.
func (d *Device) handle(ctx context.Context, x input) {
	if x.err != nil {
		d.notUnderstood(x.err)
		return
	}
	d.count(func(s *Stats) { s.Lines++ })
	l := x.line
	switch l.Kind {
	case KindStatus:
		d.readerState(ctx, l.Reader, x.at)
	case KindVendRequest:
		d.readerState(ctx, vending.ReaderVend, x.at)
		d.apply(ctx, d.requestFact(l, x.at))
	case KindVendSuccess:
		d.apply(ctx, fact{kind: factSuccess, at: x.at})
	case KindVendFailure:
		d.apply(ctx, fact{kind: factFailure, text: l.Text, at: x.at})
	case KindError:
		d.problems.warn("err|"+l.Text, "qibixx: adapter error", zap.String("error", l.Text))
		d.emit(ctx, vending.AdapterError{Text: l.Text, At: x.at})
	case KindSlave:
		if !l.On {
			d.problems.warn("offline", "qibixx: adapter reports its cashless slave offline")
		}
	case KindOtherMode:
		d.problems.warn("othermode", "qibixx: a line of another adapter mode (master, sniffer…) ignored")
	}
}

func (d *Device) notUnderstood(err error) {
	var le *LineError
	switch {
	case errors.As(err, &le) && errors.Is(err, ErrMalformedLine):
		d.count(func(s *Stats) { s.Malformed++ })
		d.problems.warn(le.Key(), "qibixx: malformed line ignored", zap.String("line", le.Line), zap.String("reason", le.Reason))
	case errors.As(err, &le):
		d.count(func(s *Stats) { s.Unknown++ })
		d.problems.warn(le.Key(), "qibixx: unknown line ignored", zap.String("line", le.Line))
	default:
		d.count(func(s *Stats) { s.Oversize++ })
		d.problems.warn("oversize", "qibixx: over-long line ignored (noise on the link?)", zap.Int("max", MaxLineLen))
	}
}

// requestFact turns a vend request line into a fact: a request, or one the
// device must deny because it cannot be paid correctly.
func (d *Device) requestFact(l Line, at time.Time) fact {
	v := vending.Vend{Item: l.Item}
	p, catalogued := d.cfg.Catalogue[l.Item]
	v.Product = p.Name
	k, err := d.money.Kopecks(l.Amount)
	if err != nil {
		return fact{kind: factBadRequest, vend: v, cause: vending.CauseNotRepresentable, text: err.Error(), at: at}
	}
	v.Amount = k
	if catalogued && p.Price != 0 && p.Price != k {
		return fact{kind: factBadRequest, vend: v, cause: vending.CausePriceMismatch, at: at,
			text: fmt.Sprintf("the machine asks %d kopecks for item %d, the catalogue says %d", k, l.Item, p.Price)}
	}
	return fact{kind: factRequest, vend: v, at: at}
}

// apply runs decide for a fact from the adapter and carries out the result.
func (d *Device) apply(ctx context.Context, f fact) {
	d.mu.Lock()
	next, a := decide(d.sess, f)
	if a.send != "" && d.p != nil {
		if err := d.p.write(a.send); err != nil {
			d.log.Warn("qibixx: write failed", zap.Error(err))
		}
	}
	if d.sess.phase != next.phase {
		d.log.Info("qibixx: vend "+d.sess.phase.String()+" -> "+next.phase.String(),
			zap.Uint64("id", next.vend.ID), zap.Int64("amount", next.vend.Amount), zap.Int("item", next.vend.Item))
	}
	d.sess = next
	if a.note != "" {
		d.stats.OutOfOrder++
	}
	d.mu.Unlock()
	if a.note != "" {
		d.problems.warn("order|"+a.note, "qibixx: "+a.note)
	}
	for _, ev := range a.events {
		if den, ok := ev.(vending.VendDenied); ok {
			d.log.Warn("qibixx: vend request denied", zap.Stringer("cause", den.Cause), zap.String("detail", den.Detail))
		}
		d.emit(ctx, ev)
	}
}

// Approve approves vend request id for amount kopecks (vending.Machine).
func (d *Device) Approve(ctx context.Context, id uint64, amount int64) error {
	text, _ := d.money.Format(amount) // a bad amount differs from the request: decide refuses it
	return d.answer(ctx, fact{kind: factApprove, vend: vending.Vend{ID: id, Amount: amount}, text: text})
}

// Deny denies vend request id (vending.Machine).
func (d *Device) Deny(ctx context.Context, id uint64) error {
	return d.answer(ctx, fact{kind: factDeny, vend: vending.Vend{ID: id}})
}

// answer applies Approve or Deny: the new session is kept only once its
// command was written.
func (d *Device) answer(ctx context.Context, f fact) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	next, a := decide(d.sess, f)
	if a.err != nil {
		d.log.Warn("qibixx: answer to a vend request refused", zap.Error(a.err))
		return a.err
	}
	if d.p == nil {
		return d.status.Problem()
	}
	if err := d.p.write(a.send); err != nil {
		return err
	}
	d.log.Info("qibixx: vend "+d.sess.phase.String()+" -> "+next.phase.String(),
		zap.Uint64("id", f.vend.ID), zap.String("sent", string(a.send)))
	d.sess = next
	return nil
}

// Display shows text on the machine's display (vending.Displayer): at most
// MaxDisplayText characters of printable ASCII.
func (d *Device) Display(ctx context.Context, text string) error {
	cmd, err := CmdDisplay(text)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return d.write(cmd)
}

// Next returns the next event (vending.Machine).
func (d *Device) Next(ctx context.Context) (vending.Event, error) {
	select {
	case ev := <-d.events:
		return ev, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Status returns the adapter's and the reader's state (vending.Machine).
func (d *Device) Status() vending.Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.status
}

// Stats returns the line counters.
func (d *Device) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

func (d *Device) count(f func(*Stats)) {
	d.mu.Lock()
	f(&d.stats)
	d.mu.Unlock()
}

// write sends c to the open port.
func (d *Device) write(c Command) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.p == nil {
		return d.status.Problem()
	}
	return d.p.write(c)
}

// readerState records the reader's state from a status line and runs
// decide when it can end a vend.
func (d *Device) readerState(ctx context.Context, r vending.ReaderState, at time.Time) {
	d.mu.Lock()
	prev := d.status
	d.status.Reader = r
	cur := d.status
	d.mu.Unlock()
	if r != vending.ReaderVend {
		d.apply(ctx, fact{kind: factReader, reader: r, at: at})
	}
	if cur == prev {
		return
	}
	d.log.Info("qibixx: reader " + prev.Reader.String() + " -> " + r.String())
	if r == vending.ReaderInactive && prev.Reader != vending.ReaderUnknown && prev.Reader != vending.ReaderInactive {
		d.emit(ctx, vending.Reset{By: vending.ResetByVMC, At: at})
	}
	d.emit(ctx, vending.StatusChanged{Status: cur, At: at})
}

// setAdapter records the adapter's state.
func (d *Device) setAdapter(ctx context.Context, a vending.AdapterState, err error) {
	d.mu.Lock()
	prev := d.status
	d.status.Adapter, d.status.Err = a, err
	if a != vending.AdapterReady && a != vending.AdapterConfiguring {
		d.status.Reader = vending.ReaderUnknown
	}
	cur := d.status
	d.mu.Unlock()
	if cur.Adapter == prev.Adapter && cur.Reader == prev.Reader && errText(cur.Err) == errText(prev.Err) {
		return
	}
	if cur.Adapter != prev.Adapter {
		d.log.Info("qibixx: adapter "+prev.Adapter.String()+" -> "+a.String(), zap.Error(err))
	}
	d.emit(ctx, vending.StatusChanged{Status: cur, At: time.Now()})
}

// lost ends the vend in progress because the adapter can no longer report
// its result, and records why.
func (d *Device) lost(ctx context.Context, cause vending.Cause, a vending.AdapterState, err error) {
	d.apply(ctx, fact{kind: factLost, cause: cause, at: time.Now()})
	d.setAdapter(ctx, a, err)
}

// detach ends what the closed port leaves open. The adapter's state says
// why it was closed: gone, not answering, refusing the configuration, or
// about to be configured again.
func (d *Device) detach(ctx context.Context, err error) {
	state, cause := vending.AdapterMissing, vending.CauseLinkLost
	switch {
	case err == nil || ctx.Err() != nil:
		err = errors.New("qibixx: stopped")
	case errors.Is(err, errNoAnswer):
		state, cause = vending.AdapterNotAnswering, vending.CauseNotAnswering
	case errors.Is(err, errRefused), errors.Is(err, errRecovered):
		state = vending.AdapterConfiguring
	}
	d.lost(ctx, cause, state, err)
}

// emit delivers ev to Next, waiting while the queue is full (the reader
// then waits too) until ctx ends.
func (d *Device) emit(ctx context.Context, ev vending.Event) {
	select {
	case d.events <- ev:
	case <-ctx.Done():
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
