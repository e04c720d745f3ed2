package payment

import (
	"fmt"
	"time"

	"github.com/jonboulle/clockwork"
)

// Hand-over modes: who says the goods reached the customer.
const (
	HandoverHost = "host" // the host application (POST /v1/sale/handover)
	HandoverAuto = "auto" // nobody: confirm as soon as the payment succeeds
	// HandoverVending: the vending machine's vend result (payment/vending);
	// to the flow it is a host like any other.
	HandoverVending = "vending"
)

// Defaults of Config; the configuration file documents and uses these.
const (
	DefaultAmountTimeout   = 60 * time.Second
	DefaultPaymentTimeout  = 120 * time.Second
	DefaultHandoverTimeout = 60 * time.Second
	DefaultCallTimeout     = 10 * time.Second
	DefaultDuplicateWindow = 2 * time.Second
	DefaultRetention       = 7 * 24 * time.Hour
	DefaultLinger          = 3 * time.Second
)

// Timeouts bound each wait of a sale. Zero values take the defaults.
type Timeouts struct {
	Amount   time.Duration // committed, no amount from the host: cancel (the customer walked away)
	Payment  time.Duration // released, not final: cancel
	Handover time.Duration // paid, no hand-over from the host: cancel
	// Call is the whole deadline of one service call, the client's own
	// retries included (each attempt has the client's attempt timeout).
	Call time.Duration
}

// Config configures a Flow.
type Config struct {
	KassaID         string        // for logs
	FixedAmount     int64         // kopecks; >0 makes every sale this price
	Handover        string        // HandoverHost or HandoverAuto; default auto with FixedAmount, else host
	Timeouts        Timeouts      //
	DuplicateWindow time.Duration // the same payload read again within it is dropped
	Retention       time.Duration // finished records kept this long in the journal
	Linger          time.Duration // how long a finished sale stays on screen before Idle
	// Receipts: the kassa issues its own fiscal receipts (a provider set),
	// or the host sends fiscal data.
	Receipts Receipts
	// Clock runs the flow's timers (waits, poll schedule, back-off); the
	// real clock when nil. Service calls keep real deadlines.
	Clock clockwork.Clock
}

// withDefaults checks c and fills its zero values.
func (c Config) withDefaults() (Config, error) {
	if c.FixedAmount < 0 {
		return c, fmt.Errorf("payment: fixed amount %d is negative", c.FixedAmount)
	}
	switch c.Handover {
	case "":
		c.Handover = HandoverHost
		if c.FixedAmount > 0 {
			c.Handover = HandoverAuto
		}
	case HandoverHost, HandoverAuto, HandoverVending:
	default:
		return c, fmt.Errorf("payment: hand-over mode %q: want %q, %q or %q", c.Handover, HandoverHost, HandoverAuto, HandoverVending)
	}
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&c.Timeouts.Amount, DefaultAmountTimeout)
	set(&c.Timeouts.Payment, DefaultPaymentTimeout)
	set(&c.Timeouts.Handover, DefaultHandoverTimeout)
	set(&c.Timeouts.Call, DefaultCallTimeout)
	set(&c.DuplicateWindow, DefaultDuplicateWindow)
	set(&c.Retention, DefaultRetention)
	set(&c.Linger, DefaultLinger)
	if c.Clock == nil {
		c.Clock = clockwork.NewRealClock()
	}
	return c, nil
}
