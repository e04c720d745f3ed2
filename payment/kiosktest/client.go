package kiosktest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kioskd/kioskd/payment"
)

// Client is a host application's connection to kioskd's local API: the unix
// socket, or a loopback TCP address with a bearer token.
type Client struct {
	hc    *http.Client
	tr    *http.Transport
	token string

	mu     sync.Mutex
	recent []string // the last events Watch saw, for a failure's report
}

// UnixClient talks to the API on socket path sock.
func UnixClient(sock string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConnsPerHost: 2,
	}
	return &Client{hc: &http.Client{Transport: tr}, tr: tr}
}

// TCPClient talks to the API at addr (host:port) with the bearer token.
func TCPClient(addr, token string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			d := net.Dialer{Timeout: 2 * time.Second}
			return d.DialContext(ctx, "tcp", addr)
		},
		MaxIdleConnsPerHost: 2,
	}
	return &Client{hc: &http.Client{Transport: tr}, tr: tr, token: token}
}

// CloseIdle drops the client's idle connections (after the agent died, so
// the next request dials afresh).
func (c *Client) CloseIdle() { c.tr.CloseIdleConnections() }

// HTTPError is an answer of the API other than 2xx.
type HTTPError struct {
	Method, Path string
	Status       int
	Msg          string // the API's "error"
	Code         int    // the service's code, on 422
}

// Error names the request and the answer.
func (e *HTTPError) Error() string {
	return fmt.Sprintf("kiosktest: %s %s: %d %s", e.Method, e.Path, e.Status, e.Msg)
}

// StatusOf returns the HTTP status of an *HTTPError in err's chain, or 0
// when the request got no answer (the agent is gone, a timeout).
func StatusOf(err error) int {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Status
	}
	return 0
}

// Answer is the API's answer to a request, as it came.
type Answer struct {
	Status int
	Body   []byte
}

// newRequest is a request to the API with the client's token.
func (c *Client) newRequest(ctx context.Context, method, path string, body []byte) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://kioskd"+path, r)
	if err != nil {
		return nil, fmt.Errorf("kiosktest: %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// Send sends one request as the host wrote it (body nil for none, header
// added to the request) and returns the answer whatever its status; the
// error means no answer came. A test that checks the answers themselves
// (copies of a request sent at once) uses it; ctx may carry an
// httptrace.ClientTrace.
func (c *Client) Send(ctx context.Context, method, path string, body []byte, header http.Header) (Answer, error) {
	req, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		return Answer{}, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return Answer{}, fmt.Errorf("kiosktest: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return Answer{}, fmt.Errorf("kiosktest: %s %s: reading the answer: %w", method, path, err)
	}
	return Answer{Status: resp.StatusCode, Body: b}, nil
}

// do sends one request; in is marshalled as the body when not nil, a 2xx
// answer is decoded into out when not nil.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("kiosktest: %s %s: %w", method, path, err)
		}
	}
	a, err := c.Send(ctx, method, path, body, nil)
	if err != nil {
		return err
	}
	if a.Status/100 != 2 {
		he := &HTTPError{Method: method, Path: path, Status: a.Status}
		var e struct {
			Error string `json:"error"`
			Code  int    `json:"code"`
		}
		if json.Unmarshal(a.Body, &e) == nil {
			he.Msg, he.Code = e.Error, e.Code
		} else {
			he.Msg = strings.TrimSpace(string(a.Body))
		}
		return he
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(a.Body, out); err != nil {
		return fmt.Errorf("kiosktest: %s %s: decoding %q: %w", method, path, a.Body, err)
	}
	return nil
}

// Health is GET /healthz: whether the agent is ready, and why not. The
// error means no readable answer came.
func (c *Client) Health(ctx context.Context) (ready bool, reasons []string, err error) {
	a, err := c.Send(ctx, http.MethodGet, "/healthz", nil, nil)
	if err != nil {
		return false, nil, err
	}
	var h struct {
		Ready   bool     `json:"ready"`
		Reasons []string `json:"reasons"`
	}
	if err := json.Unmarshal(a.Body, &h); err != nil {
		return false, nil, fmt.Errorf("kiosktest: GET /healthz: %d %q: %w", a.Status, a.Body, err)
	}
	return h.Ready, h.Reasons, nil
}

// State is GET /v1/state.
func (c *Client) State(ctx context.Context) (payment.Status, error) {
	var st payment.Status
	err := c.do(ctx, http.MethodGet, "/v1/state", nil, &st)
	return st, err
}

// SetAmount is POST /v1/sale: the amount of the current or the next sale.
func (c *Client) SetAmount(ctx context.Context, amount int64) error {
	return c.do(ctx, http.MethodPost, "/v1/sale", map[string]int64{"amount": amount}, nil)
}

// Scan is POST /v1/scan: a scan injected by a host that owns the scanner.
func (c *Client) Scan(ctx context.Context, data string) error {
	return c.do(ctx, http.MethodPost, "/v1/scan", map[string]string{"data": data, "source": "kiosktest"}, nil)
}

