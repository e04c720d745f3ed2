package atolonline

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/fiscal"
	"github.com/kioskd/kioskd/payment/fiscal/internal/backend"
)

const provider = "atolonline"

// Config configures a Client. Zero values get the defaults in brackets.
type Config struct {
	URL   string // the API's base URL [DefaultURL]
	Group string // group_code of the cloud kassa (required)
	// Login and Password get the token. Password is a secret
	// (fiscal.ReadSecret from the file the config names): never logged.
	Login, Password string
	INN             string // the seller's INN, tag 1018 (required)
	CompanyEmail    string // the seller's e-mail, tag 1117 (required)
	// ClientEmail is sent as the buyer's contact when a receipt has none:
	// the cloud requires an e-mail or a phone [V: ili/atol-online
	// refuses a client without both]. An unattended machine rarely knows
	// its buyer; use the operator's receipts mailbox [I].
	ClientEmail string
	Location    *time.Location // the zone receipt_datetime is in [UTC+3, Moscow]
	TokenTTL    time.Duration  // renew a token older than this [23h; tokens live 24 h [I]]
	CallTimeout time.Duration  // one HTTP call [10s]
	Wait        time.Duration  // how long a call waits for its document before Pending [60s]
	PollFirst   time.Duration  // first pause between report polls [200ms]
	PollMax     time.Duration  // longest pause [2s]
	MaxAttempts int            // external ids one receipt may use [100]
	Now         func() time.Time
}

// Client registers receipts with the cloud. It starts no goroutines; its
// methods are safe for concurrent use.
type Client struct {
	cfg   Config
	log   *zap.Logger
	call  *backend.Caller
	base  string
	chain backend.Chain

	tokenMu sync.Mutex // serialises logins; held across the getToken call
	token   string
	got     time.Time
	gen     uint64 // bumped at every login, so concurrent 401s log in once
}

var _ fiscal.Provider = (*Client)(nil)

// New checks cfg. It makes no call; Check does.
func New(cfg Config, log *zap.Logger) (*Client, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	var missing []string
	for _, f := range [...]struct{ name, v string }{{"group", cfg.Group}, {"login", cfg.Login}, {"password", cfg.Password},
		{"INN", cfg.INN}, {"company e-mail", cfg.CompanyEmail}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("atolonline: %s required", strings.Join(missing, ", "))
	}
	if cfg.Location == nil {
		cfg.Location = time.FixedZone("MSK", 3*3600)
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 23 * time.Hour
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 10 * time.Second
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 60 * time.Second
	}
	if cfg.PollFirst <= 0 {
		cfg.PollFirst = 200 * time.Millisecond
	}
	if cfg.PollMax < cfg.PollFirst {
		cfg.PollMax = max(2*time.Second, cfg.PollFirst)
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 100
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	call, base, err := backend.NewCaller(provider, cfg.URL, cfg.CallTimeout)
	if err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, log: log.Named(provider), call: call, base: base}, nil
}

// Close drops idle connections.
func (c *Client) Close() { c.call.Close() }

// Sell registers a sale paid electronically.
func (c *Client) Sell(ctx context.Context, r fiscal.Receipt) (fiscal.Result, error) {
	return c.issue(ctx, fiscal.Sell, r)
}

// SellReturn registers the return of a sale (sell_refund).
func (c *Client) SellReturn(ctx context.Context, r fiscal.Receipt) (fiscal.Result, error) {
	return c.issue(ctx, fiscal.SellReturn, r)
}

// Check logs in afresh: it proves the cloud answers and takes the
// credentials. It makes no document.
func (c *Client) Check(ctx context.Context) (fiscal.Status, error) {
	c.tokenMu.Lock()
	gen := c.gen
	c.tokenMu.Unlock()
	if _, _, err := c.login(ctx, gen); err != nil {
		return fiscal.Status{}, err
	}
	host := c.base
	if u, err := url.Parse(c.base); err == nil {
		host = u.Host
	}
	return fiscal.Status{Provider: provider, Detail: "group " + c.cfg.Group + " at " + host}, nil
}

func (c *Client) issue(ctx context.Context, op fiscal.Operation, r fiscal.Receipt) (fiscal.Result, error) {
	path := OpSell
	if op == fiscal.SellReturn {
		path = OpSellRefund
	}
	return c.chain.Issue(ctx, c.log, provider, op, r, c.cfg.MaxAttempts, backend.Steps{
		Submit: func(ctx context.Context, id string) (string, bool, error) {
			return c.post(ctx, op.String(), id, path, c.request(r, id))
		},
		Await: func(ctx context.Context, id, uuid string) (fiscal.Result, error) {
			rep, err := c.await(ctx, op.String(), id, uuid)
			if err != nil {
				return fiscal.Result{}, err
			}
			return c.result(op, r, id, rep)
		},
	})
}

