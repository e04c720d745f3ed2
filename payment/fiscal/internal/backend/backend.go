// Package backend holds what the fiscal backends share: a Core with the
// provider's name, logger and timing, JSON calls over HTTP with one verdict
// for a missing answer, bounded polling, the walk along a receipt's attempt
// ids and the check that a result confirms its receipt.
package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/fiscal"
)

// maxBody bounds what we read of an answer; receipts' answers are small.
const maxBody = 1 << 20

// Core is what a backend's client is built on. It starts no goroutines;
// its methods are safe for concurrent use.
type Core struct {
	*Caller
	Provider string        // the backend package: "atol", "atolonline"
	Log      *zap.Logger   // named after the provider
	Timing   fiscal.Timing // with the backend's defaults filled in
	Base     string        // the base URL, without a trailing slash
	chain    chain
}

// NewCore checks rawURL (see NewCaller) and fills t's zero fields from
// defaults. It makes no call.
func NewCore(provider, rawURL string, t, defaults fiscal.Timing, log *zap.Logger) (*Core, error) {
	if log == nil {
		log = zap.NewNop()
	}
	t = t.Or(defaults)
	call, base, err := NewCaller(provider, rawURL, t.CallTimeout)
	if err != nil {
		return nil, err
	}
	return &Core{Caller: call, Provider: provider, Log: log.Named(provider), Timing: t, Base: base}, nil
}

// Caller makes JSON calls to one backend.
type Caller struct {
	provider string
	hc       *http.Client
	timeout  time.Duration
}

// NewCaller checks rawURL and returns a caller for it and the base URL
// without a trailing slash. Plain http is allowed only to a loopback host
// (the ATOL web server, the simulators): credentials and receipts cross a
// network only over https.
func NewCaller(provider, rawURL string, timeout time.Duration) (*Caller, string, error) {
	u, err := ParseURL(rawURL)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", provider, err)
	}
	tr := &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            (&net.Dialer{Timeout: timeout, KeepAlive: 15 * time.Second}).DialContext,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    timeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
	if u.Scheme == "http" {
		tr.Proxy = nil // a local device: no proxy from the environment
	}
	c := &Caller{provider: provider, timeout: timeout, hc: &http.Client{Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	return c, strings.TrimRight(u.String(), "/"), nil
}

// ParseURL checks a backend's base URL: http(s) with a host, and plain
// http only to a loopback host (the ATOL web server, the simulators):
// credentials and receipts cross a network only over https. The
// configuration checks it with the same rule.
func ParseURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("URL %q: want http(s)://host:port/path", rawURL)
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		return nil, fmt.Errorf("URL %q: plain http only to a loopback address; use https", rawURL)
	}
	return u, nil
}

// CheckURL is ParseURL for a settings field.
func CheckURL(rawURL string) error {
	_, err := ParseURL(rawURL)
	return err
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Close drops idle connections.
func (c *Caller) Close() { c.hc.CloseIdleConnections() }

// Answer is an HTTP answer that arrived whole.
type Answer struct {
	Status int
	Body   []byte
}

// Call sends in (nil: no body) as JSON and reads the answer. A failure to
// get a whole answer is an Unreachable *fiscal.Error: the request may or
// may not have taken effect.
func (c *Caller) Call(ctx context.Context, op, id, method, url string, header http.Header, in any) (Answer, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return Answer{}, fmt.Errorf("%s: %s: encode: %w", c.provider, op, err)
		}
		body = bytes.NewReader(b)
	}
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, method, url, body)
	if err != nil {
		return Answer{}, fmt.Errorf("%s: %s: %w", c.provider, op, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return Answer{}, c.unreachable(op, id, req.URL.Host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return Answer{}, c.unreachable(op, id, req.URL.Host, err)
	}
	if len(b) > maxBody {
		return Answer{}, &fiscal.Error{Kind: fiscal.Malformed, Provider: c.provider, Op: op, ID: id,
			Text: fmt.Sprintf("answer larger than %d bytes", maxBody)}
	}
	return Answer{Status: resp.StatusCode, Body: b}, nil
}

func (c *Caller) unreachable(op, id, host string, err error) error {
	// url.Error repeats method and URL; the cause is enough next to op.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &fiscal.Error{Kind: fiscal.Unreachable, Provider: c.provider, Op: op, ID: id, Err: err,
		Text: "no whole answer from " + host + " (is it running and reachable?); call again with the same receipt id"}
}

