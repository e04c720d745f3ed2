package smartpay

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Config configures a Client.
type Config struct {
	URL         string        // https://host:port
	CAFile      string        // PEM of the CA that signed the service's certificate
	CertFile    string        // PEM of the kassa's client certificate
	KeyFile     string        // PEM of its key; refused when group/others may read it
	CallTimeout time.Duration // deadline of each attempt (default 5s)
	// IdleKeepAlive is how often an idle connection is used (ping) so that it
	// stays open; keep it below the service's idle timeout (the simulator's
	// is 2 minutes). Default 30s.
	IdleKeepAlive time.Duration
	// Retries is how many times a retry-safe call is repeated after an unknown
	// outcome or an unreachable service (default 2; negative: none).
	Retries int
	// RetryBackoff is the first pause between retries, doubled each time
	// (default 100ms).
	RetryBackoff time.Duration
}

// Client calls the Smart Pay kassa API. It is safe for concurrent use.
type Client struct {
	cfg  Config
	log  *zap.Logger
	base string
	tr   *http.Transport
	hc   *http.Client

	authMu sync.Mutex // serialises logins; held across the auth round trip

	mu         sync.Mutex // guards the fields below
	cookie     *http.Cookie
	sessionGen uint64    // bumped at every login, so a 401 re-auths only once for concurrent callers
	expires    time.Time // session expiry announced by the cookie; zero if unknown
	lastRT     time.Time // last completed round trip, to judge whether the connection is warm
	answers    []ErrorAnswer
	cancel     context.CancelFunc
	done       chan struct{}
}

