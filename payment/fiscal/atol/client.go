package atol

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/fiscal"
	"github.com/kioskd/kioskd/payment/fiscal/internal/backend"
)

const provider = "atol"

// Config configures a Client. Zero values get the defaults in brackets.
type Config struct {
	URL string // the web server's base URL [DefaultURL]
	// Login and Password answer the web server's HTTP Basic login when it
	// has accounts [V: Authorization: Basic in public clients]. Password is
	// a secret (fiscal.ReadSecret): never logged.
	Login, Password string
	// Operator and OperatorINN name the cashier (tags 1021, 1203); an
	// automatic device may leave them empty [I].
	Operator, OperatorINN string
	// Timing [defaultTiming]: Wait is for a task, the polls are of its
	// result.
	fiscal.Timing
}

// defaultTiming: the web server is on the machine, and a ККТ prints in
// about a second.
var defaultTiming = fiscal.Timing{CallTimeout: 5 * time.Second, Wait: 30 * time.Second,
	PollFirst: 50 * time.Millisecond, PollMax: 500 * time.Millisecond, MaxAttempts: 100}

// Client drives the ККТ through the web server. It starts no goroutines;
// its methods are safe for concurrent use.
type Client struct {
	cfg    Config
	core   *backend.Core
	header http.Header
}

var (
	_ fiscal.Provider = (*Client)(nil)
	_ fiscal.Shifts   = (*Client)(nil)
)

// New checks cfg. It makes no call; Check does.
func New(cfg Config, log *zap.Logger) (*Client, error) {
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	if cfg.Password != "" && cfg.Login == "" {
		return nil, errors.New("atol: a password without a login; set both or neither")
	}
	core, err := backend.NewCore(provider, cfg.URL, cfg.Timing, defaultTiming, log)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	if cfg.Login != "" {
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cfg.Login+":"+cfg.Password)))
	}
	return &Client{cfg: cfg, core: core, header: h}, nil
}

// Close drops idle connections.
func (c *Client) Close() { c.core.Close() }

// Sell registers a sale paid electronically.
func (c *Client) Sell(ctx context.Context, r fiscal.Receipt) (fiscal.Result, error) {
	return c.issue(ctx, fiscal.Sell, r)
}

// SellReturn registers the return of a sale.
func (c *Client) SellReturn(ctx context.Context, r fiscal.Receipt) (fiscal.Result, error) {
	return c.issue(ctx, fiscal.SellReturn, r)
}

func (c *Client) issue(ctx context.Context, op fiscal.Operation, r fiscal.Receipt) (fiscal.Result, error) {
	task := c.receiptTask(op, r)
	return c.core.Issue(ctx, op, r, backend.Steps{
		Submit: func(ctx context.Context, id string) (string, bool, error) {
			existed, err := c.post(ctx, op.String(), id, task)
			return "", existed, err
		},
		Await: func(ctx context.Context, id, _ string) (fiscal.Result, error) {
			tr, err := c.await(ctx, op.String(), id)
			if err != nil {
				return fiscal.Result{}, err
			}
			return c.receiptResult(op, id, tr)
		},
	})
}

// taxation maps our taxation systems to the driver's names [V: the
// driver's TAXATION_TYPES].
var taxation = map[fiscal.TaxSystem]string{
	fiscal.TaxOSN: "osn", fiscal.TaxUSNIncome: "usnIncome", fiscal.TaxUSNIncomeOutcome: "usnIncomeOutcome",
	fiscal.TaxESN: "esn", fiscal.TaxPatent: "patent", fiscal.TaxENVD: "envd",
}

// paymentObjects maps ours to the driver's names [V: PAYMENT_OBJECTS].
var paymentObjects = map[fiscal.PaymentObject]string{
	fiscal.ObjectCommodity: "commodity", fiscal.ObjectExcise: "excise", fiscal.ObjectJob: "job",
	fiscal.ObjectService: "service", fiscal.ObjectPayment: "payment", fiscal.ObjectAnother: "another",
}

