package sim

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	sp "github.com/kioskd/kioskd/payment/smartpay"
)

// Method names, as used in State.Requests and Fault.Method: the client's
// names (smartpay.Method*), repeated here so tests read sim.MethodCommit.
const (
	MethodAuth, MethodCommit, MethodRelease, MethodStatus = sp.MethodAuth, sp.MethodCommit, sp.MethodRelease, sp.MethodStatus
	MethodKassaStatus, MethodFiscalV1, MethodFiscalV2     = sp.MethodKassaStatus, sp.MethodFiscalV1, sp.MethodFiscalV2
	MethodRefund, MethodRefundStatus                      = sp.MethodRefund, sp.MethodRefundStatus
	MethodRefundKassaStatus, MethodPing                   = sp.MethodRefundKassaStatus, sp.MethodPing
	MethodErrorAnswers                                    = sp.MethodErrorAnswers
)

// SessionCookie is the name of the session cookie.
const SessionCookie = "KDPAY_SESSION"

// messages are the service's texts, in Russian like the real service's; the
// kassa may show them to the customer. Every code the simulator can answer is
// here, and error_answers lists them all.
var messages = map[int]string{
	sp.CodeBadRequest:          "Некорректный запрос",
	sp.CodeSessionExpired:      "Требуется авторизация",
	sp.CodeNotFound:            "Покупка или возврат не найдены",
	sp.CodeBadState:            "Операция недоступна в текущем статусе",
	sp.CodeQRAlreadyCommitted:  "QR-код уже использован",
	sp.CodeOTPReused:           "Одноразовый пароль уже использован",
	sp.CodeStaleTimestamp:      "QR-код устарел, обновите его в приложении",
	sp.CodeBadSignature:        "Подпись QR-кода неверна",
	sp.CodeBadQR:               "QR-код не распознан",
	sp.CodeBadAmount:           "Некорректная сумма",
	sp.CodeRefundExceedsAmount: "Сумма возвратов превышает сумму покупки",
	sp.CodeRefundNotAllowed:    "Возврат возможен только по успешной покупке",
	sp.CodeIdempotencyConflict: "Идентификатор кассы уже использован с другими параметрами",
	sp.CodePaymentDeclined:     "Недостаточно средств",
	sp.CodeInternal:            "Внутренняя ошибка сервиса",
	sp.CodeUnavailable:         "Сервис временно недоступен",
	sp.CodeCommitExpired:       "Время ожидания оплаты истекло",
}

var httpStatus = map[int]int{
	sp.CodeBadRequest:          http.StatusBadRequest,
	sp.CodeSessionExpired:      http.StatusUnauthorized,
	sp.CodeNotFound:            http.StatusNotFound,
	sp.CodeBadState:            http.StatusConflict,
	sp.CodeQRAlreadyCommitted:  http.StatusConflict,
	sp.CodeOTPReused:           http.StatusUnprocessableEntity,
	sp.CodeStaleTimestamp:      http.StatusUnprocessableEntity,
	sp.CodeBadSignature:        http.StatusUnprocessableEntity,
	sp.CodeBadQR:               http.StatusUnprocessableEntity,
	sp.CodeBadAmount:           http.StatusUnprocessableEntity,
	sp.CodeRefundExceedsAmount: http.StatusUnprocessableEntity,
	sp.CodeRefundNotAllowed:    http.StatusConflict,
	sp.CodeIdempotencyConflict: http.StatusConflict,
	sp.CodePaymentDeclined:     http.StatusConflict,
	sp.CodeInternal:            http.StatusInternalServerError,
	sp.CodeUnavailable:         http.StatusServiceUnavailable,
	sp.CodeCommitExpired:       http.StatusConflict,
}

// apiErr is an error answer: a code from messages, optionally a more precise
// text.
type apiErr struct {
	code int
	msg  string
}

func (e *apiErr) Error() string { return fmt.Sprintf("code %d: %s", e.code, e.msg) }

func fail(code int, detail ...string) *apiErr {
	msg := messages[code]
	if len(detail) > 0 {
		msg += ": " + strings.Join(detail, " ")
	}
	return &apiErr{code: code, msg: msg}
}

// handler serves one kassa API method for an authenticated kassa.
type handler func(s *Server, kassa string, body []byte) (any, *apiErr)

type route struct {
	method string // HTTP method
	authed bool   // needs a session
	h      handler
}

// post makes a handler of a method with a JSON body of type In, decoded
// strictly before h sees it.
func post[In any](h func(s *Server, kassa string, in *In) (any, *apiErr)) handler {
	return func(s *Server, kassa string, body []byte) (any, *apiErr) {
		var in In
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		return h(s, kassa, &in)
	}
}

