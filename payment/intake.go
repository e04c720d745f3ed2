package payment

import (
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/smartpay"
)

// intake is where every scan enters the flow, from any scanner or the
// host's POST /v1/scan: the one place that drops duplicate reads, refuses
// what is not a payment QR (with no call to the service) and hands the
// rest to the sale machine. It never blocks.
type intake struct {
	window time.Duration
	log    *zap.Logger
	hub    *Hub
	sales  *sales

	mu     sync.Mutex
	last   string    // the last payload read
	lastAt time.Time // when it was last read
}

// scan takes one decoded payload read at at from source.
func (in *intake) scan(data []byte, source string, at time.Time) {
	payload := string(data)
	in.mu.Lock()
	dup := payload == in.last && at.Sub(in.lastAt) < in.window
	// A duplicate extends the window: a scanner that keeps reading a QR
	// held in front of it produces one sale however long it is held.
	in.last, in.lastAt = payload, at
	in.mu.Unlock()
	if dup {
		in.hub.Publish(Event{Kind: KindDuplicate, Source: source})
		return
	}
	if _, err := smartpay.ParseQR(data); err != nil {
		in.log.Info("not a payment QR", zap.String("source", source), zap.Error(err))
		in.hub.Publish(Event{Kind: KindBadCode, Source: source, Message: err.Error()})
		return
	}
	in.sales.offer([]byte(payload), source)
}