// receiptTask builds the sell or sellReturn task: electronic payment of
// the whole total, every item fully paid [V: field and value names from
// the driver's scripts].
func (c *Client) receiptTask(op fiscal.Operation, r fiscal.Receipt) Task {
	t := Task{
		Type:            TaskSell,
		TaxationType:    taxation[r.Taxation],
		Electronically:  r.Electronic,
		Operator:        c.operator(),
		PaymentsPlace:   r.PaymentsPlace,
		PaymentsAddress: r.PaymentsAddress,
		MachineNumber:   r.MachineNumber,
		Payments:        []Payment{{Type: "electronically", Sum: json.Number(fiscal.Rubles(r.Total))}},
		Total:           json.Number(fiscal.Rubles(r.Total)),
	}
	if op == fiscal.SellReturn {
		t.Type = TaskSellReturn
	}
	if r.CustomerContact != "" {
		t.ClientInfo = &ClientInfo{EmailOrPhone: r.CustomerContact}
	}
	for _, it := range r.Items {
		t.Items = append(t.Items, Item{
			Type:          "position",
			Name:          it.Name,
			Price:         json.Number(fiscal.Rubles(it.Price)),
			Quantity:      json.Number(it.Quantity.String()),
			Amount:        json.Number(fiscal.Rubles(it.Amount)),
			PaymentMethod: "fullPayment",
			PaymentObject: paymentObjects[it.ObjectOrDefault()],
			Tax:           Tax{Type: string(it.VAT)},
		})
	}
	return t
}

func (c *Client) operator() *Operator {
	if c.cfg.Operator == "" {
		return nil
	}
	return &Operator{Name: c.cfg.Operator, Vatin: c.cfg.OperatorINN}
}

// post queues task under id. existed reports that the server already had
// a task with this id: the server answers 409 Conflict to a second uuid
// [I: HTTP codes 400/401/404/409 named by a Web Requests reimplementation;
// 201 Created for a new task [V: same source]].
func (c *Client) post(ctx context.Context, op, id string, task Task) (existed bool, err error) {
	ans, err := c.core.Call(ctx, op, id, http.MethodPost, c.core.Base+PathRequests, c.header,
		RequestBody{UUID: id, Request: []Task{task}})
	if err != nil {
		return false, err
	}
	switch {
	case ans.Status == http.StatusCreated || ans.Status == http.StatusOK:
		return false, nil
	case ans.Status == http.StatusConflict:
		return true, nil
	case ans.Status >= 500:
		return false, &fiscal.Error{Kind: fiscal.Unreachable, Provider: provider, Op: op, ID: id,
			Text: fmt.Sprintf("HTTP %d from the web server", ans.Status)}
	case ans.Status == http.StatusUnauthorized || ans.Status == http.StatusForbidden:
		return false, &fiscal.Error{Kind: fiscal.Refused, Provider: provider, Op: op, ID: id, Code: ans.Status,
			Text: "the web server refused the login; set the web server's login and password"}
	}
	var pa PostAnswer
	if json.Unmarshal(ans.Body, &pa) == nil && pa.Error != nil && ans.Status >= 400 && ans.Status < 500 {
		return false, &fiscal.Error{Kind: fiscal.Refused, Provider: provider, Op: op, ID: id,
			Code: pa.Error.Code, Text: pa.Error.Description}
	}
	return false, &fiscal.Error{Kind: fiscal.Malformed, Provider: provider, Op: op, ID: id,
		Text: fmt.Sprintf("unexpected answer to the task: HTTP %d %s", ans.Status, backend.Snippet(ans.Body))}
}

// await polls the task until it is done or the wait is over.
func (c *Client) await(ctx context.Context, op, id string) (TaskResult, error) {
	var out TaskResult
	err := c.core.Poll(ctx, op, id,
		func(ctx context.Context) (bool, error) {
			tr, done, err := c.poll(ctx, op, id)
			out = tr
			return done, err
		})
	return out, err
}