var routes = map[string]route{
	sp.PathAuth:              {http.MethodPost, false, nil},
	sp.PathCommit:            {http.MethodPost, true, post((*Server).commit)},
	sp.PathRelease:           {http.MethodPost, true, post((*Server).release)},
	sp.PathStatus:            {http.MethodPost, true, post((*Server).status)},
	sp.PathKassaStatus:       {http.MethodPost, true, post((*Server).kassaStatus)},
	sp.PathFiscalV1:          {http.MethodPost, true, post((*Server).fiscalV1)},
	sp.PathFiscalV2:          {http.MethodPost, true, post((*Server).fiscalV2)},
	sp.PathRefund:            {http.MethodPost, true, post((*Server).refund)},
	sp.PathRefundStatus:      {http.MethodPost, true, post((*Server).refundStatus)},
	sp.PathRefundKassaStatus: {http.MethodPost, true, post((*Server).refundKassaStatus)},
	sp.PathPing:              {http.MethodGet, false, (*Server).ping},
	sp.PathErrorAnswers:      {http.MethodGet, true, (*Server).errorAnswers},
}

// Handler returns the kassa API handler. It expects requests over mTLS (the
// kassa id is the client certificate's CN); Serve provides that.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	rt, ok := routes[r.URL.Path]
	if !ok {
		writeErr(w, fail(sp.CodeNotFound, "no method", r.URL.Path))
		return
	}
	if r.Method != rt.method {
		w.Header().Set("Allow", rt.method)
		writeJSON(w, http.StatusMethodNotAllowed, sp.ErrorAnswer{Code: sp.CodeBadRequest, Message: messages[sp.CodeBadRequest] + ": method " + r.Method})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		writeErr(w, fail(sp.CodeBadRequest, "reading body"))
		return
	}
	name := sp.MethodOf(r.URL.Path)
	s.mu.Lock()
	s.requests[name]++
	f := s.takeFaultLocked(name)
	s.mu.Unlock()
	if f != nil {
		s.log.Info("injecting fault", zap.String("method", name), zap.String("kind", string(f.Kind)))
		if done := s.applyFault(w, r, f); done {
			return
		}
	}
	kassa := kassaOf(r)
	if kassa == "" {
		writeErr(w, fail(sp.CodeSessionExpired, "no client certificate"))
		return
	}
	if name == MethodAuth {
		s.auth(w, kassa)
		return
	}
	if rt.authed && !s.sessionValid(r, kassa) {
		writeErr(w, fail(sp.CodeSessionExpired))
		return
	}
	out, aerr := rt.h(s, kassa, body)
	if aerr != nil {
		s.log.Debug("refused", zap.String("method", name), zap.String("kassa", kassa), zap.Int("code", aerr.code))
		writeErr(w, aerr)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// applyFault performs an injected fault; it reports whether the answer has
// been given (or the connection dropped).
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, f *Fault) bool {
	switch f.Kind {
	case FaultDelay:
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-serveContext(r).Done():
			return true
		}
		return false // then handle the call normally: it takes effect even if the caller gave up
	case FaultStatus:
		code := f.Code
		if code == 0 {
			code = sp.CodeInternal
			if f.Status == http.StatusServiceUnavailable {
				code = sp.CodeUnavailable
			}
		}
		msg, ok := messages[code]
		if !ok {
			msg = "injected fault"
		}
		writeJSON(w, f.Status, sp.ErrorAnswer{Code: code, Message: msg})
		return true
	case FaultDrop:
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic(http.ErrAbortHandler) // aborts the connection on any protocol
		}
		conn, _, err := hj.Hijack()
		if err == nil {
			conn.Close()
		}
		return true
	case FaultExpireSession:
		if c, err := r.Cookie(SessionCookie); err == nil {
			s.mu.Lock()
			delete(s.sessions, c.Value)
			s.mu.Unlock()
		}
		return false
	}
	return false
}

func kassaOf(r *http.Request) string {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return ""
	}
	return r.TLS.PeerCertificates[0].Subject.CommonName
}