// paymentObjects maps ours to v4's names [V: ili/atol-online v4 strings].
var paymentObjects = map[fiscal.PaymentObject]string{
	fiscal.ObjectCommodity: "commodity", fiscal.ObjectExcise: "excise", fiscal.ObjectJob: "job",
	fiscal.ObjectService: "service", fiscal.ObjectPayment: "payment", fiscal.ObjectAnother: "another",
}

// request builds the sell / sell_refund body: one cashless payment of the
// total, every item fully paid. Our taxation names are v4's sno values
// [V]. The place of settlement (1187) goes to payment_address [I: v4 has
// no separate 1009 address or 1036 machine number; the cloud kassa's
// registration supplies them].
func (c *Client) request(r fiscal.Receipt, id string) ReceiptRequest {
	rc := Receipt{
		Company:  Company{Email: c.cfg.CompanyEmail, SNO: string(r.Taxation), INN: c.cfg.INN, PaymentAddress: r.PaymentsPlace},
		Payments: []Payment{{Type: PaymentElectronic, Sum: json.Number(fiscal.Rubles(r.Total))}},
		Total:    json.Number(fiscal.Rubles(r.Total)),
	}
	if rc.Company.PaymentAddress == "" {
		rc.Company.PaymentAddress = r.PaymentsAddress
	}
	switch contact := r.CustomerContact; {
	case strings.Contains(contact, "@"):
		rc.Client.Email = contact
	case contact != "":
		rc.Client.Phone = contact
	default:
		rc.Client.Email = c.cfg.ClientEmail
	}
	for _, it := range r.Items {
		rc.Items = append(rc.Items, Item{
			Name:          it.Name,
			Price:         json.Number(fiscal.Rubles(it.Price)),
			Quantity:      json.Number(it.Quantity.String()),
			Sum:           json.Number(fiscal.Rubles(it.Amount)),
			PaymentMethod: "full_payment",
			PaymentObject: paymentObjects[it.ObjectOrDefault()],
			Vat:           Vat{Type: string(it.VAT)},
		})
	}
	return ReceiptRequest{ExternalID: id, Receipt: rc, Timestamp: c.cfg.Now().In(c.cfg.Location).Format(TimeLayout)}
}

// post submits the document under external id. existed reports that the
// cloud already had it (error 33, with the first document's uuid [V]).
func (c *Client) post(ctx context.Context, op, id, path string, body ReceiptRequest) (uuid string, existed bool, err error) {
	ans, err := c.authorized(ctx, op, id, http.MethodPost, c.base+"/"+url.PathEscape(c.cfg.Group)+"/"+path, body)
	if err != nil {
		return "", false, err
	}
	var oa OperationAnswer
	jerr := json.Unmarshal(ans.Body, &oa)
	switch {
	case ans.Status >= 500:
		return "", false, &fiscal.Error{Kind: fiscal.Unreachable, Provider: provider, Op: op, ID: id,
			Text: fmt.Sprintf("HTTP %d from the cloud", ans.Status)}
	case jerr != nil:
		return "", false, &fiscal.Error{Kind: fiscal.Malformed, Provider: provider, Op: op, ID: id,
			Text: fmt.Sprintf("HTTP %d, answer is not JSON: %s", ans.Status, backend.Snippet(ans.Body)), Err: jerr}
	case oa.Error != nil && oa.Error.Code == CodeExistExternalID:
		if oa.UUID == "" {
			return "", true, &fiscal.Error{Kind: fiscal.Malformed, Provider: provider, Op: op, ID: id, Code: oa.Error.Code,
				Text: "the document exists but the answer names no uuid"}
		}
		return oa.UUID, true, nil
	case oa.Error != nil:
		return "", false, &fiscal.Error{Kind: fiscal.Refused, Provider: provider, Op: op, ID: id, Code: oa.Error.Code, Text: oa.Error.Text}
	case ans.Status == http.StatusOK && oa.UUID != "":
		return oa.UUID, false, nil
	}
	return "", false, &fiscal.Error{Kind: fiscal.Malformed, Provider: provider, Op: op, ID: id,
		Text: fmt.Sprintf("HTTP %d without uuid or error: %s", ans.Status, backend.Snippet(ans.Body))}
}

