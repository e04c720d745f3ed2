package agent

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kioskd/kioskd/cmd/kioskd/internal/metrics"
	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/payment/smartpay"
)

// health gathers the reasons the agent cannot take payments. A reason is a
// fault (something is wrong: the screen says so) or pending (the part has
// not started yet: the screen says "starting").
type health struct {
	m        *metrics.Metrics
	mu       sync.Mutex
	reasons  map[string]problem // source → its problem; absent when fine
	scanners int                // scanners configured
	changed  func()
}

type problem struct {
	reason  string
	pending bool
}

func newHealth(m *metrics.Metrics) *health {
	return &health{m: m, reasons: map[string]problem{}}
}

// set records a fault of source (reason != "") or clears its problem.
func (h *health) set(source, reason string) { h.put(source, problem{reason: reason}) }

// wait records that source has not started yet.
func (h *health) wait(source, reason string) { h.put(source, problem{reason: reason, pending: true}) }

func (h *health) put(source string, p problem) {
	h.mu.Lock()
	old, had := h.reasons[source]
	if p.reason == "" {
		delete(h.reasons, source)
	} else {
		h.reasons[source] = p
	}
	changed := h.changed
	h.m.Ready.Set(b2f(len(h.reasons) == 0))
	h.mu.Unlock()
	if changed != nil && (old != p || had != (p.reason != "")) {
		changed()
	}
}

// report is /healthz: ready, or every reason not to be.
func (h *health) report() (bool, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	reasons := make([]string, 0, len(h.reasons))
	for _, p := range h.reasons {
		reasons = append(reasons, p.reason)
	}
	sort.Strings(reasons)
	return len(reasons) == 0, reasons
}

// idleScreen is what the display shows instead of "show your QR" while the
// kiosk cannot take a payment: offline when the service does not answer
// (or refuses the kassa), out of order only when every scanner has failed
// for real, starting while a part has not started yet.
func (h *health) idleScreen() (display.State, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	faults, scannerFaults, pending := map[string]bool{}, 0, false
	for source, p := range h.reasons {
		switch {
		case p.pending:
			pending = true
		case strings.HasPrefix(source, "scanner:"):
			scannerFaults++
		default:
			faults[source] = true
		}
	}
	switch {
	case faults["journal"]: // no sale can be recorded
		return display.DeviceFault, true
	case faults["service"] || faults["session"]:
		return display.Offline, true
	case h.scanners > 0 && scannerFaults == h.scanners:
		return display.DeviceFault, true
	case pending:
		return display.Starting, true
	}
	return display.Ready, false
}

// serviceWatch is the Smart Pay client's Observer: every call, keep-warm
// pings and logins included, feeds the metrics and tells health whether the
// service answers, so health follows the service while the kiosk is idle.
type serviceWatch struct {
	m        *metrics.Metrics
	h        *health
	lastScan atomic.Int64 // unix nanos of the last code a scanner delivered; 0 when consumed
}

var _ smartpay.Observer = (*serviceWatch)(nil)

// CallDone implements smartpay.Observer.
func (w *serviceWatch) CallDone(method string, took time.Duration, err error) {
	w.m.ObserveCall(method, took, err)
	if method == smartpay.MethodCommit {
		if scanned := w.lastScan.Swap(0); scanned != 0 && err == nil {
			w.m.ScanToCommit.Observe(time.Since(time.Unix(0, scanned)).Seconds())
		}
	}
	switch v := smartpay.VerdictOf(err); {
	case err == nil || v == smartpay.Refused: // the service answered
		w.h.set("service", "")
		switch {
		case method != smartpay.MethodAuth:
		case err == nil:
			w.h.set("session", "")
		default:
			w.h.set("session", "the service refuses this kassa's login: "+err.Error())
		}
	case errors.Is(err, context.Canceled):
		// The caller gave up (a sale ended, the agent stops): nothing was
		// learnt about the service.
	case v == smartpay.Certificate:
		w.h.set("service", "service unreachable, a certificate is refused: "+err.Error())
	default:
		w.h.set("service", "service unreachable: "+err.Error())
	}
}