func (s *Server) auth(w http.ResponseWriter, kassa string) {
	token := newID("")
	token += newID("")
	now := time.Now()
	s.mu.Lock()
	for t, ss := range s.sessions { // keep the map bounded across many logins
		if now.After(ss.expires) {
			delete(s.sessions, t)
		}
	}
	s.sessions[token] = session{kassa: kassa, expires: now.Add(s.cfg.SessionTTL)}
	s.mu.Unlock()
	maxAge := int(s.cfg.SessionTTL / time.Second)
	if maxAge < 1 {
		maxAge = 1
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: token, Path: "/", MaxAge: maxAge,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	writeJSON(w, http.StatusOK, struct{}{})
}

func (s *Server) sessionValid(r *http.Request, kassa string) bool {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[c.Value]
	return ok && ss.kassa == kassa && time.Now().Before(ss.expires)
}

func writeErr(w http.ResponseWriter, e *apiErr) {
	writeJSON(w, httpStatus[e.code], sp.ErrorAnswer{Code: e.code, Message: e.msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"code":1014,"message":"encoding"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// decode reads a request body strictly: unknown fields are refused, as a
// contract test would.
func decode(body []byte, v any) *apiErr {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fail(sp.CodeBadRequest, err.Error())
	}
	return nil
}

func required(fields ...string) *apiErr {
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i+1] == "" {
			return fail(sp.CodeBadRequest, "missing "+fields[i])
		}
	}
	return nil
}

func (s *Server) ping(string, []byte) (any, *apiErr) { return sp.PingResponse{Status: "ok"}, nil }

func (s *Server) errorAnswers(string, []byte) (any, *apiErr) {
	out := []sp.ErrorAnswer{}
	for _, c := range slices.Sorted(maps.Keys(messages)) {
		out = append(out, sp.ErrorAnswer{Code: c, Message: messages[c]})
	}
	return out, nil
}

// openQR decrypts and verifies a QR and returns its OTP, time and user id.
func (s *Server) openQR(q sp.QR) (otp string, ts time.Time, user string, e *apiErr) {
	ct, err := base64.StdEncoding.DecodeString(q.Encrypted)
	if err != nil {
		return "", time.Time{}, "", fail(sp.CodeBadQR, "encrypted is not base64")
	}
	plain, err := rsa.DecryptOAEP(sha256.New(), nil, s.serviceKey, ct, nil)
	if err != nil {
		return "", time.Time{}, "", fail(sp.CodeBadQR, "cannot decrypt")
	}
	sig, err := base64.StdEncoding.DecodeString(q.Sign)
	if err != nil {
		return "", time.Time{}, "", fail(sp.CodeBadSignature, "sign is not base64")
	}
	sum := sha256.Sum256(plain)
	if !ecdsa.VerifyASN1(s.appPub, sum[:], sig) {
		return "", time.Time{}, "", fail(sp.CodeBadSignature)
	}
	parts := strings.SplitN(string(plain), ".", 3)
	if len(parts) != 3 || parts[0] == "" || parts[2] == "" {
		return "", time.Time{}, "", fail(sp.CodeBadQR, "content")
	}
	sec, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return "", time.Time{}, "", fail(sp.CodeBadQR, "timestamp")
	}
	return parts[0], time.Unix(sec, 0), parts[2], nil
}

