package fiscalsim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/fiscal"
	"github.com/kioskd/kioskd/payment/fiscal/atolonline"
)

// Method names of the cloud simulator, for faults and counters.
const (
	OnlineToken     = "token"     // POST /getToken
	OnlineOperation = "operation" // POST /{group}/sell, /{group}/sell_refund
	OnlineReport    = "report"    // GET /{group}/report/{uuid}
)

// OnlineBase is the path the simulated cloud serves under.
const OnlineBase = "/possystem/v4"

// OnlineConfig configures the cloud simulator. Zero values get the
// defaults in brackets.
type OnlineConfig struct {
	Config
	Login    string        // [kioskd]
	Password string        // [kioskd-secret]
	Group    string        // group_code [kioskd-group]
	TokenTTL time.Duration // token lifetime on the simulator's clock [24h]
}

// Online simulates the ATOL Online v4 cloud. It renews its shift itself
// when a receipt finds it older than the limit [I: a cloud kassa keeps its
// own shifts]. Its methods are safe for concurrent use.
type Online struct {
	*kkt
	cfg    OnlineConfig
	tokens map[string]time.Time  // token → expiry; guarded by kkt.mu
	docs   map[string]*onlineDoc // by uuid
	byExt  map[string]string     // external_id → uuid
	routes []route
}

type onlineDoc struct {
	uuid, externalID, op string
	ticket               ticket
	status               string
	err                  *atolonline.WireError
	rc                   Receipt
	polls                int // report queries left before it runs; -1 never
	kerr                 *kktError
}

// NewOnline returns a simulated cloud in front of a fresh virtual ККТ.
func NewOnline(cfg OnlineConfig, log *zap.Logger) *Online {
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.Login == "" {
		cfg.Login = "kioskd"
	}
	if cfg.Password == "" {
		cfg.Password = "kioskd-secret"
	}
	if cfg.Group == "" {
		cfg.Group = "kioskd-group"
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 24 * time.Hour
	}
	s := &Online{kkt: newKKT(cfg.Config, log.Named("atol-online-sim")), cfg: cfg,
		tokens: map[string]time.Time{}, docs: map[string]*onlineDoc{}, byExt: map[string]string{}}
	s.routes = []route{
		{"POST " + OnlineBase + atolonline.PathToken, OnlineToken, s.token},
		{"POST " + OnlineBase + "/{group}/{op}", OnlineOperation, s.operation},
		{"GET " + OnlineBase + "/{group}/report/{uuid}", OnlineReport, s.report},
	}
	return s
}

// Group returns the group code the simulator serves.
func (s *Online) Group() string { return s.cfg.Group }

// Handler serves the cloud's API under OnlineBase.
func (s *Online) Handler() http.Handler { return s.serve(s.routes) }

// Serve serves the API (Handler) and the admin API (AdminHandler, under
// /sim/) on ln until ctx ends.
func (s *Online) Serve(ctx context.Context, ln net.Listener) error {
	return serveWithAdmin(ctx, ln, s.Handler(), s.AdminHandler())
}

// AdminHandler serves the admin API (see kkt.admin) and
//
//	POST /sim/tokens/expire   every issued token expires now (the next call gets 401, code 11)
func (s *Online) AdminHandler() http.Handler {
	mux := s.admin(methodSet(s.routes), s.State)
	mux.HandleFunc("POST /sim/tokens/expire", func(w http.ResponseWriter, r *http.Request) {
		s.ExpireTokens()
		writeJSON(w, http.StatusOK, struct{}{})
	})
	return mux
}

// InjectFault arms f; f.Method is OnlineToken, OnlineOperation or
// OnlineReport.
func (s *Online) InjectFault(f Fault) error { return s.injectFault(f, methodSet(s.routes)) }

// ExpireTokens makes every issued token expire now.
func (s *Online) ExpireTokens() {
	s.mu.Lock()
	for t := range s.tokens {
		s.tokens[t] = time.Time{}
	}
	s.mu.Unlock()
}

func (s *Online) fail(w http.ResponseWriter, status, code int, text string) {
	writeJSON(w, status, atolonline.OperationAnswer{Error: &atolonline.WireError{ErrorID: newHex(16), Code: code, Text: text, Type: "system"},
		Timestamp: s.stamp()})
}

func (s *Online) stamp() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nowLocked().Format(atolonline.TimeLayout)
}

func newHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

func (s *Online) token(w http.ResponseWriter, r *http.Request) string {
	var in atolonline.TokenRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&in); err != nil {
		s.fail(w, http.StatusBadRequest, atolonline.CodeBadJSON, "Некорректный JSON")
		return ""
	}
	if in.Login != s.cfg.Login || in.Pass != s.cfg.Password {
		s.fail(w, http.StatusUnauthorized, atolonline.CodeWrongLogin, "Неверный логин или пароль")
		return ""
	}
	tok := newHex(24)
	s.mu.Lock()
	now := s.nowLocked()
	s.tokens[tok] = now.Add(s.cfg.TokenTTL)
	s.kkt.tokens++
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, atolonline.TokenAnswer{Token: tok, Timestamp: now.Format(atolonline.TimeLayout)})
	return ""
}

