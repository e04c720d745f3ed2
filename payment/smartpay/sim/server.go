package sim

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/smartpay"
)

// Config configures a simulator. Zero values get the defaults in brackets.
type Config struct {
	Dir          string        // key material; created on first start (required)
	Kassas       int           // client certificates to create: kassa, kassa2… [1]
	SuccessDelay time.Duration // release → success, refund → success [2s]
	SessionTTL   time.Duration // session cookie lifetime [30m]
	StaleWindow  time.Duration // accepted QR timestamp skew [5m]
	CommitTTL    time.Duration // committed but not released → expired [15m]
	MaxAmount    int64         // largest release, in kopecks [100 000 000]
	IdleTimeout  time.Duration // server closes idle connections after [2m]
	// Middleware, when set, wraps the kassa API handler; tests use it to
	// validate the traffic against openapi.yaml.
	Middleware func(http.Handler) http.Handler
}

// Server is the simulated Smart Pay service. Its methods are safe for
// concurrent use.
type Server struct {
	cfg        Config
	log        *zap.Logger
	tlsCfg     *tls.Config
	serviceKey *rsa.PrivateKey
	appPub     *ecdsa.PublicKey
	appKeys    *AppKeys

	mu            sync.Mutex
	sessions      map[string]session
	purchases     map[string]*purchase
	order         []string // purchase ids by creation
	byKassaID     map[kassaKey]string
	byQR          map[string]string // encrypted → purchase id
	usedOTPs      map[string]bool   // user + otp
	refunds       map[string]*refund
	refundOrder   []string
	refundByKassa map[kassaKey]string
	fiscal        []FiscalRecord
	requests      map[string]int
	faults        map[string]*Fault
	faultsFired   map[string]int // "method/kind" → faults that took effect
}

type kassaKey struct{ kassa, id string }

type session struct {
	kassa   string
	expires time.Time
}

type purchase struct {
	Purchase
	encrypted   string
	committedAt time.Time
	releasedAt  time.Time
}

type refund struct {
	Refund
	createdAt time.Time
}

// New loads (or, on first start, creates) the key material in cfg.Dir.
func New(cfg Config, log *zap.Logger) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("sim: Config.Dir is required")
	}
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.Kassas <= 0 {
		cfg.Kassas = 1
	}
	if cfg.SuccessDelay <= 0 {
		cfg.SuccessDelay = 2 * time.Second
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 30 * time.Minute
	}
	if cfg.StaleWindow <= 0 {
		cfg.StaleWindow = 5 * time.Minute
	}
	if cfg.CommitTTL <= 0 {
		cfg.CommitTTL = 15 * time.Minute
	}
	if cfg.MaxAmount <= 0 {
		cfg.MaxAmount = 100_000_000
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 2 * time.Minute
	}
	if err := ensureKeys(cfg.Dir, cfg.Kassas); err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, log: log.Named("smartpay-sim"),
		sessions: map[string]session{}, purchases: map[string]*purchase{},
		byKassaID: map[kassaKey]string{}, byQR: map[string]string{}, usedOTPs: map[string]bool{},
		refunds: map[string]*refund{}, refundByKassa: map[kassaKey]string{},
		requests: map[string]int{}, faults: map[string]*Fault{}, faultsFired: map[string]int{},
	}
	if err := s.loadKeys(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) loadKeys() error {
	dir := s.cfg.Dir
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, ServerCertFile), filepath.Join(dir, serverKeyFile))
	if err != nil {
		return fmt.Errorf("sim: server certificate: %w", err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("sim: %s: no certificate", CAFile)
	}
	s.tlsCfg = &tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"}, // HTTP/1.1 only, so faults can drop a connection (Hijack)
	}
	if s.serviceKey, err = readKey[*rsa.PrivateKey](dir, ServiceKeyFile, x509.ParsePKCS8PrivateKey); err != nil {
		return err
	}
	if s.appPub, err = readKey[*ecdsa.PublicKey](dir, AppPubFile, x509.ParsePKIXPublicKey); err != nil {
		return err
	}
	s.appKeys, err = LoadAppKeys(dir)
	return err
}

