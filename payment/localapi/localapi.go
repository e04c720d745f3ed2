package localapi

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment"
)

// Config configures the API.
type Config struct {
	Socket    string // unix socket path; created with mode 0660 (a stale socket is replaced)
	TCPAddr   string // optional loopback address, e.g. 127.0.0.1:8787
	TokenFile string // bearer token for TCPAddr (required with it); trimmed
	// Health reports readiness for /healthz; nil means always ready.
	Health func() (ready bool, reasons []string)
	// Extra handlers mounted as is (e.g. "/metrics"); same access rules.
	Extra map[string]http.Handler
	// MaxBody bounds request bodies; 64 KiB when 0.
	MaxBody int64
	// KeepAlive is the SSE comment interval that keeps idle streams open; 15s when 0.
	KeepAlive time.Duration
}

// Server serves the API.
type Server struct {
	cfg   Config
	flow  payment.Host
	log   *zap.Logger
	token []byte
	mux   *http.ServeMux
	lns   []listener // opened by Listen, served by Serve
}

// listener is an open listener and the handler it serves.
type listener struct {
	ln net.Listener
	h  http.Handler
}

// New checks cfg (the TCP address must be loopback, the token file
// readable and non-empty) and builds the handlers. It opens no socket.
func New(cfg Config, flow payment.Host, log *zap.Logger) (*Server, error) {
	if cfg.Socket == "" && cfg.TCPAddr == "" {
		return nil, errors.New("localapi: neither a socket nor a TCP address configured")
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 64 << 10
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 15 * time.Second
	}
	s := &Server{cfg: cfg, flow: flow, log: log.Named("localapi")}
	if cfg.TCPAddr != "" {
		host, _, err := net.SplitHostPort(cfg.TCPAddr)
		if err != nil {
			return nil, fmt.Errorf("localapi: tcp address %q: %w", cfg.TCPAddr, err)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("localapi: tcp address %q is not loopback; the API must not be reachable from the network", cfg.TCPAddr)
		}
		if cfg.TokenFile == "" {
			return nil, errors.New("localapi: a tcp address needs a token file")
		}
		b, err := os.ReadFile(cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("localapi: token: %w", err)
		}
		s.token = bytes.TrimSpace(b)
		if len(s.token) < 16 {
			return nil, fmt.Errorf("localapi: token in %s is shorter than 16 characters", cfg.TokenFile)
		}
	}
	s.mux = http.NewServeMux()
	s.routes()
	return s, nil
}

// Handler is the API without authentication, as served on the unix socket
// (whose file mode is the access control).
func (s *Server) Handler() http.Handler { return s.mux }

// TokenHandler is the API behind the bearer token, as served on TCP.
func (s *Server) TokenHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), s.token) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="kioskd"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		s.mux.ServeHTTP(w, r)
	})
}

// Listen opens the configured socket (and TCP address) at once, so that a
// host can connect, and the socket file exists, before the rest of the
// agent starts; connections wait in the backlog until Serve. Serve calls it
// when it has not been called.
func (s *Server) Listen() error {
	if s.lns != nil {
		return errors.New("localapi: already listening")
	}
	var ls []listener
	if s.cfg.Socket != "" {
		ln, err := listenUnix(s.cfg.Socket)
		if err != nil {
			return err
		}
		ls = append(ls, listener{ln, s.Handler()})
	}
	if s.cfg.TCPAddr != "" {
		ln, err := net.Listen("tcp", s.cfg.TCPAddr)
		if err != nil {
			for _, l := range ls {
				l.ln.Close()
			}
			return fmt.Errorf("localapi: %w", err)
		}
		ls = append(ls, listener{ln, s.TokenHandler()})
	}
	s.lns = ls
	return nil
}

