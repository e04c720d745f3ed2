package fiscalsim

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/fiscal"
	"github.com/kioskd/kioskd/payment/internal/simadmin"
)

// Config configures the virtual ККТ. Zero values get the defaults in
// brackets.
type Config struct {
	Now                func() time.Time // the clock [time.Now]; AdvanceClock adds to it
	Zone               *time.Location   // the ККТ's local time [UTC+3, Moscow]
	RegistrationNumber string           // tag 1037 [0000000001002292]
	FNNumber           string           // tag 1041 [9999078900000961]
	FNSURL             string           // tag 1060 [www.nalog.gov.ru]
	ShiftLimit         time.Duration    // a shift's lifetime [24h]
	// Middleware, when set, wraps the API handler (not the admin API), as
	// sim.Config.Middleware does for Smart Pay: tests use it to watch
	// calls or to stop the caller at one.
	Middleware func(http.Handler) http.Handler
}

func (c *Config) defaults() {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Zone == nil {
		c.Zone = time.FixedZone("MSK", 3*3600)
	}
	if c.RegistrationNumber == "" {
		c.RegistrationNumber = "0000000001002292"
	}
	if c.FNNumber == "" {
		c.FNNumber = "9999078900000961"
	}
	if c.FNSURL == "" {
		c.FNSURL = "www.nalog.gov.ru"
	}
	if c.ShiftLimit <= 0 {
		c.ShiftLimit = 24 * time.Hour
	}
}

// Item is a receipt line as the ККТ registered it. Money in kopecks.
type Item struct {
	Name          string `json:"name"`
	Price         int64  `json:"price"`
	Quantity      string `json:"quantity"`
	Amount        int64  `json:"amount"`
	VAT           string `json:"vat"`
	PaymentObject string `json:"payment_object"`
}

// FiscalParams are a document's fiscal data.
type FiscalParams struct {
	RegistrationNumber string    `json:"registration_number"`
	FNNumber           string    `json:"fn_number"`
	FDNumber           int64     `json:"fd_number"`
	FiscalSign         string    `json:"fiscal_sign"`
	DateTime           time.Time `json:"datetime"`
	ShiftNumber        int       `json:"shift_number"`
	ReceiptNumber      int       `json:"receipt_number"`
	Total              int64     `json:"total"` // kopecks
	FNSURL             string    `json:"fns_url"`
}

// Receipt is a registered sell or sellReturn document.
type Receipt struct {
	ID              string       `json:"id"`                 // the uuid (web server) or external_id (cloud) it was made under
	DocUUID         string       `json:"doc_uuid,omitempty"` // the cloud's uuid of the document
	Type            string       `json:"type"`               // "sell" or "sellReturn"
	Total           int64        `json:"total"`              // kopecks
	Items           []Item       `json:"items"`
	Taxation        string       `json:"taxation"`
	Electronic      bool         `json:"electronic"`
	MachineNumber   string       `json:"machine_number,omitempty"`
	PaymentsPlace   string       `json:"payments_place,omitempty"`
	PaymentsAddress string       `json:"payments_address,omitempty"`
	Fiscal          FiscalParams `json:"fiscal"`
}

// Sign derives the fiscal sign (ФПД, a 32-bit number) from the document's
// content: operation, items, total, the FN and FD numbers and the date.
// The simulator signs every receipt with it, so a test can check that a
// client forwards the sign the ККТ made for exactly this receipt.
func Sign(r Receipt) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s|%d|%s|%d|%s|%d|%d\n", r.Type, r.Total, r.Fiscal.FNNumber, r.Fiscal.FDNumber,
		r.Fiscal.DateTime.UTC().Format(time.RFC3339), r.Fiscal.ShiftNumber, r.Fiscal.ReceiptNumber)
	for _, it := range r.Items {
		fmt.Fprintf(h, "%q|%d|%s|%d|%s|%s\n", it.Name, it.Price, it.Quantity, it.Amount, it.VAT, it.PaymentObject)
	}
	return strconv.FormatUint(uint64(binary.BigEndian.Uint32(h.Sum(nil))), 10)
}