// await polls the document's report until it is done or failed.
func (c *Client) await(ctx context.Context, op, id, uuid string) (ReportAnswer, error) {
	var out ReportAnswer
	err := backend.Poll(ctx, provider, op, id, c.cfg.Wait, c.cfg.PollFirst, c.cfg.PollMax,
		func(ctx context.Context) (bool, error) {
			rep, done, err := c.report(ctx, op, id, uuid)
			out = rep
			return done, err
		})
	return out, err
}

func (c *Client) report(ctx context.Context, op, id, uuid string) (ReportAnswer, bool, error) {
	ans, err := c.authorized(ctx, op, id, http.MethodGet,
		c.base+"/"+url.PathEscape(c.cfg.Group)+PathReportPart+url.PathEscape(uuid), nil)
	if err != nil {
		if fiscal.KindOf(err) == fiscal.Unreachable {
			return ReportAnswer{}, false, err // the document exists; the cloud may answer within the wait
		}
		return ReportAnswer{}, true, err
	}
	var rep ReportAnswer
	jerr := json.Unmarshal(ans.Body, &rep)
	switch {
	case ans.Status >= 500:
		return rep, false, &fiscal.Error{Kind: fiscal.Unreachable, Provider: provider, Op: op, ID: id,
			Text: fmt.Sprintf("HTTP %d from the cloud", ans.Status)}
	case jerr != nil:
		return rep, true, &fiscal.Error{Kind: fiscal.Malformed, Provider: provider, Op: op, ID: id,
			Text: fmt.Sprintf("HTTP %d, report is not JSON: %s", ans.Status, backend.Snippet(ans.Body)), Err: jerr}
	case ans.Status != http.StatusOK && rep.Error != nil && rep.Error.Code == CodeStateNotFound:
		// [I] just posted and not yet visible to report: ask again.
		return rep, false, &fiscal.Error{Kind: fiscal.Pending, Provider: provider, Op: op, ID: id,
			Code: rep.Error.Code, Text: rep.Error.Text}
	case ans.Status != http.StatusOK:
		return rep, true, &fiscal.Error{Kind: fiscal.Malformed, Provider: provider, Op: op, ID: id,
			Text: fmt.Sprintf("report: HTTP %d %s", ans.Status, backend.Snippet(ans.Body))}
	}
	switch rep.Status {
	case StatusWait:
		return rep, false, nil
	case StatusDone:
		return rep, true, nil
	case StatusFail:
		e := &fiscal.Error{Kind: fiscal.Refused, Provider: provider, Op: op, ID: id, Text: "the cloud failed the document"}
		if rep.Error != nil {
			e.Code, e.Text = rep.Error.Code, rep.Error.Text
			if rep.Error.Type != "" {
				e.Text += " (" + rep.Error.Type + ")"
			}
		}
		return rep, true, e
	}
	return rep, true, &fiscal.Error{Kind: fiscal.Malformed, Provider: provider, Op: op, ID: id,
		Text: fmt.Sprintf("unknown report status %q", rep.Status)}
}

// result reads a done report's payload and checks it confirms r.
func (c *Client) result(op fiscal.Operation, r fiscal.Receipt, id string, rep ReportAnswer) (fiscal.Result, error) {
	bad := func(text string, err error) (fiscal.Result, error) {
		c.log.Warn("receipt confirmation not usable", zap.String("op", op.String()), zap.String("id", id), zap.String("why", text))
		return fiscal.Result{}, &fiscal.Error{Kind: fiscal.Malformed, Provider: provider, Op: op.String(), ID: id, Text: text, Err: err}
	}
	p := rep.Payload
	if p == nil {
		return bad("done report without payload", nil)
	}
	res := fiscal.Result{ID: id, Operation: op, RegistrationNumber: p.EcrRegistrationNumber, FNNumber: p.FNNumber,
		FiscalSign: string(p.FiscalDocumentAttribute), FNSURL: p.FNSSite, OFDReceiptURL: p.OFDReceiptURL}
	var err error
	if p.ReceiptDatetime != "" {
		if res.DateTime, err = time.ParseInLocation(TimeLayout, p.ReceiptDatetime, c.cfg.Location); err != nil {
			return bad(fmt.Sprintf("receipt_datetime %q: want dd.mm.yyyy HH:MM:SS", p.ReceiptDatetime), err)
		}
	}
	if p.FiscalDocumentNumber != "" {
		if res.FDNumber, err = strconv.ParseInt(string(p.FiscalDocumentNumber), 10, 64); err != nil {
			return bad("fiscal_document_number: "+err.Error(), err)
		}
	}
	for _, f := range [...]struct {
		name string
		n    json.Number
		dst  *int
	}{{"shift_number", p.ShiftNumber, &res.ShiftNumber}, {"fiscal_receipt_number", p.FiscalReceiptNumber, &res.ReceiptNumber}} {
		if f.n != "" {
			if *f.dst, err = strconv.Atoi(string(f.n)); err != nil {
				return bad(f.name+": "+err.Error(), err)
			}
		}
	}
	if p.Total == "" {
		return bad("total missing", nil)
	}
	if res.Total, err = fiscal.ParseRubles(string(p.Total)); err != nil {
		return bad(err.Error(), err)
	}
	if err := fiscal.Confirm(op, r, res); err != nil {
		return bad(err.Error(), nil)
	}
	return res, nil
}

