// Package agent ties the parts of kioskd together: scanners feed the payment
// flow, the flow's events drive the customer displays, the local control API
// and the metrics; health is gathered from all of them. It holds no payment
// logic of its own.
package agent

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/kioskd/kioskd/cmd/kioskd/internal/config"
	"github.com/kioskd/kioskd/cmd/kioskd/internal/metrics"
	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/journal"
	"github.com/kioskd/kioskd/payment/localapi"
	"github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/payment/vending"
)

// Options are what the caller adds to a configuration.
type Options struct {
	// Ready, when set, is called once the control API listens and the flow
	// runs (after sd_notify READY).
	Ready func()
	// Now is the clock for certificate expiry; time.Now when nil.
	Now func() time.Time
	// KeepWarm, when set, replaces the service client's keep-warm period:
	// health follows the service within one period while the kiosk is idle.
	KeepWarm time.Duration
	// ReceiptFor, when set, replaces how long a receipt's QR code stays on
	// the customer display (DefaultReceiptFor).
	ReceiptFor time.Duration
}

// Run runs the agent described by cfg until ctx ends. Every device and
// config value has been validated by config.Parse before Run is called; a
// device that is missing at start is reported and retried, not fatal.
func Run(ctx context.Context, cfg *config.Config, log *zap.Logger, opts Options) error {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	j, err := openJournal(cfg)
	if err != nil {
		return err
	}
	defer j.Close()

	m := metrics.New(func() float64 { return float64(j.Size()) })
	h := newHealth(m)
	h.wait("session", "no session with the service yet")
	watch := &serviceWatch{m: m, h: h}
	scfg := cfg.SmartPayConfig()
	scfg.Observer = watch
	if opts.KeepWarm > 0 {
		scfg.KeepWarm = opts.KeepWarm
	}
	client, err := smartpay.NewClient(scfg, log)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	defer client.Close()

	pcfg := cfg.PaymentConfig()
	if pcfg.Receipts, err = cfg.Receipts(log.Named("fiscal")); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	flow, err := payment.New(pcfg, client, j, log.Named("flow"))
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	m.Func("kioskd_fiscal_pending", "Fiscal records waiting to be accepted by the service.",
		func() float64 { return float64(flow.Snapshot().FiscalPending) })
	m.Func("kioskd_refunds_in_progress", "Refunds not finished.",
		func() float64 { return float64(flow.Snapshot().Refunds) })
	m.CounterFunc("kioskd_fiscal_lost_answers_total", "Fiscal sends that got no answer (each may be a copy at the service).",
		func() float64 { return float64(flow.Snapshot().FiscalLostAnswers) })
	m.CounterFunc("kioskd_fiscal_unconfirmed_total", "Fiscal records given up after repeated sends without an answer.",
		func() float64 { return float64(flow.Snapshot().FiscalUnconfirmed) })
	api, err := localapi.New(localapi.Config{
		Socket:    cfg.API.Socket,
		TCPAddr:   cfg.API.Listen,
		TokenFile: cfg.API.TokenFile,
		Health:    h.report,
		Extra:     extraHandlers(cfg, m),
	}, flow, log.Named("api"))
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	// The control socket first, synchronously, before any device is opened
	// or goroutine started: a host can connect and ask for the state while
	// the rest starts (tailscaled does the same).
	if err := api.Listen(); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	run := func(name string, f func(context.Context) error) {
		g.Go(func() error {
			if err := f(gctx); err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		})
	}
	run("control API", api.Serve)

	// Scanners' openers first: they do no I/O, so nothing is left open when
	// one is refused; then the displays, which open their devices.
	sup, err := newSupervisor(cfg, flow, watch, log, m, h)
	var (
		adapter vending.Adapter
		bridge  *vending.Bridge
		fanout  *display.Fanout
	)
	if err == nil {
		adapter, bridge, err = newVending(cfg, flow, log, m, h)
	}
	if err == nil {
		fanout, err = newFanout(cfg, log, m, h)
	}
	if err != nil {
		g.Go(func() error { return err }) // ends the control API
		return g.Wait()
	}
	certExpiry(cfg, m, h, opts.Now())
	run("displays", fanout.Run)
	run("payment flow", flow.Run)
	so := screenOptions{lang: cfg.Language, receiptFor: opts.ReceiptFor}
	if bridge != nil {
		so.screen = bridge.Screen
		run("vending adapter", adapter.Run)
		run("vending machine", bridge.Run)
	}
	run("screens", func(ctx context.Context) error { return showEvents(ctx, flow, fanout, so, m, h) })
	fm := m.NewFiscal()
	run("fiscal health", func(ctx context.Context) error { return watchFiscal(ctx, flow, fm, h, fiscalEvery) })
	run("scanners", sup.Run)
	run("service session", func(ctx context.Context) error { startSession(ctx, client, log); return nil })
	run("metrics listener", func(ctx context.Context) error { return serveMetrics(ctx, cfg.Metrics.Listen, m) })
	ready(cfg, log, opts)
	run("watchdog", func(ctx context.Context) error { return watchdog(ctx, flow, log) })

	<-gctx.Done()
	logStop(log, context.Cause(gctx), flow.Snapshot())
	err = g.Wait()
	log.Info("kioskd stopped")
	return err
}

