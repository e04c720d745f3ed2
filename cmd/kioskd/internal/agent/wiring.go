package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/cmd/kioskd/internal/config"
	"github.com/kioskd/kioskd/cmd/kioskd/internal/metrics"
	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/scanner"
)

// scanHandler hands scanner output to the flow without queueing.
type scanHandler struct {
	flow  *payment.Flow
	watch *serviceWatch
}

func (s scanHandler) FrameStarted(string, time.Time) { s.flow.FrameStarted() }

func (s scanHandler) CodeRead(c scanner.Code) {
	s.watch.lastScan.Store(c.Time.UnixNano())
	s.flow.ScanAt(c.Data, c.Source, c.Time)
}

func newSupervisor(cfg *config.Config, flow *payment.Flow, watch *serviceWatch, log *zap.Logger, m *metrics.Metrics, h *health) (*scanner.Supervisor, error) {
	var sources []scanner.Source
	h.mu.Lock()
	h.scanners = len(cfg.Scanners)
	h.mu.Unlock()
	for _, sc := range cfg.ScannerConfigs() {
		open, err := scanner.NewOpener(sc, log.Named("scanner"))
		if err != nil {
			return nil, fmt.Errorf("agent: scanner %s: %w", sc.Name, err)
		}
		sources = append(sources, scanner.Source{Name: sc.Name, Open: open})
		m.ScannerUp.WithLabelValues(sc.Name).Set(0)
		h.wait("scanner:"+sc.Name, "scanner "+sc.Name+" not open yet")
	}
	return scanner.NewSupervisor(sources, scanHandler{flow: flow, watch: watch}, log.Named("scanner"), scanner.SupervisorOptions{
		OnStatus: func(st scanner.Status) {
			up := st.State == scanner.StateUp
			m.ScannerUp.WithLabelValues(st.Name).Set(b2f(up))
			if up {
				h.set("scanner:"+st.Name, "")
			} else if st.Err != nil {
				h.set("scanner:"+st.Name, "scanner "+st.Name+" missing: "+st.Err.Error())
			}
		},
	})
}

func newFanout(cfg *config.Config, log *zap.Logger, m *metrics.Metrics, h *health) (*display.Fanout, error) {
	var targets []display.Target
	for _, dc := range cfg.DisplayConfigs() {
		d, err := display.New(dc, log.Named("display"))
		if err != nil {
			for _, t := range targets {
				t.Display.Close()
			}
			return nil, fmt.Errorf("agent: display %s: %w", dc.Name, err)
		}
		targets = append(targets, display.Target{Name: dc.Name, Display: d})
		m.DisplayUp.WithLabelValues(dc.Name).Set(0)
	}
	return display.NewFanout(log.Named("display"), display.FanoutOptions{
		Status: func(name string, up bool, err error) {
			m.DisplayUp.WithLabelValues(name).Set(b2f(up))
			if up {
				h.set("display:"+name, "")
			} else if err != nil {
				h.set("display:"+name, "display "+name+" missing: "+err.Error())
			}
		},
	}, targets...), nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// transientFor is how long a screen that answers a scan (busy, bad code)
// stays before the display returns to the sale's own screen.
const transientFor = 3 * time.Second

// showEvents turns the flow's events into customer screens, counts finished
// sales, and replaces the idle screen with what
// health says while the kiosk cannot take a payment (starting, offline,
// out of order).
func showEvents(ctx context.Context, flow *payment.Flow, out *display.Fanout, lang display.Lang, m *metrics.Metrics,
	h *health) error {
	events, stop := flow.Subscribe()
	defer stop()
	healthChanged := make(chan struct{}, 1)
	h.mu.Lock()
	h.changed = func() {
		select {
		case healthChanged <- struct{}{}:
		default:
		}
	}
	h.mu.Unlock()

	base := display.Screen{State: flow.Snapshot().State.Display()}
	var transient *display.Screen
	revert := time.NewTimer(time.Hour)
	revert.Stop()
	show := func() {
		s := base
		if transient != nil {
			s = *transient
		}
		if s.State == display.Ready {
			if st, ok := h.idleScreen(); ok {
				s = display.Screen{State: st}
			}
		}
		s.Lang = lang
		out.Show(s)
	}
	show()
	// What the flow's snapshot says about health (the journal) is read
	// at every event and every few seconds: a problem appears with an
	// event, but clears quietly.
	flowHealth := func() { h.set("journal", flow.Snapshot().JournalProblem) }
	recheck := time.NewTicker(2 * time.Second)
	defer recheck.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-recheck.C:
			flowHealth()
		case <-healthChanged:
			show()
		case <-revert.C:
			transient = nil
			show()
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			flowHealth()
			switch ev.Kind {
			case payment.KindState:
				if ev.State.Terminal() {
					m.Sales.WithLabelValues(ev.State.String()).Inc()
				}
			case payment.KindDuplicate, payment.KindBadCode, payment.KindBusy:
				m.ScansDropped.WithLabelValues(ev.Kind.String()).Inc()
			}
			s, ok := ev.Screen()
			if !ok {
				continue
			}
			if s.State == display.Busy || s.State == display.BadCode {
				transient = &s
				revert.Reset(transientFor)
			} else {
				base, transient = s, nil
				revert.Stop()
			}
			show()
		}
	}
}

func extraHandlers(cfg *config.Config, m *metrics.Metrics) map[string]http.Handler {
	if !cfg.Metrics.Enabled {
		return nil
	}
	return map[string]http.Handler{"/metrics": m.Handler()}
}

// serveMetrics serves /metrics alone on addr (when set) for a scraper that
// must not reach the control API.
func serveMetrics(ctx context.Context, addr string, m *metrics.Metrics) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	return Serve(ctx, ln, mux)
}

// Serve serves h on ln until ctx ends.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan struct{})
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		select {
		case <-ctx.Done():
			srv.Close()
		case <-served:
		}
	}()
	err := srv.Serve(ln)
	close(served)
	<-closed
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