func (s *Server) commit(kassa string, in *sp.CommitBody) (any, *apiErr) {
	if e := required("kassa_purchase_id", in.KassaPurchaseID, "id_loyalty", in.IDLoyalty,
		"encrypted", in.Encrypted, "sign", in.Sign); e != nil {
		return nil, e
	}
	key := kassaKey{kassa, in.KassaPurchaseID}
	s.mu.Lock()
	if id, ok := s.byKassaID[key]; ok {
		p := s.purchases[id]
		s.mu.Unlock()
		if p.encrypted != in.Encrypted {
			return nil, fail(sp.CodeIdempotencyConflict, "kassa_purchase_id "+in.KassaPurchaseID)
		}
		return sp.CommitResponse{PurchaseID: id}, nil // a repeat: same answer
	}
	_, copied := s.byQR[in.Encrypted]
	s.mu.Unlock()
	if copied {
		return nil, fail(sp.CodeQRAlreadyCommitted)
	}
	otp, ts, user, e := s.openQR(sp.QR{IDLoyalty: in.IDLoyalty, Encrypted: in.Encrypted, Sign: in.Sign})
	if e != nil {
		return nil, e
	}
	now := time.Now()
	if d := now.Sub(ts); d > s.cfg.StaleWindow || d < -s.cfg.StaleWindow {
		return nil, fail(sp.CodeStaleTimestamp)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Checked again under the lock: the same QR may have raced in meanwhile.
	if id, ok := s.byKassaID[key]; ok && s.purchases[id].encrypted == in.Encrypted {
		return sp.CommitResponse{PurchaseID: id}, nil
	}
	if _, ok := s.byQR[in.Encrypted]; ok {
		return nil, fail(sp.CodeQRAlreadyCommitted)
	}
	otpKey := user + "\x00" + otp
	if s.usedOTPs[otpKey] {
		return nil, fail(sp.CodeOTPReused)
	}
	s.usedOTPs[otpKey] = true
	p := &purchase{
		Purchase: Purchase{ID: newID("pur-"), Kassa: kassa, KassaPurchaseID: in.KassaPurchaseID,
			IDLoyalty: in.IDLoyalty, Status: sp.Committed, KassaConfirmations: []sp.KassaStatus{}},
		encrypted: in.Encrypted, committedAt: now,
	}
	s.purchases[p.ID] = p
	s.order = append(s.order, p.ID)
	s.byKassaID[key] = p.ID
	s.byQR[in.Encrypted] = p.ID
	return sp.CommitResponse{PurchaseID: p.ID}, nil
}

// onPurchase runs f, under the lock, on purchase id of this kassa, advanced
// to now; an unknown id (or another kassa's) is CodeNotFound.
func (s *Server) onPurchase(kassa, id string, f func(p *purchase) (any, *apiErr)) (any, *apiErr) {
	if e := required("purchase_id", id); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, e := s.purchaseLocked(kassa, id)
	if e != nil {
		return nil, e
	}
	return f(p)
}

func (s *Server) purchaseLocked(kassa, id string) (*purchase, *apiErr) {
	p, ok := s.purchases[id]
	if !ok || p.Kassa != kassa {
		return nil, fail(sp.CodeNotFound)
	}
	s.advanceLocked(p, time.Now())
	return p, nil
}

func (s *Server) release(kassa string, in *sp.ReleaseBody) (any, *apiErr) {
	if in.PurchaseID != "" && (in.Amount <= 0 || in.Amount > s.cfg.MaxAmount) {
		return nil, fail(sp.CodeBadAmount, fmt.Sprintf("%d not in 1..%d", in.Amount, s.cfg.MaxAmount))
	}
	return s.onPurchase(kassa, in.PurchaseID, func(p *purchase) (any, *apiErr) {
		switch {
		case p.Status == sp.Committed:
			p.Status, p.Amount, p.releasedAt = sp.Released, in.Amount, time.Now()
		case p.Amount == in.Amount && p.Status != sp.Expired:
			// A repeated release with the same amount reports where it is.
		default:
			return nil, fail(sp.CodeBadState, string(p.Status))
		}
		return sp.ReleaseResponse{PurchaseID: p.ID, Status: p.Status}, nil
	})
}

func (s *Server) status(kassa string, in *sp.PurchaseIDBody) (any, *apiErr) {
	return s.onPurchase(kassa, in.PurchaseID, func(p *purchase) (any, *apiErr) {
		return sp.StatusResponse{PurchaseID: p.ID, Status: p.Status, Amount: p.Amount, Code: p.Code, Message: p.Message}, nil
	})
}

// confirmable is what a kassa/status request changes: a purchase or a
// refund. Success confirms one that succeeded; cancel is the object's own.
// Every accepted request is recorded.
type confirmable struct {
	status        string // its state, for the refusal's text
	succeeded     bool
	confirmed     *bool
	confirmations *[]sp.KassaStatus
	cancel        func() *apiErr
}

func (c confirmable) apply(st sp.KassaStatus) (any, *apiErr) {
	var e *apiErr
	switch {
	case st == sp.KassaCancel:
		e = c.cancel()
	case st != sp.KassaSuccess:
		e = fail(sp.CodeBadRequest, "status must be success or cancel")
	case !c.succeeded:
		e = fail(sp.CodeBadState, c.status)
	default:
		*c.confirmed = true
	}
	if e != nil {
		return nil, e
	}
	*c.confirmations = append(*c.confirmations, st)
	return struct{}{}, nil
}

func (s *Server) kassaStatus(kassa string, in *sp.KassaStatusBody) (any, *apiErr) {
	if e := required("purchase_id", in.PurchaseID, "status", string(in.Status)); e != nil {
		return nil, e
	}
	return s.onPurchase(kassa, in.PurchaseID, func(p *purchase) (any, *apiErr) {
		return confirmable{string(p.Status), p.Status == sp.Success, &p.Confirmed, &p.KassaConfirmations, func() *apiErr {
			switch p.Status {
			case sp.Committed, sp.Released, sp.Processing:
				p.Status = sp.Cancelled
			case sp.Success:
				if p.Confirmed {
					return fail(sp.CodeBadState, "confirmed; use a refund")
				}
				// The kassa gave up after the money moved: the service reverses.
				p.Status, p.Reversed = sp.Cancelled, true
			}
			return nil
		}}.apply(in.Status)
	})
}