// authorized makes a call with the token, logging in first when there is
// none or it is old, and once more when the cloud says it expired (401 or
// code 10/11 [V]).
func (c *Client) authorized(ctx context.Context, op, id, method, url string, body any) (backend.Answer, error) {
	tok, gen, err := c.currentToken(ctx)
	if err != nil {
		return backend.Answer{}, err
	}
	ans, err := c.call.Call(ctx, op, id, method, url, http.Header{TokenHeader: {tok}}, body)
	if err != nil || !expired(ans) {
		return ans, err
	}
	c.log.Info("token refused; logging in again")
	if tok, _, err = c.login(ctx, gen); err != nil {
		return backend.Answer{}, err
	}
	return c.call.Call(ctx, op, id, method, url, http.Header{TokenHeader: {tok}}, body)
}

func expired(ans backend.Answer) bool {
	if ans.Status == http.StatusUnauthorized {
		return true
	}
	var oa OperationAnswer
	return ans.Status >= 400 && json.Unmarshal(ans.Body, &oa) == nil && oa.Error != nil &&
		(oa.Error.Code == CodeExpiredToken || oa.Error.Code == CodeMissingToken)
}

// currentToken returns the cached token, logging in when there is none or
// it is older than TokenTTL.
func (c *Client) currentToken(ctx context.Context) (string, uint64, error) {
	c.tokenMu.Lock()
	tok, gen, fresh := c.token, c.gen, c.cfg.Now().Sub(c.got) < c.cfg.TokenTTL
	c.tokenMu.Unlock()
	if tok != "" && fresh {
		return tok, gen, nil
	}
	return c.login(ctx, gen)
}

// login gets a new token unless another caller already replaced the one
// of generation gen.
func (c *Client) login(ctx context.Context, gen uint64) (string, uint64, error) {
	c.tokenMu.Lock()
	defer c.tokenMu.Unlock()
	if c.gen != gen && c.token != "" {
		return c.token, c.gen, nil
	}
	const op = "getToken"
	ans, err := c.call.Call(ctx, op, "", http.MethodPost, c.base+PathToken, nil,
		TokenRequest{Login: c.cfg.Login, Pass: c.cfg.Password})
	if err != nil {
		return "", 0, err
	}
	var ta TokenAnswer
	jerr := json.Unmarshal(ans.Body, &ta)
	switch {
	case ans.Status >= 500:
		return "", 0, &fiscal.Error{Kind: fiscal.Unreachable, Provider: provider, Op: op, Text: fmt.Sprintf("HTTP %d from the cloud", ans.Status)}
	case jerr != nil:
		return "", 0, &fiscal.Error{Kind: fiscal.Malformed, Provider: provider, Op: op,
			Text: fmt.Sprintf("HTTP %d, answer is not JSON", ans.Status), Err: jerr}
	case ta.Error != nil:
		return "", 0, &fiscal.Error{Kind: fiscal.Refused, Provider: provider, Op: op, Code: ta.Error.Code,
			Text: ta.Error.Text + "; check the cloud kassa's login and password"}
	case ta.Token == "":
		return "", 0, &fiscal.Error{Kind: fiscal.Malformed, Provider: provider, Op: op, Text: "no token in the answer"}
	}
	c.token, c.got = ta.Token, c.cfg.Now()
	c.gen++
	c.log.Debug("logged in")
	return c.token, c.gen, nil
}
