package kiosktest

import (
	"sort"
	"sync"
	"time"
)

// Sale is one sale as the host application saw it. User is the QR's
// id_loyalty, unique per QR the host makes, so the simulator's purchase is
// found by it whether or not the host learnt the sale's ids.
type Sale struct {
	User       string
	Script     string // what the host set out to do (Script* names)
	Amount     int64
	SaleID     string // kassa_purchase_id, once the state showed it
	PurchaseID string // the service's id, once the state showed it

	Scanned       bool      // the scan was sent
	HandedOver    bool      // the goods were given and hand-over ok sent (or the kiosk confirms on its own)
	HandoverAcked bool      // ...and the API answered 200
	Cancelled     bool      // the host cancelled (or refused the hand-over, or reported paid elsewhere), answered 200
	PaidElsewhere bool      // ...reported paid elsewhere with a receipt, answered 200
	SawCompleted  bool      // the state showed this sale completed
	SawDeclined   bool      // ...declined
	SawCancelled  bool      // ...cancelled
	FiscalAcked   bool      // its fiscal record was accepted by the API
	FiscalVersion int       // ...as v1 or v2 (a receipt); 0: either
	Last          string    // the last state the host saw this sale in
	LastAt        time.Time // when it first saw it there
	Code          int       // the service's code the state showed (a refusal, a decline)
	Done          bool      // the script ran to its end
	Stopped       string    // why the script stopped early (the agent went away), if it did
}

// Refund is one refund request of the host, by its idempotency key.
type Refund struct {
	RequestID  string
	PurchaseID string
	Amount     int64
	IDs        []string // kassa_refund_id of every answer: one, however often the request was sent
	Done       bool     // the API reported the refund finished
	Outcome    string
}

// Ledger is what the host did and was told. It is safe for concurrent use;
// its records are pointers the writer fills in under Update.
type Ledger struct {
	mu      sync.Mutex
	sales   []*Sale
	byUser  map[string]*Sale
	refunds map[string]*Refund
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{byUser: map[string]*Sale{}, refunds: map[string]*Refund{}}
}

// AddSale records a sale the host is about to make.
func (l *Ledger) AddSale(s *Sale) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sales = append(l.sales, s)
	l.byUser[s.User] = s
}

// Update runs fn with the ledger locked, so a reader never sees a record
// half written.
func (l *Ledger) Update(fn func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fn()
}

// Sales returns copies of the sales in the order they were added.
func (l *Ledger) Sales() []Sale {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Sale, len(l.sales))
	for i, s := range l.sales {
		out[i] = *s
	}
	return out
}

// Sale returns a copy of the sale with QR user u.
func (l *Ledger) Sale(u string) (Sale, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.byUser[u]
	if !ok {
		return Sale{}, false
	}
	return *s, true
}

// RefundRequest returns the refund record for requestID, adding it when
// new.
func (l *Ledger) RefundRequest(requestID, purchaseID string, amount int64) *Refund {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.refunds[requestID]
	if !ok {
		r = &Refund{RequestID: requestID, PurchaseID: purchaseID, Amount: amount}
		l.refunds[requestID] = r
	}
	return r
}

// Refunds returns copies of the refund requests, by request id.
func (l *Ledger) Refunds() []Refund {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Refund, 0, len(l.refunds))
	for _, r := range l.refunds {
		c := *r
		c.IDs = append([]string(nil), r.IDs...)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].RequestID < out[j].RequestID })
	return out
}

// Len is the number of sales recorded.
func (l *Ledger) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sales)
}