// Task is one submitted id: a web server task (uuid) or a cloud document
// (external_id), refused ones too.
type Task struct {
	ID         string        `json:"id"`
	Type       string        `json:"type"`
	Status     string        `json:"status"`
	Code       int           `json:"code,omitempty"`
	Text       string        `json:"text,omitempty"`
	Posts      int           `json:"posts"` // submissions of this id; more than 1 means a retry
	Polls      int           `json:"polls"` // result queries
	ServerTime time.Duration `json:"server_time_ns"`
}

// Shift is the ККТ's shift.
type Shift struct {
	Number   int       `json:"number"`
	Open     bool      `json:"open"`
	OpenedAt time.Time `json:"opened_at,omitzero"`
	Expired  bool      `json:"expired"`
	Receipts int       `json:"receipts"`
}

// State is everything the simulator knows, for tests and GET /sim/state.
type State struct {
	Now      time.Time      `json:"now"`       // the simulator's clock, in the ККТ's zone
	Shift    Shift          `json:"shift"`     //
	FDNumber int64          `json:"fd_number"` // the last fiscal document's number
	Receipts []Receipt      `json:"receipts"`  // registered sell/sellReturn documents, in order
	Tasks    []Task         `json:"tasks"`     // every submitted id, in order
	Requests map[string]int `json:"requests"`  // per method name, faulted calls included
	Tokens   int            `json:"tokens"`    // cloud: tokens issued
}

// Receipt returns the registered receipt made under id.
func (st State) Receipt(id string) (Receipt, bool) {
	for _, r := range st.Receipts {
		if r.ID == id {
			return r, true
		}
	}
	return Receipt{}, false
}

// Task returns the task submitted under id.
func (st State) Task(id string) (Task, bool) {
	for _, t := range st.Tasks {
		if t.ID == id {
			return t, true
		}
	}
	return Task{}, false
}

// kktError is the ККТ's (or the cloud's) refusal of a task.
type kktError struct {
	Code int
	Text string
}

// ticket is a receipt as a front end parsed it from its wire format.
type ticket struct {
	id, typ                 string
	total                   int64
	items                   []Item
	taxation                string
	electronic              bool
	machine, place, address string
}

// kkt is the virtual ККТ and the state both front ends share. Every field
// is guarded by mu, front-end maps included.
type kkt struct {
	cfg Config
	log *zap.Logger

	mu       sync.Mutex
	offset   time.Duration
	fd       int64
	shift    Shift
	receipts []Receipt
	tasks    []*Task
	byID     map[string]*Task
	faults   []*Fault
	requests map[string]int
	tokens   int
}

func newKKT(cfg Config, log *zap.Logger) *kkt {
	cfg.defaults()
	if log == nil {
		log = zap.NewNop()
	}
	return &kkt{cfg: cfg, log: log, byID: map[string]*Task{}, requests: map[string]int{}}
}

// nowLocked is the simulator's clock in the ККТ's zone, to the second.
func (k *kkt) nowLocked() time.Time {
	return k.cfg.Now().Add(k.offset).In(k.cfg.Zone).Truncate(time.Second)
}

// AdvanceClock moves the simulator's clock forward by d (to age a shift).
func (k *kkt) AdvanceClock(d time.Duration) {
	k.mu.Lock()
	k.offset += d
	k.mu.Unlock()
}

func (k *kkt) expiredLocked(now time.Time) bool {
	return k.shift.Open && now.Sub(k.shift.OpenedAt) >= k.cfg.ShiftLimit
}

func (k *kkt) expiresLocked() time.Time { return k.shift.OpenedAt.Add(k.cfg.ShiftLimit) }

func (k *kkt) paramsLocked(now time.Time) FiscalParams {
	return FiscalParams{RegistrationNumber: k.cfg.RegistrationNumber, FNNumber: k.cfg.FNNumber, FDNumber: k.fd,
		DateTime: now.Truncate(time.Minute), ShiftNumber: k.shift.Number, FNSURL: k.cfg.FNSURL}
}