// authorize checks the token and the group; it writes the refusal.
func (s *Online) authorize(w http.ResponseWriter, r *http.Request) bool {
	tok := r.Header.Get(atolonline.TokenHeader)
	if tok == "" {
		s.fail(w, http.StatusBadRequest, atolonline.CodeMissingToken, "Не передан токен")
		return false
	}
	s.mu.Lock()
	exp, ok := s.tokens[tok]
	valid := ok && s.nowLocked().Before(exp)
	s.mu.Unlock()
	if !valid {
		s.fail(w, http.StatusUnauthorized, atolonline.CodeExpiredToken, "Срок действия токена истек или токен не существует")
		return false
	}
	if r.PathValue("group") != s.cfg.Group {
		s.fail(w, http.StatusBadRequest, atolonline.CodeGroupCodeToToken, "Группа не принадлежит пользователю токена")
		return false
	}
	return true
}

func (s *Online) operation(w http.ResponseWriter, r *http.Request) string {
	if !s.authorize(w, r) {
		return ""
	}
	op := r.PathValue("op")
	if op != atolonline.OpSell && op != atolonline.OpSellRefund {
		s.fail(w, http.StatusBadRequest, atolonline.CodeOperationNotSupp, "Операция не поддерживается: "+op)
		return ""
	}
	var in atolonline.ReceiptRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in); err != nil {
		s.fail(w, http.StatusBadRequest, atolonline.CodeBadJSON, "Некорректный JSON: "+err.Error())
		return ""
	}
	typ := "sell"
	if op == atolonline.OpSellRefund {
		typ = "sellReturn"
	}
	tk, verr := onlineTicket(typ, in)
	if verr != "" {
		s.fail(w, http.StatusBadRequest, atolonline.CodeIncomingValidation, verr)
		return ""
	}
	s.mu.Lock()
	t, isNew := s.taskLocked(in.ExternalID, typ)
	if !isNew {
		uuid := s.byExt[in.ExternalID]
		s.mu.Unlock()
		// [V] the first document's uuid comes with error 33 ([I] in the
		// uuid field, status "fail").
		writeJSON(w, http.StatusBadRequest, atolonline.OperationAnswer{UUID: uuid, Status: atolonline.StatusFail,
			Error: &atolonline.WireError{ErrorID: newHex(16), Code: atolonline.CodeExistExternalID, Type: "system",
				Text: "Документ с переданными значениями <external_id> и <group_code> уже существует в базе"},
			Timestamp: s.stamp()})
		return in.ExternalID
	}
	d := &onlineDoc{uuid: newUUID(), externalID: in.ExternalID, op: op, ticket: tk, status: atolonline.StatusWait}
	if f := s.takeFaultLocked(OnlineOperation, func(k FaultKind) bool { return k == FaultPending || k == FaultKKTError }); f != nil {
		if f.Kind == FaultPending {
			d.polls = f.Polls
		} else {
			d.kerr = &kktError{f.Code, f.Text}
		}
	}
	s.docs[d.uuid], s.byExt[in.ExternalID] = d, d.uuid
	if d.polls == 0 {
		s.runLocked(t, d)
	} else {
		t.Status = atolonline.StatusWait
	}
	now := s.nowLocked()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, atolonline.OperationAnswer{UUID: d.uuid, Status: atolonline.StatusWait,
		Timestamp: now.Format(atolonline.TimeLayout)})
	return in.ExternalID
}

func newUUID() string {
	b := newHex(16)
	return b[0:8] + "-" + b[8:12] + "-" + b[12:16] + "-" + b[16:20] + "-" + b[20:32]
}

func (s *Online) runLocked(t *Task, d *onlineDoc) {
	rc, kerr := s.registerLocked(d.ticket, true, d.kerr)
	if kerr != nil {
		d.status = atolonline.StatusFail
		d.err = &atolonline.WireError{ErrorID: newHex(16), Code: kerr.Code, Text: kerr.Text, Type: "driver"}
		t.Status, t.Code, t.Text = d.status, kerr.Code, kerr.Text
		return
	}
	rc.DocUUID = d.uuid
	s.receipts[len(s.receipts)-1].DocUUID = d.uuid
	d.rc, d.status, t.Status = rc, atolonline.StatusDone, atolonline.StatusDone
}