// Serve serves the listeners Listen opened (opening them first if needed)
// until ctx ends; then it closes them, ends event streams and returns nil.
// Listening errors are returned at once.
func (s *Server) Serve(ctx context.Context) error {
	if s.lns == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	ls := s.lns
	base, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, len(ls))
	var srvs []*http.Server
	for _, l := range ls {
		srv := &http.Server{
			Handler:           l.h,
			ReadHeaderTimeout: 5 * time.Second,
			BaseContext:       func(net.Listener) context.Context { return base },
			ErrorLog:          zap.NewStdLog(s.log),
		}
		srvs = append(srvs, srv)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
		s.log.Info("local API listening", zap.String("addr", l.ln.Addr().String()))
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("localapi: %w", err)
	}
	cancel() // ends event streams
	for _, srv := range srvs {
		sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
		if serr := srv.Shutdown(sctx); serr != nil {
			srv.Close()
		}
		c()
	}
	wg.Wait()
	if s.cfg.Socket != "" {
		os.Remove(s.cfg.Socket)
	}
	return err
}

// listenUnix listens on path with mode 0660, replacing a stale socket (but
// never another kind of file or a live one). The socket is made under a
// temporary name and renamed into place, so it never appears with a wider
// mode or before it accepts connections.
func listenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("localapi: %s exists and is not a socket", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("localapi: %s is in use by another process", path)
		}
	}
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	os.Remove(tmp)
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, fmt.Errorf("localapi: %w", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o660); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("localapi: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("localapi: %w", err)
	}
	return ln, nil
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /healthz", s.healthz)
	m.HandleFunc("GET /v1/state", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.flow.Snapshot())
	})
	m.HandleFunc("POST /v1/sale", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Amount *int64 `json:"amount"`
			Item   string `json:"item"` // named on the kassa's own receipt; optional
		}
		if !s.decode(w, r, &in) {
			return
		}
		if in.Amount == nil {
			writeError(w, http.StatusBadRequest, "amount is required")
			return
		}
		s.reply(w, s.flow.SetAmount(r.Context(), *in.Amount, in.Item))
	})
	m.HandleFunc("POST /v1/sale/cancel", func(w http.ResponseWriter, r *http.Request) {
		if !s.decodeEmpty(w, r) {
			return
		}
		s.reply(w, s.flow.Cancel(r.Context()))
	})
	m.HandleFunc("POST /v1/sale/handover", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			OK *bool `json:"ok"`
		}
		if !s.decode(w, r, &in) {
			return
		}
		if in.OK == nil {
			writeError(w, http.StatusBadRequest, "ok is required")
			return
		}
		s.reply(w, s.flow.Handover(r.Context(), *in.OK))
	})
	m.HandleFunc("POST /v1/sale/paid-elsewhere", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Receipt json.RawMessage `json:"receipt"`
		}
		if !s.decode(w, r, &in) {
			return
		}
		s.reply(w, s.flow.PaidElsewhere(r.Context(), in.Receipt))
	})
	m.HandleFunc("POST /v1/sale/fiscal", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			PurchaseID   string          `json:"purchase_id"`
			KKTRegNumber string          `json:"kkt_reg_number"`
			FiscalSign   string          `json:"fiscal_sign"`
			Receipt      json.RawMessage `json:"receipt"`
		}
		if !s.decode(w, r, &in) {
			return
		}
		s.reply(w, s.flow.Fiscal(r.Context(), payment.FiscalData{PurchaseID: in.PurchaseID, KKTRegNumber: in.KKTRegNumber,
			FiscalSign: in.FiscalSign, Receipt: in.Receipt}))
	})
	m.HandleFunc("POST /v1/refunds", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			PurchaseID string `json:"purchase_id"`
			Amount     int64  `json:"amount"`
			RequestID  string `json:"request_id"` // idempotency key; or the Idempotency-Key header
		}
		if !s.decode(w, r, &in) {
			return
		}
		if h := r.Header.Get("Idempotency-Key"); h != "" {
			if in.RequestID != "" && in.RequestID != h {
				writeError(w, http.StatusBadRequest, "malformed request: request_id and Idempotency-Key differ")
				return
			}
			in.RequestID = h
		}
		info, err := s.flow.Refund(r.Context(), payment.RefundRequest{PurchaseID: in.PurchaseID, Amount: in.Amount, RequestID: in.RequestID})
		if err != nil {
			s.reply(w, err)
			return
		}
		writeJSON(w, http.StatusAccepted, info)
	})
	m.HandleFunc("GET /v1/refunds/{id}", func(w http.ResponseWriter, r *http.Request) {
		info, err := s.flow.RefundInfo(r.Context(), r.PathValue("id"))
		if err != nil {
			s.reply(w, err)
			return
		}
		writeJSON(w, http.StatusOK, info)
	})
	m.HandleFunc("POST /v1/scan", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Data   string `json:"data"`
			Source string `json:"source"`
		}
		if !s.decode(w, r, &in) {
			return
		}
		if in.Data == "" {
			writeError(w, http.StatusBadRequest, "data is required")
			return
		}
		if in.Source == "" {
			in.Source = "api"
		}
		// The outcome (committing, busy, bad code…) arrives as an event.
		s.flow.Scan(r.Context(), []byte(in.Data), in.Source)
		writeJSON(w, http.StatusAccepted, s.flow.Snapshot())
	})
	m.HandleFunc("GET /v1/events", s.events)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})
	for path, h := range s.cfg.Extra {
		m.Handle(path, h)
	}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ready, reasons := true, []string{}
	if s.cfg.Health != nil {
		ready, reasons = s.cfg.Health()
		if reasons == nil {
			reasons = []string{}
		}
	}
	code := http.StatusOK
	if !ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, struct {
		Ready   bool     `json:"ready"`
		Reasons []string `json:"reasons"`
	}{ready, reasons})
}

