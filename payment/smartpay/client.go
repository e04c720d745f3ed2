package smartpay

import (
	"bytes"
	"cmp"
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
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Config configures a Client. A zero duration or count takes the default in
// its comment.
type Config struct {
	URL      string // https://host:port
	CAFile   string // PEM of the CA that signed the service's certificate
	CertFile string // PEM of the kassa's client certificate
	KeyFile  string // PEM of its key; refused when group/others may read it
	// AttemptTimeout bounds one attempt of a call: connecting, the TLS
	// handshake, the request and its answer (default 5s). The whole call,
	// retries included, is bounded by the caller's context alone: give it a
	// deadline longer than AttemptTimeout (the flow's is 10s), so that an
	// attempt that gets no answer in time is repeated within it when that
	// is safe (see the methods).
	AttemptTimeout time.Duration
	// KeepWarm is the keep-warm period (default 30s). Once a period the
	// client pings the service, or logs in again when the session is about
	// to expire, so the connection stays open and the Observer hears
	// whether the service answers even while no sale runs; after a failure
	// it tries sooner (from 1s, doubling up to the period). Keep it below
	// the service's idle timeout (the simulator's is 2 minutes).
	KeepWarm time.Duration
	// Retries is how many times a call is repeated after a failure that
	// allows it (default 2; negative: none).
	Retries int
	// RetryBackoff is the first pause between attempts, doubled each time
	// (default 100ms).
	RetryBackoff time.Duration
	// Observer, when set, learns the outcome of every call.
	Observer Observer
}

// Observer learns the outcome of every call the Client makes: the caller's,
// the keep-warm pings, the logins (MethodAuth) and the fetch of the error
// answers. A call is reported once, after its last attempt, with the time
// all its attempts took and its final error (nil on success; VerdictOf says
// what it means). CallDone runs on the calling goroutine: it must not block.
type Observer interface {
	CallDone(method string, took time.Duration, err error)
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
	cfg.AttemptTimeout = cmp.Or(cfg.AttemptTimeout, 5*time.Second)
	cfg.KeepWarm = cmp.Or(cfg.KeepWarm, 30*time.Second)
	cfg.Retries = cmp.Or(cfg.Retries, 2)
	cfg.RetryBackoff = cmp.Or(cfg.RetryBackoff, 100*time.Millisecond)
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
		DialContext:     (&net.Dialer{Timeout: cfg.AttemptTimeout, KeepAlive: 15 * time.Second}).DialContext,
		TLSClientConfig: tlsCfg,
		// One connection carries the traffic; a second one covers a status poll
		// that overlaps a commit. Keep them long: the keep-warm loop, not the
		// pool, decides when the connection is used.
		MaxIdleConns:           4,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        30 * time.Minute,
		TLSHandshakeTimeout:    cfg.AttemptTimeout,
		ResponseHeaderTimeout:  0, // the attempt's context is the deadline
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

// Start logs in, fetches and caches the error answers and starts the
// keep-warm goroutine, which ends with ctx or Close. It returns the error of
// that first login or fetch; the keep-warm goroutine runs all the same and
// tries again (from 1s on, backing off to the KeepWarm period), so a kiosk
// that boots while the service is unreachable gets its session soon after
// the service answers.
func (c *Client) Start(ctx context.Context) error {
	c.mu.Lock()
	if c.done != nil {
		c.mu.Unlock()
		return errors.New("smartpay: client already started")
	}
	kctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	c.cancel, c.done = cancel, done
	c.mu.Unlock()
	err := c.auth(ctx, 0)
	if err == nil {
		_, err = c.fetchErrorAnswers(ctx)
	}
	go func() {
		defer close(done)
		c.keepWarm(kctx, err != nil)
	}()
	return err
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

func (c *Client) observe(method string, took time.Duration, err error) {
	if c.cfg.Observer != nil {
		c.cfg.Observer.CallDone(method, took, err)
	}
}

// Commit fixes a scanned QR with the service. Repeated after an unknown
// outcome: the kassa_purchase_id makes a repeat return the same purchase.
func (c *Client) Commit(ctx context.Context, r CommitRequest) (CommitResponse, error) {
	body := CommitBody{KassaPurchaseID: r.KassaPurchaseID, IDLoyalty: r.QR.IDLoyalty, Encrypted: r.QR.Encrypted, Sign: r.QR.Sign}
	return fetch(ctx, c, call{path: PathCommit, in: body, repeatable: true}, func(out *CommitResponse) error {
		return need(out.PurchaseID != "", "answer without purchase_id")
	})
}

// Release starts the payment of amount kopecks. Not repeated after an
// unknown outcome: the contract does not say what a second release does
// (it may be refused as a bad state, which would read as a decline), and
// the status, which the caller asks next, says whether the first one landed.
func (c *Client) Release(ctx context.Context, purchaseID string, amount int64) (ReleaseResponse, error) {
	return fetch[ReleaseResponse](ctx, c, call{path: PathRelease, in: ReleaseBody{PurchaseID: purchaseID, Amount: amount}}, nil)
}

// Status returns the purchase's state. A read: always repeatable.
func (c *Client) Status(ctx context.Context, purchaseID string) (StatusResponse, error) {
	return fetch(ctx, c, call{path: PathStatus, in: PurchaseIDBody{PurchaseID: purchaseID}, repeatable: true},
		func(out *StatusResponse) error {
			return need(out.Status.Valid(), "unknown purchase status %q", out.Status)
		})
}

// KassaStatus confirms (KassaSuccess) or abandons (KassaCancel) a purchase.
// Not repeated after an unknown outcome: a repeat may meet the state the
// first one made and be refused, which the caller would take for a refusal
// of the first; the caller asks the status instead.
func (c *Client) KassaStatus(ctx context.Context, purchaseID string, s KassaStatus) error {
	return c.do(ctx, call{path: PathKassaStatus, in: KassaStatusBody{PurchaseID: purchaseID, Status: s}})
}

// FiscalV1 stores the short fiscal data of a purchase. Not repeated after
// an unknown outcome: it has no idempotency key, so a repeat stores a second
// record; the caller's queue decides.
func (c *Client) FiscalV1(ctx context.Context, r FiscalV1Request) error {
	return c.do(ctx, call{path: PathFiscalV1, in: r})
}

// FiscalV2 stores a full receipt. Not repeated after an unknown outcome, as
// FiscalV1.
func (c *Client) FiscalV2(ctx context.Context, r FiscalV2Request) error {
	return c.do(ctx, call{path: PathFiscalV2, in: r})
}

// Refund asks for a refund. Repeated after an unknown outcome: the
// kassa_refund_id makes a repeat return the same refund.
func (c *Client) Refund(ctx context.Context, r RefundRequest) (RefundResponse, error) {
	return fetch(ctx, c, call{path: PathRefund, in: r, repeatable: true}, func(out *RefundResponse) error {
		return need(out.RefundID != "", "answer without refund_id")
	})
}

// RefundStatus returns a refund's state. A read: always repeatable.
func (c *Client) RefundStatus(ctx context.Context, refundID string) (RefundStatusResponse, error) {
	return fetch(ctx, c, call{path: PathRefundStatus, in: RefundIDBody{RefundID: refundID}, repeatable: true},
		func(out *RefundStatusResponse) error {
			return need(out.Status.Valid(), "unknown refund status %q", out.Status)
		})
}

// RefundKassaStatus confirms (KassaSuccess) or abandons (KassaCancel) a
// refund. Not repeated after an unknown outcome, as KassaStatus.
func (c *Client) RefundKassaStatus(ctx context.Context, refundID string, s KassaStatus) error {
	return c.do(ctx, call{path: PathRefundKassaStatus, in: RefundKassaStatusBody{RefundID: refundID, Status: s}})
}

// Ping checks that the service answers. A read: always repeatable.
func (c *Client) Ping(ctx context.Context) error { return c.ping(ctx, true) }

func (c *Client) ping(ctx context.Context, retry bool) error {
	_, err := fetch(ctx, c, call{path: PathPing, get: true, repeatable: true, once: !retry},
		func(out *PingResponse) error { return need(out.Status == "ok", "ping status %q", out.Status) })
	return err
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

// fetchErrorAnswers reads the list; a read, always repeatable.
func (c *Client) fetchErrorAnswers(ctx context.Context) ([]ErrorAnswer, error) {
	out, err := fetch[[]ErrorAnswer](ctx, c, call{path: PathErrorAnswers, get: true, repeatable: true}, nil)
	if err != nil {
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

// fetch performs cl and decodes its answer into an Out; valid, when set,
// checks the answer (a failure makes the outcome unknown).
func fetch[Out any](ctx context.Context, c *Client, cl call, valid func(*Out) error) (Out, error) {
	var out Out
	cl.out = &out
	if valid != nil {
		cl.check = func() error { return valid(&out) }
	}
	err := c.do(ctx, cl)
	return out, err
}

// need returns an error with the formatted text unless ok.
func need(ok bool, format string, args ...any) error {
	if ok {
		return nil
	}
	return fmt.Errorf(format, args...)
}

// call is one API call as do performs it.
type call struct {
	path       string
	get        bool // GET without a body; POST otherwise
	in, out    any
	repeatable bool         // a repeat after an unknown outcome has no effect beyond the first's
	once       bool         // one attempt whatever the failure (the keep-warm's ping: the next period repeats it)
	check      func() error // validates a decoded 2xx answer; a failure makes the outcome unknown
}

// do performs c with a session and repeats it while shouldRetry allows,
// within ctx, which bounds the whole call. The Observer hears the outcome.
func (c *Client) do(ctx context.Context, cl call) (err error) {
	start := time.Now()
	defer func() { c.observe(MethodOf(cl.path), time.Since(start), err) }()
	backoff := c.cfg.RetryBackoff
	for attempt := 0; ; attempt++ {
		err = c.attempt(ctx, cl)
		if err == nil {
			return nil
		}
		retry, reason := c.shouldRetry(ctx, cl, err, attempt, backoff)
		if !retry {
			if attempt > 0 {
				c.log.Info("call failed after retries", zap.String("method", MethodOf(cl.path)),
					zap.Int("attempts", attempt+1), zap.String("reason", reason), zap.Error(err))
			}
			return err
		}
		c.log.Info("retrying call", zap.String("method", MethodOf(cl.path)), zap.Int("attempt", attempt+1),
			zap.String("reason", reason), zap.Duration("backoff", backoff), zap.Error(err))
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

// shouldRetry decides whether a failed attempt is repeated, and says why
// (the reason is logged). Never after a refusal, a certificate failure, a
// done context, or an unknown outcome of a call whose repeat could act
// twice; always (within Retries and the context's deadline) when the
// request was not handled, and when a repeatable call's outcome is unknown.
func (c *Client) shouldRetry(ctx context.Context, cl call, err error, attempt int, backoff time.Duration) (bool, string) {
	v := VerdictOf(err)
	deadline, hasDeadline := ctx.Deadline()
	switch {
	case ctx.Err() != nil:
		return false, "the caller's context is done"
	case v == Refused:
		return false, "refused by the service"
	case v == Certificate:
		return false, "certificate rejected: repeating cannot help"
	case CodeOf(err) == CodeSessionExpired:
		return false, "session refused again after a new login: the service keeps refusing this kassa"
	case v == Unknown && !cl.repeatable:
		return false, "outcome unknown and a repeat could act twice: ask the status"
	case cl.once:
		return false, "single attempt"
	case attempt >= c.cfg.Retries:
		return false, "retries exhausted"
	case hasDeadline && time.Until(deadline) < backoff:
		return false, "no time left for another attempt"
	case v == Unavailable:
		return true, "not handled by the service: safe to repeat"
	}
	return true, "outcome unknown: repeating with the same id"
}

// attempt sends the call once with the session cookie; on 401 it logs in
// again (once for all concurrent callers) and repeats it once (SPEC §2).
func (c *Client) attempt(ctx context.Context, cl call) error {
	method := http.MethodPost
	if cl.get {
		method = http.MethodGet
	}
	for try := 0; ; try++ {
		c.mu.Lock()
		gen := c.sessionGen
		haveSession := c.cookie != nil
		c.mu.Unlock()
		if !haveSession && cl.path != PathPing {
			if err := c.auth(ctx, gen); err != nil {
				return err
			}
			continue
		}
		resp, err := c.roundTrip(ctx, method, cl.path, cl.in, true)
		if err != nil {
			return err
		}
		if resp.StatusCode == http.StatusUnauthorized && try == 0 {
			drain(resp)
			c.log.Info("session refused, logging in again", zap.String("method", MethodOf(cl.path)))
			if err := c.auth(ctx, gen); err != nil {
				return err
			}
			continue
		}
		if err := c.decode(cl.path, resp, cl.out); err != nil {
			return err
		}
		if cl.check != nil {
			if err := cl.check(); err != nil {
				// The service answered 2xx, so it may have done the work.
				return &callError{path: cl.path, verdict: Unknown, err: err}
			}
		}
		return nil
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
		return &callError{path: path, verdict: Unknown, err: fmt.Errorf("decoding answer: %w", err)}
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

// roundTrip sends one request under AttemptTimeout and classifies a failure
// as Unavailable (nothing was sent) or Unknown (sent, no answer). The
// returned response's body must be closed; it stays readable after
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
	cctx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout)
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) }}
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
		if ctx.Err() == nil && errors.Is(cctx.Err(), context.DeadlineExceeded) {
			// This attempt's time ran out, not the caller's: say so, for the retry log.
			err = fmt.Errorf("no answer within %v (attempt timeout): %w", c.cfg.AttemptTimeout, err)
		}
		return nil, classify(path, err, wrote.Load())
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

// classify judges a transport failure. A TLS alert from the server (our
// certificate refused; with TLS 1.3 it arrives after the request was
// written) and a failed verification of the server are certificate errors:
// the service did not act on the request. Otherwise a request that was
// written may have been acted on.
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
	v := Unknown
	switch {
	case remoteAlert || errors.As(err, &verify) || errors.As(err, &unknown) ||
		errors.As(err, &host) || errors.As(err, &invalid):
		v = Certificate
	case !sent:
		v = Unavailable
	}
	return &callError{path: path, verdict: v, err: err}
}
