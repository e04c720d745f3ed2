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
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"

	"github.com/kioskd/kioskd/cmd/kioskd/internal/config"
	"github.com/kioskd/kioskd/cmd/kioskd/internal/metrics"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/journal"
	"github.com/kioskd/kioskd/payment/localapi"
	"github.com/kioskd/kioskd/payment/smartpay"
)

// Options are what the caller adds to a configuration.
type Options struct {
	// Ready, when set, is called once the control API listens and the flow
	// runs (after sd_notify READY).
	Ready func()
	// Now is the clock for certificate expiry; time.Now when nil.
	Now func() time.Time
}

// Run runs the agent described by cfg until ctx ends. Every device and
// config value has been validated by config.Parse before Run is called; a
// device that is missing at start is reported and retried, not fatal.
func Run(ctx context.Context, cfg *config.Config, log *zap.Logger, opts Options) error {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	j, err := journal.Open(cfg.Journal)
	if err != nil {
		return fmt.Errorf("agent: open journal %s: %w", cfg.Journal, err)
	}
	defer j.Close()

	m := metrics.New(func() float64 { return float64(j.Size()) })
	h := newHealth()
	// Not ready before the first session; not "offline" on the display either.
	h.set("session", "no session with the service yet")

	client, err := smartpay.NewClient(cfg.SmartPayConfig(), log.Named("smartpay"))
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	defer client.Close()
	svc := &observed{Client: client, m: m, h: h}

	flow, err := payment.New(cfg.PaymentConfig(), svc, j, log.Named("flow"))
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}

	fanout, err := newFanout(cfg, log, m, h)
	if err != nil {
		return err
	}
	sup, err := newSupervisor(cfg, flow, svc, log, m, h)
	if err != nil {
		return err
	}
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
	certDays(cfg, m, h, opts.Now())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	goRun := func(name string, run func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	// The control socket first, so a host can ask for the state while the
	// rest starts (tailscaled does the same).
	goRun("control API", api.Serve)
	goRun("displays", fanout.Run)
	goRun("payment flow", flow.Run)
	goRun("screens", func(ctx context.Context) error { return showEvents(ctx, flow, fanout, cfg.Language, m, h) })
	goRun("scanners", sup.Run)
	goRun("service session", func(ctx context.Context) error { return startSession(ctx, client, h, log) })
	goRun("metrics listener", func(ctx context.Context) error { return serveMetrics(ctx, cfg.Metrics.Listen, m) })

	if err := waitSocket(ctx, cfg.API.Socket); err == nil {
		sent, nerr := daemon.SdNotify(false, daemon.SdNotifyReady)
		if nerr != nil {
			log.Warn("sd_notify READY failed", zap.Error(nerr))
		}
		log.Info("kioskd ready", zap.String("kassa", cfg.Kassa.ID),
			zap.String("socket", cfg.API.Socket), zap.Bool("systemd", sent))
		if opts.Ready != nil {
			opts.Ready()
		}
		goRun("watchdog", func(ctx context.Context) error { return watchdog(ctx, flow, log) })
	}

	<-ctx.Done()
	wg.Wait()
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// waitSocket waits until the control API socket exists: the API listens then.
func waitSocket(ctx context.Context, path string) error {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
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

// startSession logs in to the service, retrying with backoff until it
// works; until then health says the service is unreachable.
func startSession(ctx context.Context, client *smartpay.Client, h *health, log *zap.Logger) error {
	wait := 200 * time.Millisecond
	for {
		err := client.Start(ctx)
		if err == nil {
			h.set("service", "")
			h.set("session", "")
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		h.set("service", "service unreachable: "+err.Error())
		log.Warn("cannot start a session with the service; retrying", zap.Error(err), zap.Duration("in", wait))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(wait*2, 30*time.Second)
	}
}

// certDays publishes the days left on the client certificate and warns in
// health when it is about to expire or has.
func certDays(cfg *config.Config, m *metrics.Metrics, h *health, now time.Time) {
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
	days := cert.NotAfter.Sub(now).Hours() / 24
	m.CertDaysLeft.WithLabelValues(cfg.Service.Cert).Set(days)
	switch {
	case days < 0:
		h.set("certificate", fmt.Sprintf("client certificate expired on %s", cert.NotAfter.Format(time.DateOnly)))
	case days < 14:
		h.set("certificate", fmt.Sprintf("client certificate expires on %s", cert.NotAfter.Format(time.DateOnly)))
	}
}

// health gathers the reasons the agent cannot take payments.
type health struct {
	mu       sync.Mutex
	reasons  map[string]string // source → reason; absent when fine
	scanners int               // scanners configured
	changed  func()
}

func newHealth() *health { return &health{reasons: map[string]string{}} }

// set records (reason != "") or clears the problem of one source.
func (h *health) set(source, reason string) {
	h.mu.Lock()
	old, had := h.reasons[source]
	if reason == "" {
		delete(h.reasons, source)
	} else {
		h.reasons[source] = reason
	}
	changed := h.changed
	h.mu.Unlock()
	if changed != nil && (old != reason || had != (reason != "")) {
		changed()
	}
}

func (h *health) report() (bool, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	reasons := make([]string, 0, len(h.reasons))
	for _, r := range h.reasons {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	return len(reasons) == 0, reasons
}

// scannersDownLocked counts the scanners with a problem.
func (h *health) scannersDownLocked() int {
	n := 0
	for k := range h.reasons {
		if strings.HasPrefix(k, "scanner:") {
			n++
		}
	}
	return n
}

// has reports whether source has a problem now.
func (h *health) has(source string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.reasons[source]
	return ok
}
