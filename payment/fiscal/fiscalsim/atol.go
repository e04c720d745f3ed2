package fiscalsim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/fiscal"
	"github.com/kioskd/kioskd/payment/fiscal/atol"
)

// Method names of the web server simulator, for faults and counters.
const (
	AtolPost = "post" // POST /requests
	AtolGet  = "get"  // GET /requests/{uuid}
)

// AtolBase is the path the simulated web server serves under, as the real
// one does (http://127.0.0.1:16732/api/v2).
const AtolBase = "/api/v2"

// Atol simulates the ATOL driver v10 web server. Its methods are safe for
// concurrent use.
type Atol struct {
	*kkt
	requests map[string]*atolRequest // by uuid; guarded by kkt.mu
	routes   []route
}

// atolRequest is one posted request: its tasks and their results.
type atolRequest struct {
	tasks   []atol.Task
	results []atol.TaskResult
	polls   int // result queries left before it runs; -1 never
	kerr    *kktError
}

// NewAtol returns a simulated web server in front of a fresh virtual ККТ.
func NewAtol(cfg Config, log *zap.Logger) *Atol {
	if log == nil {
		log = zap.NewNop()
	}
	s := &Atol{kkt: newKKT(cfg, log.Named("atol-sim")), requests: map[string]*atolRequest{}}
	s.routes = []route{
		{"POST " + AtolBase + atol.PathRequests, AtolPost, s.post},
		{"GET " + AtolBase + atol.PathRequests + "/{uuid}", AtolGet, s.get},
	}
	return s
}

// Handler serves the web server's API under AtolBase.
func (s *Atol) Handler() http.Handler { return s.serve(s.routes) }

// Serve serves the API (Handler) and the admin API (AdminHandler, under
// /sim/) on ln until ctx ends.
func (s *Atol) Serve(ctx context.Context, ln net.Listener) error {
	return serveWithAdmin(ctx, ln, s.Handler(), s.AdminHandler())
}

// AdminHandler serves the admin API (see kkt.admin); methods are "post"
// and "get".
func (s *Atol) AdminHandler() http.Handler { return s.admin(methodSet(s.routes), s.State) }

// InjectFault arms f; f.Method is AtolPost or AtolGet.
func (s *Atol) InjectFault(f Fault) error { return s.injectFault(f, methodSet(s.routes)) }

func wireError(w http.ResponseWriter, status, code int, text string) {
	writeJSON(w, status, atol.PostAnswer{Error: &atol.WireError{Code: code, Description: text}})
}

func (s *Atol) post(w http.ResponseWriter, r *http.Request) string {
	var body atol.RequestBody
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(b, &body)
	}
	if err != nil || body.UUID == "" || len(body.Request) == 0 {
		wireError(w, http.StatusBadRequest, atol.CodeReceiptParseError, "Ошибка парсинга запроса: нужны uuid и request")
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, isNew := s.taskLocked(body.UUID, body.Request[0].Type)
	if !isNew {
		// [I] the web server refuses a second task with the same uuid.
		wireError(w, http.StatusConflict, 409, "Задание с таким uuid уже существует")
		return body.UUID
	}
	req := &atolRequest{tasks: body.Request, results: make([]atol.TaskResult, len(body.Request))}
	for i := range req.results {
		req.results[i].Status = atol.StatusWait
	}
	if receiptTask(body.Request[0].Type) {
		if f := s.takeFaultLocked(AtolPost, func(k FaultKind) bool { return k == FaultPending || k == FaultKKTError }); f != nil {
			if f.Kind == FaultPending {
				req.polls = f.Polls
			} else {
				req.kerr = &kktError{f.Code, f.Text}
			}
		}
	}
	s.requests[body.UUID] = req
	if req.polls == 0 {
		s.runLocked(t, req)
	} else {
		req.results[0].Status = atol.StatusInProgress
		t.Status = atol.StatusInProgress
	}
	writeJSON(w, http.StatusCreated, atol.PostAnswer{UUID: body.UUID, Number: len(s.requests)})
	return body.UUID
}

func receiptTask(typ string) bool { return typ == atol.TaskSell || typ == atol.TaskSellReturn }

