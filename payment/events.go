package payment

import (
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/kioskd/kioskd/display"
)

// EventKind says what an Event reports.
type EventKind int

// Event kinds. Keep in sync with kindNames.
const (
	KindState     EventKind = iota // the sale changed state
	KindBusy                       // a scan was ignored: a payment is in progress
	KindDuplicate                  // the same payload read again within the window: dropped
	KindBadCode                    // the payload is not a payment QR; Message says why
	KindReplaced                   // a different QR replaces the unreleased sale
	KindAmount                     // the host set (or cleared) the amount for the next scan
	KindRefund                     // a refund changed state; Refund has it
	KindFiscal                     // a fiscal record was delivered (or refused for good)
	KindFault                      // the agent cannot work (journal failure)
	KindReceipt                    // the kassa issued a fiscal receipt; Receipt has it
)

var kindNames = [...]string{"state", "busy", "duplicate", "bad_code", "replaced", "amount",
	"refund", "fiscal", "fault", "receipt"}

// String is the kind's name, also the SSE event name.
func (k EventKind) String() string { return nameOf(kindNames[:], k) }

// MarshalText makes kinds readable in JSON.
func (k EventKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText parses a kind name, for Go hosts reading the event stream.
func (k *EventKind) UnmarshalText(b []byte) error { return parseName(kindNames[:], b, "event kind", k) }

// Event is one thing that happened, for displays, the host (SSE) and
// metrics. Time is when the flow produced it, so consumers can measure
// their own latency.
type Event struct {
	Seq        uint64       `json:"seq"`
	Time       time.Time    `json:"time"`
	Kind       EventKind    `json:"kind"`
	State      State        `json:"state"`
	SaleID     string       `json:"sale_id,omitempty"` // kassa_purchase_id
	PurchaseID string       `json:"purchase_id,omitempty"`
	Amount     int64        `json:"amount,omitempty"`
	Code       int          `json:"code,omitempty"` // the service's code
	Message    string       `json:"message,omitempty"`
	Source     string       `json:"source,omitempty"` // the scanner, for scan events
	Refund     *RefundInfo  `json:"refund,omitempty"`
	Receipt    *ReceiptInfo `json:"receipt,omitempty"`
}

// Screen is what the customer display should show for e; ok is false for
// events that do not change the screen (a duplicate read leaves the screen
// of the sale it duplicates).
func (e Event) Screen() (s display.Screen, ok bool) {
	switch e.Kind {
	case KindState:
		return display.Screen{State: e.State.Display(), Amount: e.Amount, Message: e.Message}, true
	case KindBusy:
		return display.Screen{State: display.Busy}, true
	case KindBadCode:
		return display.Screen{State: display.BadCode, Message: e.Message}, true
	case KindRefund:
		if e.Refund == nil {
			return display.Screen{}, false
		}
		st := display.RefundProgress
		if e.Refund.Done {
			st = display.RefundDone
		}
		return display.Screen{State: st, Amount: e.Refund.Amount, Message: e.Refund.Message}, true
	case KindFault:
		return display.Screen{State: display.DeviceFault, Message: e.Message}, true
	case KindReceipt:
		if e.Receipt == nil {
			return display.Screen{}, false
		}
		r := e.Receipt
		return display.Screen{State: display.Receipt, Amount: r.Total, Receipt: display.FiscalReceipt{
			QR: r.QR, FDNumber: r.FDNumber, FiscalSign: r.FiscalSign, Return: r.Return}}, true
	}
	return display.Screen{}, false
}

// subBuffer is how many events a slow subscriber may lag behind before it
// loses events (counted in Dropped).
const subBuffer = 256

// Hub hands every event to every subscriber, in order, without ever
// blocking the publisher: a subscriber that does not keep up loses events.
// It runs no goroutine; publishers call it under its own lock.
type Hub struct {
	clock clockwork.Clock

	mu      sync.Mutex
	seq     uint64
	subs    map[int]chan Event
	nextSub int
	dropped uint64
}

func newHub(clock clockwork.Clock) *Hub {
	return &Hub{clock: clock, subs: map[int]chan Event{}}
}

// Subscribe returns a channel of every event from now on and a function
// that ends the subscription (and closes the channel).
func (h *Hub) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, subBuffer)
	h.mu.Lock()
	id := h.nextSub
	h.nextSub++
	h.subs[id] = ch
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[id]; ok {
			delete(h.subs, id)
			close(ch)
		}
	}
}

// Dropped is how many events were lost by subscribers that lagged.
func (h *Hub) Dropped() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dropped
}

// Publish stamps e with the next sequence number and the time and hands
// it to every subscriber. Callers that must order an event with their own
// state change publish while holding their own lock (the hub's lock is
// always taken last).
func (h *Hub) Publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	e.Seq, e.Time = h.seq, h.clock.Now()
	for _, ch := range h.subs {
		select {
		case ch <- e:
		default:
			h.dropped++
		}
	}
}