// poll reads the task's state once. done=false means poll again (the
// error, if any, says why it is not done yet).
func (c *Client) poll(ctx context.Context, op, id string) (TaskResult, bool, error) {
	ans, err := c.core.Call(ctx, op, id, http.MethodGet, c.core.Base+PathRequests+"/"+id, c.header, nil)
	if err != nil {
		return TaskResult{}, false, err // the task exists; the server may come back within the wait
	}
	malformed := func(text string, err error) (TaskResult, bool, error) {
		return TaskResult{}, true, &fiscal.Error{Kind: fiscal.Malformed, Provider: provider, Op: op, ID: id, Text: text, Err: err}
	}
	switch {
	case ans.Status >= 500:
		return TaskResult{}, false, &fiscal.Error{Kind: fiscal.Unreachable, Provider: provider, Op: op, ID: id,
			Text: fmt.Sprintf("HTTP %d from the web server", ans.Status)}
	case ans.Status == http.StatusNotFound:
		// Posted but unknown: the server lost its queue. The next call posts
		// the id again.
		return TaskResult{}, true, &fiscal.Error{Kind: fiscal.Unreachable, Provider: provider, Op: op, ID: id,
			Text: "the web server does not know the task any more; the next call posts it again"}
	case ans.Status == http.StatusUnauthorized || ans.Status == http.StatusForbidden:
		return TaskResult{}, true, &fiscal.Error{Kind: fiscal.Refused, Provider: provider, Op: op, ID: id, Code: ans.Status,
			Text: "the web server refused the login; set the web server's login and password"}
	case ans.Status != http.StatusOK:
		return malformed(fmt.Sprintf("HTTP %d %s", ans.Status, backend.Snippet(ans.Body)), nil)
	}
	var rb ResultsBody
	if err := json.Unmarshal(ans.Body, &rb); err != nil {
		return malformed("results are not JSON: "+backend.Snippet(ans.Body), err)
	}
	if len(rb.Results) == 0 {
		return malformed("no results in "+backend.Snippet(ans.Body), nil)
	}
	tr := rb.Results[0]
	switch tr.Status {
	case StatusWait, StatusInProgress:
		return tr, false, nil
	case StatusBlocked:
		return tr, false, &fiscal.Error{Kind: fiscal.Pending, Provider: provider, Op: op, ID: id,
			Text: "the ККТ was lost during the task; its result is unknown until the ККТ is back"}
	case StatusReady:
		return tr, true, nil
	case StatusError:
		code, text := tr.TaskError()
		kind := fiscal.Refused
		if code == CodeShiftExpired || code == CodeFNShiftExpired {
			kind = fiscal.ShiftExpired
		}
		return tr, true, &fiscal.Error{Kind: kind, Provider: provider, Op: op, ID: id, Code: code, Text: text, FN: FNCode(code)}
	case StatusInterrupted, StatusCanceled:
		code, text := tr.TaskError()
		return tr, true, &fiscal.Error{Kind: fiscal.Refused, Provider: provider, Op: op, ID: id, Code: code,
			Text: "task " + tr.Status + " before it ran: " + text}
	}
	return malformed(fmt.Sprintf("unknown task status %q", tr.Status), nil)
}

// receiptResult reads a ready sell/sellReturn task's fiscal data.
func (c *Client) receiptResult(op fiscal.Operation, id string, tr TaskResult) (fiscal.Result, error) {
	bad := func(text string, err error) (fiscal.Result, error) {
		return fiscal.Result{}, c.core.Unusable(op, id, text, err)
	}
	var fr FiscalResult
	if err := json.Unmarshal(tr.Result, &fr); err != nil {
		return bad("result is not JSON: "+backend.Snippet(tr.Result), err)
	}
	if fr.FiscalParams == nil {
		return bad("result has no fiscalParams", nil)
	}
	res, err := fr.FiscalParams.result(op, id)
	if err != nil {
		return bad(err.Error(), nil)
	}
	return res, nil
}

// result converts the wire fiscal data.
func (p FiscalParams) result(op fiscal.Operation, id string) (fiscal.Result, error) {
	res := fiscal.Result{ID: id, Operation: op, RegistrationNumber: string(p.RegistrationNumber),
		FNNumber: string(p.FNNumber), FiscalSign: string(p.FiscalDocumentSign), FNSURL: p.FNSURL}
	var err error
	if p.FiscalDocumentDateTime != "" {
		if res.DateTime, err = time.Parse(time.RFC3339, p.FiscalDocumentDateTime); err != nil {
			return res, fmt.Errorf("fiscalDocumentDateTime %q: want ISO 8601 with offset", p.FiscalDocumentDateTime)
		}
	}
	if res.FDNumber, err = optInt(p.FiscalDocumentNumber); err != nil {
		return res, fmt.Errorf("fiscalDocumentNumber: %v", err)
	}
	n, err := optInt(p.ShiftNumber)
	if err != nil {
		return res, fmt.Errorf("shiftNumber: %v", err)
	}
	res.ShiftNumber = int(n)
	if n, err = optInt(p.FiscalReceiptNumber); err != nil {
		return res, fmt.Errorf("fiscalReceiptNumber: %v", err)
	}
	res.ReceiptNumber = int(n)
	if p.Total == "" {
		return res, errors.New("total missing")
	}
	if res.Total, err = fiscal.ParseRubles(string(p.Total)); err != nil {
		return res, err
	}
	return res, nil
}