// Cancel is POST /v1/sale/cancel.
func (c *Client) Cancel(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/sale/cancel", nil, nil)
}

// Handover is POST /v1/sale/handover.
func (c *Client) Handover(ctx context.Context, ok bool) error {
	return c.do(ctx, http.MethodPost, "/v1/sale/handover", map[string]bool{"ok": ok}, nil)
}

// PaidElsewhere is POST /v1/sale/paid-elsewhere with a receipt.
func (c *Client) PaidElsewhere(ctx context.Context, receipt json.RawMessage) error {
	return c.do(ctx, http.MethodPost, "/v1/sale/paid-elsewhere", map[string]json.RawMessage{"receipt": receipt}, nil)
}

// Fiscal is POST /v1/sale/fiscal: v1 (KKT number and fiscal sign) or, with
// a receipt, v2.
type Fiscal struct {
	PurchaseID   string          `json:"purchase_id,omitempty"`
	KKTRegNumber string          `json:"kkt_reg_number,omitempty"`
	FiscalSign   string          `json:"fiscal_sign,omitempty"`
	Receipt      json.RawMessage `json:"receipt,omitempty"`
}

// SendFiscal queues a fiscal record.
func (c *Client) SendFiscal(ctx context.Context, f Fiscal) error {
	return c.do(ctx, http.MethodPost, "/v1/sale/fiscal", f, nil)
}

// Refund is POST /v1/refunds; requestID is the host's idempotency key.
func (c *Client) Refund(ctx context.Context, purchaseID string, amount int64, requestID string) (payment.RefundInfo, error) {
	var ri payment.RefundInfo
	err := c.do(ctx, http.MethodPost, "/v1/refunds", map[string]any{
		"purchase_id": purchaseID, "amount": amount, "request_id": requestID}, &ri)
	return ri, err
}

// RefundInfo is GET /v1/refunds/{id}.
func (c *Client) RefundInfo(ctx context.Context, id string) (payment.RefundInfo, error) {
	var ri payment.RefundInfo
	err := c.do(ctx, http.MethodGet, "/v1/refunds/"+id, nil, &ri)
	return ri, err
}

// Metrics is GET /metrics parsed into "name{labels}" → value.
func (c *Client) Metrics(ctx context.Context) (map[string]float64, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("kiosktest: metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("kiosktest: metrics: %s", resp.Status)
	}
	return ParseMetrics(resp.Body)
}

// ParseMetrics reads the Prometheus text format into "name{labels}" →
// value, skipping comments.
func ParseMetrics(r io.Reader) (map[string]float64, error) {
	m := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if i := strings.LastIndexByte(l, ' '); i > 0 {
			if v, err := strconv.ParseFloat(l[i+1:], 64); err == nil {
				m[l[:i]] = v
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("kiosktest: metrics: %w", err)
	}
	return m, nil
}

// WaitState polls GET /v1/state until ok accepts the status, every poll
// (and at once whenever wake delivers). It returns the last error when ctx
// ends first.
func (c *Client) WaitState(ctx context.Context, poll time.Duration, wake <-chan struct{}, ok func(payment.Status) bool) (payment.Status, error) {
	t := time.NewTimer(0)
	defer t.Stop()
	var last error
	for {
		select {
		case <-ctx.Done():
			if last == nil {
				last = ctx.Err()
			}
			return payment.Status{}, fmt.Errorf("kiosktest: waiting for the state: %w", last)
		case <-t.C:
		case <-wake:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
		st, err := c.State(ctx)
		if err == nil && ok(st) {
			return st, nil
		}
		if err != nil {
			last = err
		} else {
			last = fmt.Errorf("kiosktest: state %s (sale %s)", st.State, st.SaleID)
		}
		t.Reset(poll)
	}
}

// Watch follows GET /v1/events and sends on the returned channel (cap 1,
// coalesced) whenever an event arrives, so WaitState looks again at once
// instead of at its next poll, and keeps the last events for Recent. The
// stream is reopened when it breaks; the goroutine ends with ctx.
func (c *Client) Watch(ctx context.Context) <-chan struct{} {
	wake := make(chan struct{}, 1)
	go func() { // owner: the caller's ctx
		for ctx.Err() == nil {
			c.stream(ctx, wake)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return wake
}

func (c *Client) stream(ctx context.Context, wake chan<- struct{}) {
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/events", nil)
	if err != nil {
		return
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data:"); ok {
			c.mu.Lock()
			c.recent = append(c.recent, strings.TrimSpace(data))
			if len(c.recent) > 2*recentEvents {
				c.recent = append([]string(nil), c.recent[len(c.recent)-recentEvents:]...)
			}
			c.mu.Unlock()
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}
}

// recentEvents is how many events Recent keeps.
const recentEvents = 40

// Recent returns the last events (their JSON) the Watch stream delivered,
// oldest first: what became of a scan shows there (busy, duplicate, fault…).
func (c *Client) Recent() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.recent
	if len(r) > recentEvents {
		r = r[len(r)-recentEvents:]
	}
	return append([]string(nil), r...)
}