// openShiftLocked opens a shift (a fiscal document).
func (k *kkt) openShiftLocked(now time.Time) (FiscalParams, *kktError) {
	if k.shift.Open {
		if k.expiredLocked(now) {
			return FiscalParams{}, &kktError{68, "Смена превысила 24 часа"}
		}
		return FiscalParams{}, &kktError{83, "Смена открыта, операция невозможна"}
	}
	k.fd++
	k.shift = Shift{Number: k.shift.Number + 1, Open: true, OpenedAt: now}
	k.log.Info("shift opened", zap.Int("shift", k.shift.Number), zap.Int64("fd", k.fd))
	return k.paramsLocked(now), nil
}

// closeShiftLocked closes the shift (Z report, a fiscal document); an
// expired shift can be closed.
func (k *kkt) closeShiftLocked(now time.Time) (FiscalParams, *kktError) {
	if !k.shift.Open {
		return FiscalParams{}, &kktError{73, "Смена закрыта - операция невозможна"}
	}
	k.fd++
	p := k.paramsLocked(now)
	p.ReceiptNumber = k.shift.Receipts
	k.shift.Open, k.shift.Receipts, k.shift.OpenedAt = false, 0, time.Time{}
	k.log.Info("shift closed", zap.Int("shift", k.shift.Number), zap.Int64("fd", k.fd))
	return p, nil
}

// registerLocked makes the receipt's fiscal document. A closed shift is
// opened first (the driver does it for a receipt [V: shiftAutoOpened in
// the driver's scripts]); an expired one refuses with code 68 unless
// rotate (the cloud renews its shifts itself [I]).
func (k *kkt) registerLocked(t ticket, rotate bool, kerr *kktError) (Receipt, *kktError) {
	now := k.nowLocked()
	if k.expiredLocked(now) {
		if !rotate {
			return Receipt{}, &kktError{68, "Смена превысила 24 часа"}
		}
		k.closeShiftLocked(now)
	}
	if !k.shift.Open {
		k.openShiftLocked(now)
	}
	if kerr != nil {
		return Receipt{}, kerr
	}
	k.fd++
	k.shift.Receipts++
	rc := Receipt{ID: t.id, Type: t.typ, Total: t.total, Items: t.items, Taxation: t.taxation, Electronic: t.electronic,
		MachineNumber: t.machine, PaymentsPlace: t.place, PaymentsAddress: t.address, Fiscal: k.paramsLocked(now)}
	rc.Fiscal.ReceiptNumber = k.shift.Receipts
	rc.Fiscal.Total = t.total
	rc.Fiscal.FiscalSign = Sign(rc)
	k.receipts = append(k.receipts, rc)
	k.log.Info("receipt registered", zap.String("type", t.typ), zap.String("id", t.id), zap.Int64("fd", k.fd))
	return rc, nil
}

// taskLocked returns the task submitted under id, creating it (new=true)
// on the first submission.
func (k *kkt) taskLocked(id, typ string) (t *Task, isNew bool) {
	if t = k.byID[id]; t != nil {
		t.Posts++
		return t, false
	}
	t = &Task{ID: id, Type: typ, Posts: 1}
	k.byID[id] = t
	k.tasks = append(k.tasks, t)
	return t, true
}

// charge adds handler time to the task submitted under id.
func (k *kkt) charge(id string, d time.Duration) {
	k.mu.Lock()
	if t := k.byID[id]; t != nil {
		t.ServerTime += d
	}
	k.mu.Unlock()
}

// State returns a copy of the simulator's state.
func (k *kkt) State() State {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.nowLocked()
	st := State{Now: now, Shift: k.shift, FDNumber: k.fd, Receipts: append([]Receipt{}, k.receipts...),
		Tasks: []Task{}, Requests: map[string]int{}, Tokens: k.tokens}
	st.Shift.Expired = k.expiredLocked(now)
	for _, t := range k.tasks {
		st.Tasks = append(st.Tasks, *t)
	}
	for m, n := range k.requests {
		st.Requests[m] = n
	}
	return st
}