func optInt(n json.Number) (int64, error) {
	if n == "" {
		return 0, nil
	}
	return strconv.ParseInt(string(n), 10, 64)
}

// Shift asks the shift's state (a getShiftStatus task; no document).
func (c *Client) Shift(ctx context.Context) (fiscal.Shift, error) {
	tr, err := c.run(ctx, Task{Type: TaskShiftStatus})
	if err != nil {
		return fiscal.Shift{}, err
	}
	var sr ShiftStatusResult
	if err := json.Unmarshal(tr.Result, &sr); err != nil || sr.ShiftStatus == nil {
		return fiscal.Shift{}, &fiscal.Error{Kind: fiscal.Malformed, Provider: provider, Op: TaskShiftStatus,
			Text: "no shiftStatus in " + backend.Snippet(tr.Result), Err: err}
	}
	st := sr.ShiftStatus
	sh := fiscal.Shift{Number: st.Number}
	switch st.State {
	case ShiftOpened:
		sh.State = fiscal.ShiftIsOpen
	case ShiftClosed:
		sh.State = fiscal.ShiftIsClosed
	case ShiftExpired:
		sh.State = fiscal.ShiftIsExpired
	default:
		return fiscal.Shift{}, &fiscal.Error{Kind: fiscal.Malformed, Provider: provider, Op: TaskShiftStatus,
			Text: fmt.Sprintf("unknown shift state %q", st.State)}
	}
	if st.ExpiredTime != "" && sh.State != fiscal.ShiftIsClosed {
		if sh.Expires, err = time.Parse(time.RFC3339, st.ExpiredTime); err != nil {
			return fiscal.Shift{}, &fiscal.Error{Kind: fiscal.Malformed, Provider: provider, Op: TaskShiftStatus,
				Text: fmt.Sprintf("expiredTime %q: want ISO 8601 with offset", st.ExpiredTime)}
		}
	}
	return sh, nil
}

// OpenShift opens a shift. An already open shift is not an error.
func (c *Client) OpenShift(ctx context.Context) (fiscal.Shift, error) {
	_, err := c.run(ctx, Task{Type: TaskOpenShift, Operator: c.operator()})
	if err != nil && !refusedWith(err, CodeDeniedInOpenedShift) {
		return fiscal.Shift{}, err
	}
	sh, err := c.Shift(ctx)
	if err == nil {
		c.core.Log.Info("shift opened", zap.Int("shift", sh.Number), zap.Time("expires", sh.Expires))
	}
	return sh, err
}

// CloseShift closes the shift (Z report). An already closed shift is not
// an error.
func (c *Client) CloseShift(ctx context.Context) (fiscal.Shift, error) {
	tr, err := c.run(ctx, Task{Type: TaskCloseShift, Operator: c.operator()})
	if refusedWith(err, CodeDeniedInClosedShift) {
		return c.Shift(ctx)
	}
	if err != nil {
		return fiscal.Shift{}, err
	}
	sh := fiscal.Shift{State: fiscal.ShiftIsClosed}
	var fr FiscalResult
	if json.Unmarshal(tr.Result, &fr) == nil && fr.FiscalParams != nil {
		n, _ := optInt(fr.FiscalParams.ShiftNumber)
		sh.Number = int(n)
	}
	c.core.Log.Info("shift closed", zap.Int("shift", sh.Number))
	return sh, nil
}

func refusedWith(err error, code int) bool {
	var e *fiscal.Error
	return errors.As(err, &e) && e.Kind == fiscal.Refused && e.Code == code
}

// run posts a one-off task under a fresh id and waits for it.
func (c *Client) run(ctx context.Context, t Task) (TaskResult, error) {
	id := fiscal.NewID()
	if _, err := c.post(ctx, t.Type, id, t); err != nil {
		return TaskResult{}, err
	}
	return c.await(ctx, t.Type, id)
}

// Check asks the shift's state: it proves the web server and the ККТ
// answer, and shows whether the shift needs renewing.
func (c *Client) Check(ctx context.Context) (fiscal.Status, error) {
	sh, err := c.Shift(ctx)
	if err != nil {
		return fiscal.Status{}, err
	}
	return fiscal.Status{Provider: provider, Detail: c.core.Base, Shift: &sh}, nil
}