// NewClient checks the configuration and loads the certificates. It makes no
// call; Start does.
func NewClient(cfg Config, log *zap.Logger) (*Client, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 5 * time.Second
	}
	if cfg.IdleKeepAlive <= 0 {
		cfg.IdleKeepAlive = 30 * time.Second
	}
	if cfg.Retries == 0 {
		cfg.Retries = 2
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = 100 * time.Millisecond
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("smartpay: URL %q: want https://host:port", cfg.URL)
	}
	tlsCfg, err := clientTLS(cfg)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:           nil, // a kiosk talks to the service directly; no env proxy surprises
		DialContext:     (&net.Dialer{Timeout: cfg.CallTimeout, KeepAlive: 15 * time.Second}).DialContext,
		TLSClientConfig: tlsCfg,
		// One connection carries the traffic; a second one covers a status poll
		// that overlaps a commit. Keep them long: the keep-warm loop, not the
		// pool, decides when the connection is used.
		MaxIdleConns:           4,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        30 * time.Minute,
		TLSHandshakeTimeout:    cfg.CallTimeout,
		ResponseHeaderTimeout:  0, // the per-call context is the deadline
		MaxResponseHeaderBytes: 64 << 10,
	}
	c := &Client{
		cfg:  cfg,
		log:  log.Named("smartpay"),
		base: strings.TrimRight(u.String(), "/"),
		tr:   tr,
		hc:   &http.Client{Transport: tr, CheckRedirect: noRedirect},
	}
	return c, nil
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// clientTLS builds the mTLS configuration: our certificate, the service's CA
// only (not the system roots), TLS 1.2 or newer.
func clientTLS(cfg Config) (*tls.Config, error) {
	if cfg.CAFile == "" || cfg.CertFile == "" || cfg.KeyFile == "" {
		return nil, errors.New("smartpay: CAFile, CertFile and KeyFile are required")
	}
	fi, err := os.Stat(cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("smartpay: key file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("smartpay: key file %s has mode %04o: group/others may read it; run chmod 600 %s",
			cfg.KeyFile, fi.Mode().Perm(), cfg.KeyFile)
	}
	cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("smartpay: client certificate: %w", err)
	}
	caPEM, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("smartpay: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("smartpay: CA file %s: no PEM certificate in it", cfg.CAFile)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// Start logs in, fetches and caches the error answers and starts the keep-warm
// goroutine, which ends with ctx or Close. When it fails (service unreachable
// at boot) nothing was started and it may be called again.
func (c *Client) Start(ctx context.Context) error {
	c.mu.Lock()
	if c.done != nil {
		c.mu.Unlock()
		return errors.New("smartpay: client already started")
	}
	c.mu.Unlock()
	if err := c.auth(ctx, 0); err != nil {
		return err
	}
	if _, err := c.fetchErrorAnswers(ctx); err != nil {
		return err
	}
	kctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	c.mu.Lock()
	c.cancel, c.done = cancel, done
	c.mu.Unlock()
	go func() {
		defer close(done)
		c.keepWarm(kctx)
	}()
	return nil
}

// Close stops the keep-warm goroutine, waits for it and closes idle
// connections. Calls in flight are not interrupted.
func (c *Client) Close() error {
	c.mu.Lock()
	cancel, done := c.cancel, c.done
	c.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	c.tr.CloseIdleConnections()
	return nil
}

// keepWarm pings when the connection has been idle for IdleKeepAlive, so the
// server never closes it for idleness, and logs in again before the session
// expires, so a commit never waits for a login.
func (c *Client) keepWarm(ctx context.Context) {
	t := time.NewTicker(c.cfg.IdleKeepAlive / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := c.Warm(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("keep-warm failed", zap.Error(err))
		}
	}
}

// Warm makes sure the session is valid and a connection is open. It is cheap
// (no I/O) when a call completed within the last IdleKeepAlive and the session
// is not about to expire; otherwise it costs a round trip (or a login), so call
// it from a goroutine, not from the scanner's reading goroutine.
func (c *Client) Warm(ctx context.Context) error {
	now := time.Now()
	c.mu.Lock()
	haveSession := c.cookie != nil
	renew := !haveSession || (!c.expires.IsZero() && c.expires.Sub(now) < c.renewMargin())
	gen := c.sessionGen
	idle := now.Sub(c.lastRT)
	c.mu.Unlock()
	if renew {
		return c.auth(ctx, gen)
	}
	if idle < c.cfg.IdleKeepAlive {
		return nil
	}
	return c.Ping(ctx)
}

// renewMargin is how long before expiry the session is renewed: two keep-warm
// periods plus a call, so one missed tick still leaves a valid session.
func (c *Client) renewMargin() time.Duration {
	return c.cfg.IdleKeepAlive + c.cfg.CallTimeout
}

// auth logs in unless someone else did since generation gen was observed.
func (c *Client) auth(ctx context.Context, gen uint64) error {
	c.authMu.Lock()
	defer c.authMu.Unlock()
	c.mu.Lock()
	if c.sessionGen != gen && c.cookie != nil {
		c.mu.Unlock()
		return nil // a concurrent caller already logged in
	}
	c.mu.Unlock()
	resp, err := c.roundTrip(ctx, http.MethodPost, PathAuth, struct{}{}, false)
	if err != nil {
		return fmt.Errorf("smartpay: login: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return c.apiError(PathAuth, resp)
	}
	var sess *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Value != "" {
			sess = ck
			break
		}
	}
	if sess == nil {
		return &APIError{Method: PathAuth, HTTPStatus: resp.StatusCode, Code: CodeSessionExpired, Message: "login answer has no session cookie"}
	}
	var exp time.Time
	switch {
	case sess.MaxAge > 0:
		exp = time.Now().Add(time.Duration(sess.MaxAge) * time.Second)
	case !sess.Expires.IsZero():
		exp = sess.Expires
	}
	c.mu.Lock()
	c.cookie = &http.Cookie{Name: sess.Name, Value: sess.Value}
	c.expires = exp
	c.sessionGen++
	c.mu.Unlock()
	c.log.Debug("logged in", zap.Time("session_expires", exp))
	return nil
}

// Commit fixes a scanned QR with the service. Retried on an unknown outcome:
// the kassa_purchase_id makes a repeat return the same purchase.
func (c *Client) Commit(ctx context.Context, r CommitRequest) (CommitResponse, error) {
	var out CommitResponse
	body := CommitBody{KassaPurchaseID: r.KassaPurchaseID, IDLoyalty: r.QR.IDLoyalty, Encrypted: r.QR.Encrypted, Sign: r.QR.Sign}
	err := c.call(ctx, http.MethodPost, PathCommit, body, &out, true)
	if err == nil && out.PurchaseID == "" {
		err = fmt.Errorf("smartpay: commit answer without purchase_id: %w", ErrOutcomeUnknown)
	}
	return out, err
}

// Release starts the payment of amount kopecks. Not retried: on an unknown
// outcome the caller polls Status.
func (c *Client) Release(ctx context.Context, purchaseID string, amount int64) (ReleaseResponse, error) {
	var out ReleaseResponse
	err := c.call(ctx, http.MethodPost, PathRelease, ReleaseBody{PurchaseID: purchaseID, Amount: amount}, &out, false)
	return out, err
}

// Status returns the purchase's state.
func (c *Client) Status(ctx context.Context, purchaseID string) (StatusResponse, error) {
	var out StatusResponse
	err := c.call(ctx, http.MethodPost, PathStatus, PurchaseIDBody{PurchaseID: purchaseID}, &out, true)
	if err == nil && !out.Status.Valid() {
		err = fmt.Errorf("smartpay: status: unknown purchase status %q", out.Status)
	}
	return out, err
}

// KassaStatus confirms (KassaSuccess) or abandons (KassaCancel) a purchase.
func (c *Client) KassaStatus(ctx context.Context, purchaseID string, s KassaStatus) error {
	return c.call(ctx, http.MethodPost, PathKassaStatus, KassaStatusBody{PurchaseID: purchaseID, Status: s}, nil, false)
}

// FiscalV1 stores the short fiscal data of a purchase.
func (c *Client) FiscalV1(ctx context.Context, r FiscalV1Request) error {
	return c.call(ctx, http.MethodPost, PathFiscalV1, r, nil, false)
}

// FiscalV2 stores a full receipt.
func (c *Client) FiscalV2(ctx context.Context, r FiscalV2Request) error {
	return c.call(ctx, http.MethodPost, PathFiscalV2, r, nil, false)
}

// Refund asks for a refund. Retried on an unknown outcome: the
// kassa_refund_id makes a repeat return the same refund.
func (c *Client) Refund(ctx context.Context, r RefundRequest) (RefundResponse, error) {
	var out RefundResponse
	err := c.call(ctx, http.MethodPost, PathRefund, r, &out, true)
	if err == nil && out.RefundID == "" {
		err = fmt.Errorf("smartpay: refund answer without refund_id: %w", ErrOutcomeUnknown)
	}
	return out, err
}

// RefundStatus returns a refund's state.
func (c *Client) RefundStatus(ctx context.Context, refundID string) (RefundStatusResponse, error) {
	var out RefundStatusResponse
	err := c.call(ctx, http.MethodPost, PathRefundStatus, RefundIDBody{RefundID: refundID}, &out, true)
	if err == nil && !out.Status.Valid() {
		err = fmt.Errorf("smartpay: refund status: unknown refund status %q", out.Status)
	}
	return out, err
}

// RefundKassaStatus confirms (KassaSuccess) or abandons (KassaCancel) a refund.
func (c *Client) RefundKassaStatus(ctx context.Context, refundID string, s KassaStatus) error {
	return c.call(ctx, http.MethodPost, PathRefundKassaStatus, RefundKassaStatusBody{RefundID: refundID, Status: s}, nil, false)
}

// Ping checks that the service answers.
func (c *Client) Ping(ctx context.Context) error {
	var out PingResponse
	if err := c.call(ctx, http.MethodGet, PathPing, nil, &out, true); err != nil {
		return err
	}
	if out.Status != "ok" {
		return fmt.Errorf("smartpay: ping: status %q", out.Status)
	}
	return nil
}

// ErrorAnswers returns the service's list of error codes, cached after the
// first successful fetch (Start fetches it).
func (c *Client) ErrorAnswers(ctx context.Context) ([]ErrorAnswer, error) {
	c.mu.Lock()
	a := c.answers
	c.mu.Unlock()
	if a != nil {
		return append([]ErrorAnswer(nil), a...), nil
	}
	return c.fetchErrorAnswers(ctx)
}

func (c *Client) fetchErrorAnswers(ctx context.Context) ([]ErrorAnswer, error) {
	var out []ErrorAnswer
	if err := c.call(ctx, http.MethodGet, PathErrorAnswers, nil, &out, true); err != nil {
		return nil, err
	}
	if out == nil {
		out = []ErrorAnswer{}
	}
	c.mu.Lock()
	c.answers = out
	c.mu.Unlock()
	return append([]ErrorAnswer(nil), out...), nil
}

// call performs one API call with a session: re-login once on 401, and, when
// retrySafe, retries with backoff on an unknown outcome or an unreachable
// service. It never retries a cancelled context or a certificate failure.
func (c *Client) call(ctx context.Context, method, path string, in, out any, retrySafe bool) error {
	backoff := c.cfg.RetryBackoff
	for attempt := 0; ; attempt++ {
		err := c.callAuthed(ctx, method, path, in, out)
		if err == nil {
			return nil
		}
		retry, reason := c.shouldRetry(ctx, err, retrySafe, attempt)
		if !retry {
			return err
		}
		c.log.Info("retrying call", zap.String("method", path), zap.Int("attempt", attempt+1),
			zap.String("reason", reason), zap.Duration("backoff", backoff))
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (retry abandoned: %w)", err, ctx.Err())
		case <-t.C:
		}
		backoff *= 2
	}
}

