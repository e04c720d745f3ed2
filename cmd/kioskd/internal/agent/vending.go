package agent

import (
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/cmd/kioskd/internal/config"
	"github.com/kioskd/kioskd/cmd/kioskd/internal/metrics"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/vending"
)

// newVending returns the vending machine's adapter and the bridge that
// makes it a host of the flow; nil for both without a vending section.
// Nothing is opened until they run.
func newVending(cfg *config.Config, flow *payment.Flow, log *zap.Logger, m *metrics.Metrics, h *health) (vending.Adapter, *vending.Bridge, error) {
	if cfg.Vending.Settings == nil {
		return nil, nil, nil
	}
	log = log.Named("vending")
	adapter, err := vending.Open(cfg.Vending, log)
	if err != nil {
		return nil, nil, err
	}
	outcomes := make([]string, 0, len(allOutcomes))
	for _, o := range allOutcomes {
		outcomes = append(outcomes, o.String())
	}
	obs := &vendingObserver{m: m.Vending(outcomes...), h: h}
	h.wait("vending", "vending adapter not open yet")
	return adapter, vending.NewBridge(flow, adapter, log, vending.BridgeOptions{
		AnswerWithin: cfg.Vending.Settings.AnswerWithin(),
		Observer:     obs,
	}), nil
}

var allOutcomes = []vending.Outcome{vending.OutcomeVended, vending.OutcomeVendedByRule, vending.OutcomeFailed,
	vending.OutcomeCancelled, vending.OutcomeDeclined, vending.OutcomeRefused}

// vendingObserver turns what the bridge reports into metrics and health.
// Its methods run on the bridge's goroutine.
type vendingObserver struct {
	m       *metrics.Vending
	h       *health
	enabled bool // the machine enabled the reader since the adapter was last configured
}

var _ vending.Observer = (*vendingObserver)(nil)

func (o *vendingObserver) VendEnded(out vending.Outcome) {
	o.m.Vends.WithLabelValues(out.String()).Inc()
}

func (o *vendingObserver) Approved(took time.Duration) { o.m.QRToApproved.Observe(took.Seconds()) }

// MachineStatus: the adapter missing, not answering or refusing its
// configuration, and the machine disabling a reader it had enabled, are
// faults; an adapter being configured and a reader the machine is still
// setting up (inactive, then disabled until it enables it) are a start that
// has not finished. /healthz names both.
func (o *vendingObserver) MachineStatus(s vending.Status) {
	switch {
	case s.Adapter != vending.AdapterReady:
		o.enabled = false
	case s.Reader == vending.ReaderEnabled || s.Reader == vending.ReaderSessionIdle || s.Reader == vending.ReaderVend:
		o.enabled = true
	}
	switch err := s.Problem(); {
	case err == nil:
		o.h.set("vending", "")
	case errors.Is(err, vending.ErrNotConfigured) && s.Err == nil, errors.Is(err, vending.ErrReaderInactive),
		errors.Is(err, vending.ErrDisabledByVMC) && !o.enabled:
		o.h.wait("vending", err.Error())
	default:
		o.h.set("vending", err.Error())
	}
}
