package payment

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
)

// ErrJournal: the journal cannot be written (disk full, failing): nothing
// that needs a record is started. Ask again once it can.
var ErrJournal = fmt.Errorf("payment: the journal cannot be written")

// diskGuard follows whether the journal can be written, from the outcome
// of every write (journal.OnWrite). While it cannot, new sales are refused
// with a fault on the display and a health reason, and what is in flight
// waits, its next call not made, retrying its write until it is on disk.
// No goroutine: the writers report to it, housekeeping probes it.
type diskGuard struct {
	log *zap.Logger
	hub *Hub

	mu      sync.Mutex
	err     error         // the last failed write; nil while writes succeed
	changed chan struct{} // closed and replaced at every change
	back    func()        // called when writes succeed again (the screen returns)
}

func newDiskGuard(log *zap.Logger, hub *Hub) *diskGuard {
	return &diskGuard{log: log, hub: hub, changed: make(chan struct{})}
}

// note takes the outcome of one journal write: a failure starts (or goes
// on with) the fault. A success does not end it: on a full disk a small
// write may fit in the file's free pages while the next cannot; only a probe
// (cleared) says the disk is back.
func (g *diskGuard) note(err error) {
	if err != nil {
		g.set(err)
	}
}

// cleared ends the fault after a successful probe.
func (g *diskGuard) cleared() { g.set(nil) }

func (g *diskGuard) set(err error) {
	g.mu.Lock()
	was := g.err
	g.err = err
	if (was == nil) == (err == nil) {
		g.mu.Unlock()
		return
	}
	close(g.changed)
	g.changed = make(chan struct{})
	back := g.back
	g.mu.Unlock()
	if err != nil {
		g.log.Error("the journal cannot be written: new sales are refused and what is in flight waits", zap.Error(err))
		g.hub.Publish(Event{Kind: KindFault, Message: "journal: " + err.Error()})
		return
	}
	g.log.Info("the journal is written again: taking sales", zap.NamedError("was", was))
	if back != nil {
		back()
	}
}

// problem is why the journal cannot be written, or nil.
func (g *diskGuard) problem() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrJournal, g.err)
}

// watch returns the problem and a channel closed at its next change.
func (g *diskGuard) watch() (error, <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err, g.changed
}

// retryWrite repeats write until it is on disk or ctx ends (false). The
// pause grows from half a second to ten.
func retryWrite(ctx context.Context, clock clockwork.Clock, write func() error) bool {
	pause := 500 * time.Millisecond
	for write() != nil {
		t := clock.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.Chan():
		}
		pause = min(2*pause, 10*time.Second)
	}
	return true
}
