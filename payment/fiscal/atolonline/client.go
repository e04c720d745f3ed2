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
	Location    *time.Location   // the zone receipt_datetime is in [UTC+3, Moscow]
	TokenTTL    time.Duration    // renew a token older than this [23h; tokens live 24 h [I]]
	Now         func() time.Time // the clock [time.Now]
	// Timing [defaultTiming]: Wait is for a document, the polls are of its
	// report, the attempts are external ids.
	fiscal.Timing
}

// defaultTiming: the cloud is across the internet and queues documents.
var defaultTiming = fiscal.Timing{CallTimeout: 10 * time.Second, Wait: 60 * time.Second,
	PollFirst: 200 * time.Millisecond, PollMax: 2 * time.Second, MaxAttempts: 100}

// Client registers receipts with the cloud. It starts no goroutines; its
// methods are safe for concurrent use.
type Client struct {
	cfg  Config
	core *backend.Core

	tokenMu sync.Mutex // serialises logins; held across the getToken call
	token   string
	got     time.Time
	gen     uint64 // bumped at every login, so concurrent 401s log in once
}

var _ fiscal.Provider = (*Client)(nil)

// New checks cfg. It makes no call; Check does.
func New(cfg Config, log *zap.Logger) (*Client, error) {
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
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	core, err := backend.NewCore(provider, cfg.URL, cfg.Timing, defaultTiming, log)
	if err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, core: core}, nil
}

// Close drops idle connections.
func (c *Client) Close() { c.core.Close() }

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
	host := c.core.Base
	if u, err := url.Parse(c.core.Base); err == nil {
		host = u.Host
	}
	return fiscal.Status{Provider: provider, Detail: "group " + c.cfg.Group + " at " + host}, nil
}

func (c *Client) issue(ctx context.Context, op fiscal.Operation, r fiscal.Receipt) (fiscal.Result, error) {
	path := OpSell
	if op == fiscal.SellReturn {
		path = OpSellRefund
	}
	return c.core.Issue(ctx, op, r, backend.Steps{
		Submit: func(ctx context.Context, id string) (string, bool, error) {
			return c.post(ctx, op.String(), id, path, c.request(r, id))
		},
		Await: func(ctx context.Context, id, uuid string) (fiscal.Result, error) {
			rep, err := c.await(ctx, op.String(), id, uuid)
			if err != nil {
				return fiscal.Result{}, err
			}
			return c.result(op, id, rep)
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
	ans, err := c.authorized(ctx, op, id, http.MethodPost, c.core.Base+"/"+url.PathEscape(c.cfg.Group)+"/"+path, body)
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
	err := c.core.Poll(ctx, op, id,
		func(ctx context.Context) (bool, error) {
			rep, done, err := c.report(ctx, op, id, uuid)
			out = rep
			return done, err
		})
	return out, err
}

func (c *Client) report(ctx context.Context, op, id, uuid string) (ReportAnswer, bool, error) {
	ans, err := c.authorized(ctx, op, id, http.MethodGet,
		c.core.Base+"/"+url.PathEscape(c.cfg.Group)+PathReportPart+url.PathEscape(uuid), nil)
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

// result reads a done report's payload.
func (c *Client) result(op fiscal.Operation, id string, rep ReportAnswer) (fiscal.Result, error) {
	bad := func(text string, err error) (fiscal.Result, error) {
		return fiscal.Result{}, c.core.Unusable(op, id, text, err)
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
	ans, err := c.core.Call(ctx, op, id, method, url, http.Header{TokenHeader: {tok}}, body)
	if err != nil || !expired(ans) {
		return ans, err
	}
	c.core.Log.Info("token refused; logging in again")
	if tok, _, err = c.login(ctx, gen); err != nil {
		return backend.Answer{}, err
	}
	return c.core.Call(ctx, op, id, method, url, http.Header{TokenHeader: {tok}}, body)
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
	ans, err := c.core.Call(ctx, op, "", http.MethodPost, c.core.Base+PathToken, nil,
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
	c.core.Log.Debug("logged in")
	return c.token, c.gen, nil
}
