package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/cmd/kioskd/internal/config"
	"github.com/kioskd/kioskd/cmd/kioskd/internal/metrics"
	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/scanner"
)

// observed is the Smart Pay client as the flow sees it, timing every call
// for the metrics and telling health when the service cannot be reached.
type observed struct {
	*smartpay.Client
	m        *metrics.Metrics
	h        *health
	lastScan atomic.Int64 // unix nanos of the last code a scanner delivered; 0 when consumed
}

var _ payment.Service = (*observed)(nil)

func (o *observed) done(method string, start time.Time, err error) {
	o.m.ObserveCall(method, time.Since(start), err)
	switch {
	case err == nil:
		o.h.set("service", "")
	case errors.Is(err, smartpay.ErrUnavailable):
		o.h.set("service", "service unreachable: "+err.Error())
	}
}

func (o *observed) Commit(ctx context.Context, r smartpay.CommitRequest) (smartpay.CommitResponse, error) {
	start := time.Now()
	resp, err := o.Client.Commit(ctx, r)
	o.done("commit", start, err)
	if scanned := o.lastScan.Swap(0); scanned != 0 && err == nil {
		o.m.ScanToCommit.Observe(time.Since(time.Unix(0, scanned)).Seconds())
	}
	return resp, err
}

func (o *observed) Release(ctx context.Context, id string, amount int64) (smartpay.ReleaseResponse, error) {
	start := time.Now()
	resp, err := o.Client.Release(ctx, id, amount)
	o.done("release", start, err)
	return resp, err
}

func (o *observed) Status(ctx context.Context, id string) (smartpay.StatusResponse, error) {
	start := time.Now()
	resp, err := o.Client.Status(ctx, id)
	o.done("status", start, err)
	return resp, err
}

func (o *observed) KassaStatus(ctx context.Context, id string, s smartpay.KassaStatus) error {
	start := time.Now()
	err := o.Client.KassaStatus(ctx, id, s)
	o.done("kassa_status", start, err)
	return err
}

func (o *observed) FiscalV1(ctx context.Context, r smartpay.FiscalV1Request) error {
	start := time.Now()
	err := o.Client.FiscalV1(ctx, r)
	o.done("fiscal_v1", start, err)
	return err
}

func (o *observed) FiscalV2(ctx context.Context, r smartpay.FiscalV2Request) error {
	start := time.Now()
	err := o.Client.FiscalV2(ctx, r)
	o.done("fiscal_v2", start, err)
	return err
}

func (o *observed) Refund(ctx context.Context, r smartpay.RefundRequest) (smartpay.RefundResponse, error) {
	start := time.Now()
	resp, err := o.Client.Refund(ctx, r)
	o.done("refund", start, err)
	return resp, err
}

func (o *observed) RefundStatus(ctx context.Context, id string) (smartpay.RefundStatusResponse, error) {
	start := time.Now()
	resp, err := o.Client.RefundStatus(ctx, id)
	o.done("refund_status", start, err)
	return resp, err
}

func (o *observed) RefundKassaStatus(ctx context.Context, id string, s smartpay.KassaStatus) error {
	start := time.Now()
	err := o.Client.RefundKassaStatus(ctx, id, s)
	o.done("refund_kassa_status", start, err)
	return err
}

// scanHandler hands scanner output to the flow without queueing.
type scanHandler struct {
	flow *payment.Flow
	svc  *observed
}

func (s scanHandler) FrameStarted(string, time.Time) { s.flow.FrameStarted() }

func (s scanHandler) CodeRead(c scanner.Code) {
	s.svc.lastScan.Store(c.Time.UnixNano())
	s.flow.ScanAt(c.Data, c.Source, c.Time)
}

func newSupervisor(cfg *config.Config, flow *payment.Flow, svc *observed, log *zap.Logger, m *metrics.Metrics, h *health) (*scanner.Supervisor, error) {
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
		h.set("scanner:"+sc.Name, "scanner "+sc.Name+" not open yet")
	}
	return scanner.NewSupervisor(sources, scanHandler{flow: flow, svc: svc}, log.Named("scanner"), scanner.SupervisorOptions{
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
// sales, and replaces the idle screen with "service offline" or "device
// fault" while health says the kiosk cannot take a payment.
func showEvents(ctx context.Context, flow *payment.Flow, out *display.Fanout, lang display.Lang, m *metrics.Metrics, h *health) error {
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
			switch {
			case h.has("service"):
				s = display.Screen{State: display.Offline}
			case h.allScannersDown():
				s = display.Screen{State: display.DeviceFault}
			}
		}
		s.Lang = lang
		out.Show(s)
	}
	show()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-healthChanged:
			show()
		case <-revert.C:
			transient = nil
			show()
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			if ev.Kind == payment.KindState && ev.State.Terminal() {
				m.Sales.WithLabelValues(ev.State.String()).Inc()
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

// allScannersDown is true when scanners are configured and none is open.
func (h *health) allScannersDown() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.scanners > 0 && h.scannersDownLocked() == h.scanners
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