func (s *Online) report(w http.ResponseWriter, r *http.Request) string {
	if !s.authorize(w, r) {
		return ""
	}
	uuid := r.PathValue("uuid")
	s.mu.Lock()
	d := s.docs[uuid]
	if d == nil {
		s.mu.Unlock()
		s.fail(w, http.StatusBadRequest, atolonline.CodeStateNotFound, "Не найден документ с uuid "+uuid)
		return ""
	}
	t := s.byID[d.externalID]
	t.Polls++
	if d.polls > 0 {
		d.polls--
		if d.polls == 0 {
			s.runLocked(t, d)
		}
	}
	now := s.nowLocked()
	out := atolonline.ReportAnswer{UUID: d.uuid, Status: d.status, Error: d.err, Timestamp: now.Format(atolonline.TimeLayout),
		GroupCode: s.cfg.Group, DaemonCode: "sim-daemon", DeviceCode: "sim-kkt", ExternalID: d.externalID}
	if d.status == atolonline.StatusDone {
		out.Payload = onlinePayload(d.rc)
		if f := s.takeFaultLocked(OnlineReport, func(k FaultKind) bool { return k == FaultNoSign }); f != nil {
			out.Payload.FiscalDocumentAttribute = ""
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
	return d.externalID
}

func onlinePayload(rc Receipt) *atolonline.Payload {
	p := rc.Fiscal
	return &atolonline.Payload{
		FiscalReceiptNumber:     json.Number(fmt.Sprint(p.ReceiptNumber)),
		ShiftNumber:             json.Number(fmt.Sprint(p.ShiftNumber)),
		ReceiptDatetime:         p.DateTime.Format(atolonline.TimeLayout),
		Total:                   json.Number(fiscal.Rubles(p.Total)),
		FNNumber:                p.FNNumber,
		EcrRegistrationNumber:   p.RegistrationNumber,
		FiscalDocumentNumber:    json.Number(fmt.Sprint(p.FDNumber)),
		FiscalDocumentAttribute: json.Number(p.FiscalSign),
		FNSSite:                 p.FNSURL,
		OFDINN:                  "7704211201",
		OFDReceiptURL:           "https://ofd.example/receipt/" + rc.DocUUID,
	}
}

// onlineTicket checks a receipt as the cloud's validation would and
// converts it; the text says what is wrong (error 32).
func onlineTicket(typ string, in atolonline.ReceiptRequest) (ticket, string) {
	rc := in.Receipt
	switch {
	case in.ExternalID == "":
		return ticket{}, "external_id: обязательное поле"
	case in.Timestamp == "":
		return ticket{}, "timestamp: обязательное поле"
	case rc.Client.Email == "" && rc.Client.Phone == "":
		return ticket{}, "receipt.client: нужен email или phone"
	case rc.Company.INN == "" || rc.Company.PaymentAddress == "" || rc.Company.Email == "":
		return ticket{}, "receipt.company: нужны email, inn и payment_address"
	case !validSNO[rc.Company.SNO]:
		return ticket{}, fmt.Sprintf("receipt.company.sno: неизвестное значение %q", rc.Company.SNO)
	case len(rc.Items) == 0:
		return ticket{}, "receipt.items: пусто"
	}
	if _, err := time.Parse(atolonline.TimeLayout, in.Timestamp); err != nil {
		return ticket{}, "timestamp: формат dd.mm.yyyy HH:MM:SS"
	}
	tk := ticket{id: in.ExternalID, typ: typ, taxation: rc.Company.SNO, electronic: true, place: rc.Company.PaymentAddress}
	for i, it := range rc.Items {
		price, ok1 := kopecks(it.Price)
		sum, ok2 := kopecks(it.Sum)
		q, err := fiscal.ParseQuantity(string(it.Quantity))
		if it.Name == "" || !ok1 || !ok2 || err != nil || price <= 0 || sum <= 0 || q <= 0 || !validVAT[it.Vat.Type] ||
			it.PaymentMethod == "" || it.PaymentObject == "" {
			return ticket{}, fmt.Sprintf("receipt.items[%d]: некорректная позиция", i)
		}
		tk.items = append(tk.items, Item{Name: it.Name, Price: price, Quantity: q.String(), Amount: sum, VAT: it.Vat.Type,
			PaymentObject: it.PaymentObject})
		tk.total += sum
	}
	var paid int64
	for i, p := range rc.Payments {
		sum, ok := kopecks(p.Sum)
		if !ok || p.Type < 0 || p.Type > 9 {
			return ticket{}, fmt.Sprintf("receipt.payments[%d]: некорректная оплата", i)
		}
		paid += sum
	}
	total, ok := kopecks(rc.Total)
	if !ok || total != tk.total || paid != total {
		return ticket{}, "receipt.total: не равен сумме позиций и оплат"
	}
	return tk, ""
}

var validSNO = map[string]bool{"osn": true, "usn_income": true, "usn_income_outcome": true, "envd": true, "esn": true, "patent": true}