func (c *Client) shouldRetry(ctx context.Context, err error, retrySafe bool, attempt int) (bool, string) {
	switch {
	case !retrySafe:
		return false, "not retry-safe"
	case attempt >= c.cfg.Retries:
		return false, "retries exhausted"
	case ctx.Err() != nil:
		return false, "context done"
	case errors.Is(err, ErrCertificate):
		return false, "certificate"
	case errors.Is(err, ErrOutcomeUnknown):
		return true, "outcome unknown"
	case errors.Is(err, ErrUnavailable):
		return true, "unavailable"
	}
	return false, "service answer"
}

// callAuthed sends the call with the session cookie; on 401 it logs in again
// (once for all concurrent callers) and repeats the call once.
func (c *Client) callAuthed(ctx context.Context, method, path string, in, out any) error {
	for try := 0; ; try++ {
		c.mu.Lock()
		gen := c.sessionGen
		haveSession := c.cookie != nil
		c.mu.Unlock()
		if !haveSession && path != PathPing {
			if err := c.auth(ctx, gen); err != nil {
				return err
			}
			continue
		}
		resp, err := c.roundTrip(ctx, method, path, in, true)
		if err != nil {
			return err
		}
		if resp.StatusCode == http.StatusUnauthorized && try == 0 {
			drain(resp)
			c.log.Info("session refused, logging in again", zap.String("method", path))
			if err := c.auth(ctx, gen); err != nil {
				return err
			}
			continue
		}
		return c.decode(path, resp, out)
	}
}