// Serve serves the kassa API over mTLS on ln until ctx ends; then it closes
// the listener and every connection and returns nil.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	var h http.Handler = s.Handler()
	if s.cfg.Middleware != nil {
		h = s.cfg.Middleware(h)
	}
	baseCtx, cancelBase := context.WithCancel(ctx)
	defer cancelBase()
	inner := h
	h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), serveCtxKey{}, baseCtx)))
	})
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         s.tlsCfg.Clone(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       s.cfg.IdleTimeout,
		// An empty map switches HTTP/2 off: Hijack (drop faults) needs HTTP/1.1.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		BaseContext:  func(net.Listener) context.Context { return baseCtx },
		ErrorLog:     zap.NewStdLog(s.log.Named("http")),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return fmt.Errorf("sim: serve: %w", err)
	case <-ctx.Done():
	}
	// Handlers sleeping in a delay fault end with baseCtx; Close then drops
	// whatever is left.
	cancelBase()
	_ = srv.Close()
	<-errc
	return nil
}

// serveCtxKey carries Serve's context into handlers: work that must outlive
// the caller's connection (a delayed call still takes effect, as on a real
// service) stops only when the server does.
type serveCtxKey struct{}

func serveContext(r *http.Request) context.Context {
	if ctx, ok := r.Context().Value(serveCtxKey{}).(context.Context); ok {
		return ctx
	}
	return r.Context()
}

// TLSConfig returns the server's TLS configuration (server certificate,
// client certificates required and verified against the simulator's CA).
func (s *Server) TLSConfig() *tls.Config { return s.tlsCfg.Clone() }

// QR returns a fresh QR payload for userID, made with the simulator's keys.
func (s *Server) QR(userID string) (string, error) {
	return s.appKeys.QR(QRParams{UserID: userID})
}

// AppKeys returns the keys the simulated mobile app uses, to make QRs with a
// chosen OTP or time.
func (s *Server) AppKeys() *AppKeys { return s.appKeys }

func newID(prefix string) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return prefix + hex.EncodeToString(b[:])
}

// advanceLocked moves a purchase along its script as time passes.
func (s *Server) advanceLocked(p *purchase, now time.Time) {
	switch p.Status {
	case smartpay.Committed:
		if now.Sub(p.committedAt) > s.cfg.CommitTTL {
			p.Status = smartpay.Expired
			p.Code, p.Message = smartpay.CodeCommitExpired, "Время ожидания оплаты истекло"
		}
	case smartpay.Released, smartpay.Processing:
		p.Status = smartpay.Processing
		switch {
		case p.Amount%100 == 52:
			// Scripted: stays processing until the kassa cancels.
		case now.Sub(p.releasedAt) < s.cfg.SuccessDelay:
		case p.Amount%100 == 51:
			p.Status = smartpay.Failed
			p.Code, p.Message = smartpay.CodePaymentDeclined, messages[smartpay.CodePaymentDeclined]
		default:
			p.Status = smartpay.Success
		}
	}
}

func (s *Server) advanceRefundLocked(r *refund, now time.Time) {
	if r.Status == smartpay.RefundPending && now.Sub(r.createdAt) >= s.cfg.SuccessDelay {
		r.Status = smartpay.RefundSuccess
	}
}

// Purchase is a purchase as the simulator sees it.
type Purchase struct {
	ID                 string                  `json:"id"`
	Kassa              string                  `json:"kassa"`
	KassaPurchaseID    string                  `json:"kassa_purchase_id"`
	IDLoyalty          string                  `json:"id_loyalty"`
	Status             smartpay.PurchaseStatus `json:"status"`
	Amount             int64                   `json:"amount"`
	Code               int                     `json:"code,omitempty"`
	Message            string                  `json:"message,omitempty"`
	KassaConfirmations []smartpay.KassaStatus  `json:"kassa_confirmations"` // every accepted kassa/status, in order
	Confirmed          bool                    `json:"confirmed"`           // kassa said success
	Reversed           bool                    `json:"reversed"`            // cancelled after it had been paid
	Refunded           int64                   `json:"refunded"`            // sum of pending and successful refunds
}