func (s *Atol) get(w http.ResponseWriter, r *http.Request) string {
	uuid := r.PathValue("uuid")
	s.mu.Lock()
	defer s.mu.Unlock()
	req, t := s.requests[uuid], s.byID[uuid]
	if req == nil {
		wireError(w, http.StatusNotFound, 404, "Задание не найдено")
		return ""
	}
	t.Polls++
	if req.polls > 0 {
		req.polls--
		if req.polls == 0 {
			s.runLocked(t, req)
		}
	}
	out := atol.ResultsBody{Results: append([]atol.TaskResult(nil), req.results...)}
	if out.Results[0].Status == atol.StatusReady && receiptTask(req.tasks[0].Type) {
		if f := s.takeFaultLocked(AtolGet, func(k FaultKind) bool { return k == FaultNoSign }); f != nil {
			out.Results[0].Result = stripSign(out.Results[0].Result)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return uuid
}

// stripSign removes fiscalDocumentSign from a fiscal result.
func stripSign(raw json.RawMessage) json.RawMessage {
	var fr atol.FiscalResult
	if json.Unmarshal(raw, &fr) != nil || fr.FiscalParams == nil {
		return raw
	}
	fr.FiscalParams.FiscalDocumentSign = ""
	b, _ := json.Marshal(fr)
	return b
}

// runLocked executes the request's tasks in order; after a failed task the
// rest are interrupted [V: LIBFPTR_ERROR_INTERRUPTED_BY_PREVIOUS_ERRORS].
func (s *Atol) runLocked(t *Task, req *atolRequest) {
	failed := false
	for i, task := range req.tasks {
		res := &req.results[i]
		if failed {
			res.Status, res.ErrorCode, res.ErrorDescription = atol.StatusInterrupted, 502, "Выполнение прервано из-за предыдущих ошибок"
			continue
		}
		out, kerr := s.execLocked(t.ID, task, req.kerr)
		if kerr != nil {
			res.Status, res.ErrorCode, res.ErrorDescription = atol.StatusError, kerr.Code, kerr.Text
			res.Error = &atol.WireError{Code: kerr.Code, Description: kerr.Text}
			failed = true
			continue
		}
		res.Status, res.Result = atol.StatusReady, out
	}
	t.Status = req.results[0].Status
	t.Code, t.Text = req.results[0].TaskError()
}

func (s *Atol) execLocked(id string, task atol.Task, kerr *kktError) (json.RawMessage, *kktError) {
	now := s.nowLocked()
	var p FiscalParams
	switch task.Type {
	case atol.TaskSell, atol.TaskSellReturn:
		tk, perr := atolTicket(id, task)
		if perr != nil {
			return nil, perr
		}
		rc, e := s.registerLocked(tk, false, kerr)
		if e != nil {
			return nil, e
		}
		p = rc.Fiscal
	case atol.TaskOpenShift:
		var e *kktError
		if p, e = s.openShiftLocked(now); e != nil {
			return nil, e
		}
	case atol.TaskCloseShift:
		var e *kktError
		if p, e = s.closeShiftLocked(now); e != nil {
			return nil, e
		}
	case atol.TaskShiftStatus:
		st := atol.ShiftStatus{State: atol.ShiftClosed, Number: s.shift.Number}
		if s.shift.Open {
			st.State = atol.ShiftOpened
			if s.expiredLocked(now) {
				st.State = atol.ShiftExpired
			}
			st.ExpiredTime = s.expiresLocked().Format(time.RFC3339)
		}
		b, _ := json.Marshal(atol.ShiftStatusResult{ShiftStatus: &st})
		return b, nil
	default:
		return nil, &kktError{atol.CodeReceiptParseError, fmt.Sprintf("Некорректное значение поля \"type\" (%s)", task.Type)}
	}
	b, _ := json.Marshal(atol.FiscalResult{FiscalParams: atolParams(p)})
	return b, nil
}

// atolParams writes fiscal data as the driver does: the date in ISO 8601
// with the ККТ's offset, the sign as a string, the total in rubles.
func atolParams(p FiscalParams) *atol.FiscalParams {
	fp := &atol.FiscalParams{
		FiscalDocumentDateTime: p.DateTime.Format(time.RFC3339),
		FiscalDocumentNumber:   json.Number(fmt.Sprint(p.FDNumber)),
		FiscalDocumentSign:     atol.Digits(p.FiscalSign),
		FNNumber:               atol.Digits(p.FNNumber),
		RegistrationNumber:     atol.Digits(p.RegistrationNumber),
		ShiftNumber:            json.Number(fmt.Sprint(p.ShiftNumber)),
		FNSURL:                 p.FNSURL,
	}
	if p.FiscalSign != "" { // a receipt, not a shift report
		fp.FiscalReceiptNumber = json.Number(fmt.Sprint(p.ReceiptNumber))
		fp.Total = json.Number(fiscal.Rubles(p.Total))
	}
	return fp
}

// atolTicket checks a sell/sellReturn task as the driver's script would
// and converts it; a bad field is error 501 [V: «Некорректное значение
// поля …»], an underpaid receipt error 66 [V: «Чек оплачен не полностью»].
func atolTicket(id string, task atol.Task) (ticket, *kktError) {
	bad := func(field string, v any) (ticket, *kktError) {
		return ticket{}, &kktError{atol.CodeReceiptParseError, fmt.Sprintf("Некорректное значение поля \"%s\" (%v)", field, v)}
	}
	if !validTaxation[task.TaxationType] {
		return bad("taxationType", task.TaxationType)
	}
	tk := ticket{id: id, typ: task.Type, taxation: task.TaxationType, electronic: task.Electronically,
		machine: task.MachineNumber, place: task.PaymentsPlace, address: task.PaymentsAddress}
	if len(task.Items) == 0 {
		return bad("items", "[]")
	}
	for i, it := range task.Items {
		price, ok1 := kopecks(it.Price)
		amount, ok2 := kopecks(it.Amount)
		q, err := fiscal.ParseQuantity(string(it.Quantity))
		switch {
		case it.Type != "position":
			return bad(fmt.Sprintf("items[%d].type", i), it.Type)
		case it.Name == "":
			return bad(fmt.Sprintf("items[%d].name", i), "")
		case !ok1 || price <= 0:
			return bad(fmt.Sprintf("items[%d].price", i), it.Price)
		case !ok2 || amount <= 0:
			return bad(fmt.Sprintf("items[%d].amount", i), it.Amount)
		case err != nil || q <= 0:
			return bad(fmt.Sprintf("items[%d].quantity", i), it.Quantity)
		case !validVAT[it.Tax.Type]:
			return bad(fmt.Sprintf("items[%d].tax.type", i), it.Tax.Type)
		}
		tk.items = append(tk.items, Item{Name: it.Name, Price: price, Quantity: q.String(), Amount: amount,
			VAT: it.Tax.Type, PaymentObject: it.PaymentObject})
		tk.total += amount
	}
	var paid int64
	for i, p := range task.Payments {
		sum, ok := kopecks(p.Sum)
		if !ok || !validPayment[p.Type] {
			return bad(fmt.Sprintf("payments[%d]", i), p.Type)
		}
		paid += sum
	}
	if task.Total != "" {
		if total, ok := kopecks(task.Total); !ok || total != tk.total {
			return bad("total", task.Total)
		}
	}
	if paid < tk.total {
		return ticket{}, &kktError{66, "Чек оплачен не полностью"}
	}
	return tk, nil
}

// Values the driver accepts [V: TAXATION_TYPES, TAX_TYPES, PAYMENT_TYPES;
// vat5/7/22 from ATOL Online's newer list].
var (
	validTaxation = map[string]bool{"osn": true, "usnIncome": true, "usnIncomeOutcome": true, "envd": true, "esn": true, "patent": true}
	validVAT      = map[string]bool{"none": true, "vat0": true, "vat5": true, "vat7": true, "vat10": true, "vat20": true, "vat22": true,
		"vat105": true, "vat107": true, "vat110": true, "vat120": true, "vat122": true}
	validPayment = map[string]bool{"cash": true, "electronically": true, "prepaid": true, "credit": true, "other": true}
)