func drain(resp *http.Response) {
	// Reading the rest lets the connection go back to the pool.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

func (c *Client) decode(path string, resp *http.Response, out any) error {
	defer drain(resp)
	if resp.StatusCode/100 != 2 {
		return c.apiError(path, resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
		// The service answered 2xx, so it did the work; we just cannot read it.
		return &transportError{method: path, kind: ErrOutcomeUnknown, err: fmt.Errorf("decoding answer: %w", err)}
	}
	return nil
}

// apiError reads a {"code","message"} body. A missing message is filled from
// the cached error answers.
func (c *Client) apiError(path string, resp *http.Response) error {
	var ea ErrorAnswer
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err := json.Unmarshal(raw, &ea); err != nil || ea.Code == 0 {
		ea.Code = 0
		ea.Message = http.StatusText(resp.StatusCode)
	}
	if ea.Message == "" {
		c.mu.Lock()
		for _, a := range c.answers {
			if a.Code == ea.Code {
				ea.Message = a.Message
			}
		}
		c.mu.Unlock()
	}
	return &APIError{Method: path, HTTPStatus: resp.StatusCode, Code: ea.Code, Message: ea.Message}
}

// roundTrip sends one request under CallTimeout and classifies a failure as
// ErrUnavailable (nothing was sent) or ErrOutcomeUnknown (sent, no answer).
// The returned response's body must be closed; it stays readable after
// roundTrip returns because the deadline is released by closing the body.
func (c *Client) roundTrip(ctx context.Context, method, path string, in any, withCookie bool) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("smartpay: %s: encoding request: %w", path, err)
		}
		body = bytes.NewReader(b)
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	var wrote bool
	var wroteMu sync.Mutex
	trace := &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) {
			wroteMu.Lock()
			wrote = true
			wroteMu.Unlock()
		},
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(cctx, trace), method, c.base+path, body)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("smartpay: %s: %w", path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if withCookie {
		c.mu.Lock()
		if c.cookie != nil {
			req.AddCookie(c.cookie)
		}
		c.mu.Unlock()
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		cancel()
		wroteMu.Lock()
		sent := wrote
		wroteMu.Unlock()
		return nil, classify(path, err, sent)
	}
	c.mu.Lock()
	c.lastRT = time.Now()
	c.mu.Unlock()
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// classify turns a transport failure into a typed error. A TLS alert from the
// server (our certificate refused; with TLS 1.3 it arrives after the request
// was written) and a failed verification of the server are certificate
// errors: the service did not act on the request.
func classify(path string, err error, sent bool) error {
	var (
		op      *net.OpError
		verify  *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
	)
	// crypto/tls reports a received alert as a net.OpError with Op "remote
	// error" (its alert type is unexported).
	remoteAlert := errors.As(err, &op) && op.Op == "remote error"
	cert := remoteAlert || errors.As(err, &verify) || errors.As(err, &unknown) ||
		errors.As(err, &host) || errors.As(err, &invalid)
	kind := ErrOutcomeUnknown
	if !sent || cert {
		kind = ErrUnavailable
	}
	return &transportError{method: path, kind: kind, cert: cert, err: err}
}