// Refund is a refund as the simulator sees it.
type Refund struct {
	ID                 string                 `json:"id"`
	Kassa              string                 `json:"kassa"`
	KassaRefundID      string                 `json:"kassa_refund_id"`
	PurchaseID         string                 `json:"purchase_id"`
	Amount             int64                  `json:"amount"`
	Status             smartpay.RefundState   `json:"status"`
	KassaConfirmations []smartpay.KassaStatus `json:"kassa_confirmations"`
	Confirmed          bool                   `json:"confirmed"`
}

// FiscalRecord is one delivery of fiscal data; duplicates are kept so tests
// can count them.
type FiscalRecord struct {
	Version      int               `json:"version"` // 1 or 2
	Kassa        string            `json:"kassa"`
	PurchaseID   string            `json:"purchase_id,omitempty"`
	KKTRegNumber string            `json:"kkt_reg_number,omitempty"` // v1
	FiscalSign   string            `json:"fiscal_sign,omitempty"`    // v1
	IDLoyalty    string            `json:"id_loyalty,omitempty"`     // v2
	Receipt      *smartpay.Receipt `json:"receipt,omitempty"`        // v2
	At           time.Time         `json:"at"`
}

// State is everything the simulator knows, for tests and GET /sim/state.
type State struct {
	Purchases []Purchase     `json:"purchases"`
	Refunds   []Refund       `json:"refunds"`
	Fiscal    []FiscalRecord `json:"fiscal"`
	Requests  map[string]int `json:"requests"` // per method name (MethodCommit…), faulted calls included
	// FaultsFired counts the injected faults that took effect, by
	// "method/kind" ("commit/drop"); a fault replaced or cleared before its
	// call came is not counted.
	FaultsFired map[string]int `json:"faults_fired"`
}

// Purchase returns the purchase with the given service id.
func (st State) Purchase(id string) (Purchase, bool) {
	for _, p := range st.Purchases {
		if p.ID == id {
			return p, true
		}
	}
	return Purchase{}, false
}

// Unsettled returns the purchases not yet at an end the kassa has told
// the service about: committed, released or processing, or successful and
// not confirmed. A purchase the kassa cancelled, or that failed or expired,
// is settled.
func (st State) Unsettled() []Purchase {
	var open []Purchase
	for _, p := range st.Purchases {
		switch p.Status {
		case smartpay.Committed, smartpay.Released, smartpay.Processing:
			open = append(open, p)
		case smartpay.Success:
			if !p.Confirmed {
				open = append(open, p)
			}
		}
	}
	return open
}

// Refund returns the refund with the given service id.
func (st State) Refund(id string) (Refund, bool) {
	for _, r := range st.Refunds {
		if r.ID == id {
			return r, true
		}
	}
	return Refund{}, false
}

// State returns a copy of the simulator's state, statuses advanced to now.
func (s *Server) State() State {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := State{Fiscal: append([]FiscalRecord{}, s.fiscal...), Requests: map[string]int{}, FaultsFired: map[string]int{}}
	st.Purchases = snapshot(s.order, func(id string) Purchase {
		p := s.purchases[id]
		s.advanceLocked(p, now)
		return p.Purchase
	}, func(p *Purchase) *[]smartpay.KassaStatus { return &p.KassaConfirmations })
	st.Refunds = snapshot(s.refundOrder, func(id string) Refund {
		r := s.refunds[id]
		s.advanceRefundLocked(r, now)
		return r.Refund
	}, func(r *Refund) *[]smartpay.KassaStatus { return &r.KassaConfirmations })
	for k, v := range s.requests {
		st.Requests[k] = v
	}
	for k, v := range s.faultsFired {
		st.FaultsFired[k] = v
	}
	return st
}

// snapshot copies the records named by ids in order, each with its own
// copy of its confirmations.
func snapshot[T any](ids []string, get func(id string) T, confirmations func(*T) *[]smartpay.KassaStatus) []T {
	out := make([]T, 0, len(ids))
	for _, id := range ids {
		c := get(id)
		list := confirmations(&c)
		*list = append([]smartpay.KassaStatus{}, *list...)
		out = append(out, c)
	}
	return out
}