// route is one API endpoint of a front end. The handler returns the id it
// worked on, so its time is charged to that task.
type route struct {
	pattern string // for http.ServeMux, with the method
	method  string // the name faults and counters use
	handle  func(w http.ResponseWriter, r *http.Request) (id string)
}

// serve builds the API handler: count the call, apply a transport fault,
// run the route and charge its time.
func (k *kkt) serve(routes []route) http.Handler {
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) {
			k.mu.Lock()
			k.requests[rt.method]++
			f := k.takeFaultLocked(rt.method, FaultKind.transport)
			k.mu.Unlock()
			if f != nil && !k.applyFault(w, r, f) {
				return
			}
			start := time.Now()
			if f != nil && f.Kind == FaultLoseAnswer {
				id := rt.handle(discard{h: http.Header{}}, r)
				k.charge(id, time.Since(start))
				hangUp(w)
				return
			}
			id := rt.handle(w, r)
			k.charge(id, time.Since(start))
		})
	}
	if k.cfg.Middleware != nil {
		return k.cfg.Middleware(mux)
	}
	return mux
}

// serveWithAdmin serves api, and admin under /sim/, on ln until ctx ends;
// calls still running then get two seconds to finish.
func serveWithAdmin(ctx context.Context, ln net.Listener, api, admin http.Handler) error {
	mux := http.NewServeMux()
	mux.Handle("/sim/", admin)
	mux.Handle("/", api)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("fiscalsim: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if srv.Shutdown(sctx) != nil {
		_ = srv.Close()
	}
	<-errc // http.ErrServerClosed
	return nil
}

// discard is a ResponseWriter for a call whose answer is lost.
type discard struct{ h http.Header }

func (d discard) Header() http.Header       { return d.h }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// admin serves the admin API shared by both front ends:
//
//	GET    /sim/state    State as JSON
//	POST   /sim/faults   a Fault: {"method":"post","kind":"kkt_error","code":118,"text":"…","count":1,
//	                     "polls":3,"status":503,"delay":"2s"}
//	DELETE /sim/faults   drop every pending fault
//	POST   /sim/clock    {"advance":"25h"}: move the clock forward (age the shift)
func (k *kkt) admin(methods map[string]bool, state func() State) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sim/state", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, state())
	})
	mux.HandleFunc("POST /sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Fault
			Delay string `json:"delay"`
		}
		if !simadmin.Decode(w, r, &in) {
			return
		}
		f := in.Fault
		if !simadmin.Delay(w, in.Delay, &f.Delay) {
			return
		}
		if err := k.injectFault(f, methods); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, http.StatusOK, struct{}{})
	})
	mux.HandleFunc("DELETE /sim/faults", func(w http.ResponseWriter, r *http.Request) {
		k.mu.Lock()
		k.faults = nil
		k.mu.Unlock()
		writeJSON(w, http.StatusOK, struct{}{})
	})
	mux.HandleFunc("POST /sim/clock", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Advance string `json:"advance"`
		}
		if !simadmin.Decode(w, r, &in) {
			return
		}
		d, err := time.ParseDuration(in.Advance)
		if err != nil || d < 0 {
			http.Error(w, fmt.Sprintf("bad advance %q: want a positive duration such as 25h", in.Advance), http.StatusBadRequest)
			return
		}
		k.AdvanceClock(d)
		writeJSON(w, http.StatusOK, struct{}{})
	})
	return mux
}

func methodSet(routes []route) map[string]bool {
	m := map[string]bool{}
	for _, r := range routes {
		m[r.method] = true
	}
	return m
}

// kopecks parses a wire amount; ok=false when it is not money.
func kopecks(n json.Number) (int64, bool) {
	v, err := fiscal.ParseRubles(string(n))
	return v, err == nil
}