// Poll calls step at once and then with growing pauses (Timing.PollFirst,
// ×1.5, up to PollMax) until step reports done or Timing.Wait is over. It
// returns step's error when done, and a Pending error (about op and id)
// when the wait or ctx ran out first.
func (c *Core) Poll(ctx context.Context, op, id string, step func(context.Context) (bool, error)) error {
	provider, wait := c.Provider, c.Timing.Wait
	deadline := time.Now().Add(wait)
	pause := c.Timing.PollFirst
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		done, err := step(ctx)
		if done {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return &fiscal.Error{Kind: fiscal.Pending, Provider: provider, Op: op, ID: id,
				Text: fmt.Sprintf("not complete after %v; call again with the same receipt id", wait), Err: err}
		}
		timer.Reset(min(pause, left))
		select {
		case <-ctx.Done():
			return &fiscal.Error{Kind: fiscal.Pending, Provider: provider, Op: op, ID: id,
				Text: "stopped waiting; call again with the same receipt id", Err: ctx.Err()}
		case <-timer.C:
		}
		pause = min(pause*3/2, c.Timing.PollMax)
	}
}

// Steps are a backend's two steps of one attempt.
type Steps struct {
	// Submit posts the attempt under id (or finds it). existed reports
	// that the backend already knew id before this call; handle is what
	// Await needs to find it (the cloud's uuid).
	Submit func(ctx context.Context, id string) (handle string, existed bool, err error)
	// Await waits for the attempt and reads its confirmation (Issue then
	// checks that it confirms the receipt).
	Await func(ctx context.Context, id, handle string) (fiscal.Result, error)
}

// Unusable logs a confirmation of attempt id that cannot be used (text
// says why) and returns its Malformed error.
func (c *Core) Unusable(op fiscal.Operation, id, text string, err error) error {
	c.Log.Warn("receipt confirmation not usable", zap.String("op", op.String()), zap.String("id", id), zap.String("why", text))
	return &fiscal.Error{Kind: fiscal.Malformed, Provider: c.Provider, Op: op.String(), ID: id, Text: text, Err: err}
}

// attempt submits (or finds) one attempt id of a receipt and waits for it.
type attempt func(ctx context.Context, attemptID string) (res fiscal.Result, existed bool, err error)

// chain remembers, per receipt id, the first attempt not known to be
// refused, so that repeated calls in one process do not walk the refused
// attempts again; after a restart the first call walks them once. It is
// safe for concurrent use; the zero value is ready.
type chain struct {
	mu   sync.Mutex
	next map[string]int
}

func (c *chain) start(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.next[id]
}

func (c *chain) set(id string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n == 0 {
		delete(c.next, id)
		return
	}
	if c.next == nil {
		c.next = map[string]int{}
	}
	c.next[id] = n
}

// Issue validates r, then walks its attempt ids with s (at most
// Timing.MaxAttempts), checks that the result confirms r and logs the
// registered receipt.
func (c *Core) Issue(ctx context.Context, op fiscal.Operation, r fiscal.Receipt, s Steps) (fiscal.Result, error) {
	if err := r.Validate(); err != nil {
		// The error names the receipt; no id twice.
		return fiscal.Result{}, &fiscal.Error{Kind: fiscal.Refused, Provider: c.Provider, Op: op.String(), Err: err}
	}
	res, err := c.chain.walk(ctx, c.Provider, op.String(), r.ID, c.Timing.MaxAttempts, func(ctx context.Context, id string) (fiscal.Result, bool, error) {
		h, existed, err := s.Submit(ctx, id)
		if err != nil {
			return fiscal.Result{}, false, err
		}
		res, err := s.Await(ctx, id, h)
		if err == nil {
			if cerr := fiscal.Confirm(op, r, res); cerr != nil {
				return fiscal.Result{}, existed, c.Unusable(op, id, cerr.Error(), nil)
			}
		}
		return res, existed, err
	})
	if err == nil {
		c.Log.Info("receipt registered", zap.String("op", op.String()), zap.String("id", res.ID),
			zap.Int64("fd", res.FDNumber), zap.Int("shift", res.ShiftNumber))
	}
	return res, err
}

// walk follows a receipt's attempt ids (fiscal.AttemptID) from the first
// not known to be refused: an attempt that was definitely refused (no
// document made) is passed by, so a call after a fix tries anew under the
// next id; any other outcome (a result, a new refusal, an unknown state)
// ends the walk. At most max attempt ids per receipt.
func (c *chain) walk(ctx context.Context, provider, op, id string, max int, attempt attempt) (fiscal.Result, error) {
	var last error
	for n := c.start(id); n < max; n++ {
		res, existed, err := attempt(ctx, fiscal.AttemptID(id, n))
		switch {
		case err == nil:
			c.set(id, 0)
			return res, nil
		case !fiscal.Definite(err):
			return res, err
		case !existed:
			c.set(id, n+1) // refused just now: the next call starts after it
			return res, err
		}
		last = err
	}
	c.set(id, max)
	return fiscal.Result{}, &fiscal.Error{Kind: fiscal.Refused, Provider: provider, Op: op, ID: id,
		Text: fmt.Sprintf("all %d attempt ids of the receipt were refused; make a new receipt", max), Err: last}
}

// Snippet quotes the start of a body for an error text.
func Snippet(b []byte) string {
	const max = 200
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "…"
	}
	return strconv.Quote(string(b))
}