// openJournal opens the journal, naming the other kioskd when one holds it.
func openJournal(cfg *config.Config) (*journal.Journal, error) {
	j, err := journal.Open(cfg.Journal)
	if errors.Is(err, journal.ErrLocked) {
		serving := "its control socket is not " + cfg.API.Socket + " (this configuration's api.socket)"
		if c, derr := net.Dial("unix", cfg.API.Socket); derr == nil {
			c.Close()
			serving = "it serves the control socket " + cfg.API.Socket
		}
		return nil, fmt.Errorf("agent: another kioskd holds the journal %s (%s): stop it (systemctl stop kioskd), "+
			"or give this one its own journal and api.socket: %w", cfg.Journal, serving, err)
	}
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	return j, nil
}

// ready tells systemd and the caller that the control API listens and the
// parts run.
func ready(cfg *config.Config, log *zap.Logger, opts Options) {
	sent, err := daemon.SdNotify(false, daemon.SdNotifyReady)
	if err != nil {
		log.Warn("sd_notify READY failed", zap.Error(err))
	}
	log.Info("kioskd ready", zap.String("kassa", cfg.Kassa.ID),
		zap.String("socket", cfg.API.Socket), zap.Bool("systemd", sent))
	if opts.Ready != nil {
		opts.Ready()
	}
}

// logStop says why the agent stops and what it leaves in flight; the
// journal resumes all of it at the next start.
func logStop(log *zap.Logger, cause error, st payment.Status) {
	fields := []zap.Field{zap.String("reason", cause.Error())}
	inFlight := false
	if st.State != payment.Idle && !st.State.Terminal() {
		inFlight = true
		fields = append(fields, zap.Stringer("sale_state", st.State), zap.String("sale_id", st.SaleID))
		if st.PurchaseID != "" {
			fields = append(fields, zap.String("purchase_id", st.PurchaseID))
		}
	}
	if st.Refunds > 0 {
		inFlight = true
		fields = append(fields, zap.Int("refunds_in_progress", st.Refunds))
	}
	if st.FiscalPending > 0 {
		inFlight = true
		fields = append(fields, zap.Int("fiscal_pending", st.FiscalPending))
	}
	if st.ReceiptsPending > 0 {
		inFlight = true
		fields = append(fields, zap.Int("receipts_pending", st.ReceiptsPending))
	}
	msg := "kioskd stopping; nothing in flight"
	if inFlight {
		msg = "kioskd stopping; what is in flight resumes from the journal at the next start"
	}
	if errors.Is(cause, context.Canceled) { // a signal or the caller: a normal stop
		log.Info(msg, fields...)
		return
	}
	log.Error(msg, fields...)
}

// watchdog pings systemd's watchdog at half its interval while the flow
// answers; a wedged flow stops the pings and systemd restarts the agent.
func watchdog(ctx context.Context, flow *payment.Flow, log *zap.Logger) error {
	every, err := daemon.SdWatchdogEnabled(false)
	if err != nil || every == 0 {
		return nil
	}
	t := time.NewTicker(every / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			alive := make(chan struct{})
			go func() { flow.Snapshot(); close(alive) }()
			select {
			case <-alive:
				daemon.SdNotify(false, daemon.SdNotifyWatchdog) //nolint:errcheck // best effort
			case <-time.After(every / 4):
				log.Error("payment flow does not answer; withholding the watchdog ping")
				<-alive // Snapshot returns eventually; keep the goroutine owned
			case <-ctx.Done():
				<-alive
				return nil
			}
		}
	}
}

// startSession makes the first login. When it fails the client's keep-warm
// loop logs in again, from 1 s doubling up to the keep-warm period, until
// the service answers; the client's observer keeps health up to date
// either way.
func startSession(ctx context.Context, client *smartpay.Client, log *zap.Logger) {
	if err := client.Start(ctx); err != nil && ctx.Err() == nil {
		log.Warn("no session with the service yet; trying again from 1 s, doubling up to the keep-warm period", zap.Error(err))
	}
}

// certExpiry publishes when the client certificate expires and warns in
// health when it is about to expire or has.
func certExpiry(cfg *config.Config, m *metrics.Metrics, h *health, now time.Time) {
	data, err := os.ReadFile(cfg.Service.Cert)
	if err != nil {
		h.set("certificate", "client certificate unreadable: "+err.Error())
		return
	}
	block, _ := pem.Decode(data)
	if block == nil {
		h.set("certificate", "client certificate is not PEM")
		return
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		h.set("certificate", "client certificate: "+err.Error())
		return
	}
	m.CertExpiry.WithLabelValues(cfg.Service.Cert).Set(float64(cert.NotAfter.Unix()))
	switch left := cert.NotAfter.Sub(now); {
	case left < 0:
		h.set("certificate", fmt.Sprintf("client certificate expired on %s", cert.NotAfter.Format(time.DateOnly)))
	case left < 14*24*time.Hour:
		h.set("certificate", fmt.Sprintf("client certificate expires on %s", cert.NotAfter.Format(time.DateOnly)))
	}
}