// events streams every event as SSE ("id: seq", "event: kind", "data:
// JSON"), starting with the current state. It ends when the client goes
// away or the server stops.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming not supported")
		return
	}
	ch, stop := s.flow.Subscribe()
	defer stop()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(kind string, id uint64, v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			return false
		}
		if id > 0 {
			fmt.Fprintf(w, "id: %d\n", id)
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", kind, b); err != nil {
			return false
		}
		fl.Flush()
		return true
	}
	if !send("snapshot", 0, s.flow.Snapshot()) {
		return
	}
	ka := time.NewTicker(s.cfg.KeepAlive)
	defer ka.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-ka.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return
			}
			fl.Flush()
		case e, ok := <-ch:
			if !ok || !send(e.Kind.String(), e.Seq, e) {
				return
			}
		}
	}
}

// body reads the request's body, at most MaxBody bytes; on error it
// answers and returns false.
func (s *Server) body(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", mbe.Limit))
		return nil, false
	case err != nil:
		writeError(w, http.StatusBadRequest, "malformed request: "+err.Error())
		return nil, false
	}
	return b, true
}

// decode reads exactly one JSON object with known fields into v; on error
// it answers and returns false.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	b, ok := s.body(w, r)
	return ok && strictJSON(w, b, v)
}

// decodeEmpty accepts an empty body or an empty JSON object.
func (s *Server) decodeEmpty(w http.ResponseWriter, r *http.Request) bool {
	b, ok := s.body(w, r)
	return ok && (len(bytes.TrimSpace(b)) == 0 || strictJSON(w, b, &struct{}{}))
}

// strictJSON decodes b, exactly one JSON object with known fields, into
// v; on error it answers and returns false.
func strictJSON(w http.ResponseWriter, b []byte, v any) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("empty body")
		}
		writeError(w, http.StatusBadRequest, "malformed request: "+err.Error())
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "malformed request: data after the JSON object")
		return false
	}
	return true
}

// reply answers a host operation: the new state on success, or the error
// with its status.
func (s *Server) reply(w http.ResponseWriter, err error) {
	if err == nil {
		writeJSON(w, http.StatusOK, s.flow.Snapshot())
		return
	}
	var se *payment.ServiceError
	switch {
	case errors.As(err, &se):
		writeJSON(w, http.StatusUnprocessableEntity, struct {
			Error string `json:"error"`
			Code  int    `json:"code"`
		}{se.Message, se.Code})
	case errors.Is(err, payment.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, payment.ErrWrongState):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, payment.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, payment.ErrTimeout):
		writeError(w, http.StatusGatewayTimeout, err.Error())
	case errors.Is(err, payment.ErrNotRunning):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		s.log.Error("request failed", zap.Error(err))
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, struct {
		Error string `json:"error"`
	}{msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"encoding"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
