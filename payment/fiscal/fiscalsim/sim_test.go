package fiscalsim_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kioskd/kioskd/payment/fiscal/atol"
	"github.com/kioskd/kioskd/payment/fiscal/atolonline"
	"github.com/kioskd/kioskd/payment/fiscal/fiscalsim"
	"github.com/kioskd/kioskd/payment/fiscal/fiscalsim/simtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// call makes a raw HTTP call and decodes a JSON answer into out (nil: skip).
func call(t *testing.T, method, url string, header http.Header, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: HTTP %d %s: %v", method, url, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

// A sell task written the way the driver's documentation shows it.
const sellTask = `{"uuid": "%s", "request": [{"type": "sell", "taxationType": "osn", "electronically": true,
  "paymentsPlace": "Автомат", "machineNumber": "7",
  "items": [{"type": "position", "name": "Чай", "price": 50.5, "quantity": 2, "amount": 101.00,
             "paymentMethod": "fullPayment", "paymentObject": "commodity", "tax": {"type": "vat10"}}],
  "payments": [{"type": "electronically", "sum": 101}], "total": 101}]}`

func TestAtolWire(t *testing.T) {
	srv := simtest.NewAtol(t, fiscalsim.Config{}, nil)
	post := func(body string) int { return call(t, "POST", srv.URL+atol.PathRequests, nil, body, nil) }
	get := func(uuid string) (int, atol.ResultsBody) {
		var rb atol.ResultsBody
		code := call(t, "GET", srv.URL+atol.PathRequests+"/"+uuid, nil, "", &rb)
		return code, rb
	}
	if code := post(strings.Replace(sellTask, "%s", "u-1", 1)); code != http.StatusCreated {
		t.Fatalf("post: %d", code)
	}
	if code := post(strings.Replace(sellTask, "%s", "u-1", 1)); code != http.StatusConflict {
		t.Fatalf("second post of a uuid: %d", code)
	}
	code, rb := get("u-1")
	if code != 200 || len(rb.Results) != 1 || rb.Results[0].Status != atol.StatusReady {
		t.Fatalf("get: %d %+v", code, rb)
	}
	var fr atol.FiscalResult
	if err := json.Unmarshal(rb.Results[0].Result, &fr); err != nil || fr.FiscalParams == nil {
		t.Fatalf("result %s: %v", rb.Results[0].Result, err)
	}
	p := fr.FiscalParams
	if p.Total != "101.00" || p.FiscalDocumentSign == "" || p.FiscalDocumentNumber != "2" || p.ShiftNumber != "1" ||
		!strings.HasSuffix(p.FiscalDocumentDateTime, "+03:00") {
		t.Fatalf("fiscal params %+v", p)
	}
	// The sign is a JSON string, as the driver writes it.
	if !bytes.Contains(rb.Results[0].Result, []byte(`"fiscalDocumentSign":"`)) {
		t.Fatalf("sign not a string: %s", rb.Results[0].Result)
	}
	st := srv.Sim.State()
	if rc, ok := st.Receipt("u-1"); !ok || rc.Total != 10100 || rc.Items[0].Quantity != "2" || rc.Fiscal.FiscalSign != string(p.FiscalDocumentSign) {
		t.Fatalf("state %+v", st)
	}
	if task, _ := st.Task("u-1"); task.Posts != 2 || task.Polls != 1 {
		t.Fatalf("task %+v", task)
	}
	if code, _ := get("nope"); code != http.StatusNotFound {
		t.Fatalf("unknown uuid: %d", code)
	}
	if code := post(`{"uuid": `); code != http.StatusBadRequest {
		t.Fatalf("bad JSON: %d", code)
	}
	// A bad field refuses the task with 501; the next task of the request
	// is interrupted.
	bad := strings.Replace(strings.Replace(sellTask, "%s", "u-2", 1), "vat10", "vat18", 1)
	bad = strings.Replace(bad, `"total": 101}]}`, `"total": 101}, {"type": "closeShift"}]}`, 1)
	post(bad)
	_, rb = get("u-2")
	if code, text := rb.Results[0].TaskError(); rb.Results[0].Status != atol.StatusError || code != atol.CodeReceiptParseError ||
		!strings.Contains(text, "tax.type") || rb.Results[1].Status != atol.StatusInterrupted {
		t.Fatalf("bad tax: %+v", rb)
	}
	// Shift tasks.
	shiftTask := func(uuid, typ string) atol.TaskResult {
		post(`{"uuid": "` + uuid + `", "request": [{"type": "` + typ + `"}]}`)
		_, rb := get(uuid)
		return rb.Results[0]
	}
	if r := shiftTask("s-1", atol.TaskOpenShift); r.Status != atol.StatusError || r.ErrorCode != atol.CodeDeniedInOpenedShift {
		t.Fatalf("open an open shift: %+v", r)
	}
	srv.Sim.AdvanceClock(24 * time.Hour)
	r := shiftTask("s-2", atol.TaskShiftStatus)
	var ss atol.ShiftStatusResult
	if err := json.Unmarshal(r.Result, &ss); err != nil || ss.ShiftStatus.State != atol.ShiftExpired || ss.ShiftStatus.Number != 1 {
		t.Fatalf("expired shift status: %s %v", r.Result, err)
	}
	post(strings.Replace(sellTask, "%s", "u-3", 1))
	if _, rb := get("u-3"); rb.Results[0].ErrorCode != atol.CodeShiftExpired {
		t.Fatalf("sell in an expired shift: %+v", rb)
	}
	if r := shiftTask("s-3", atol.TaskCloseShift); r.Status != atol.StatusReady {
		t.Fatalf("close: %+v", r)
	}
	if r := shiftTask("s-4", atol.TaskCloseShift); r.ErrorCode != atol.CodeDeniedInClosedShift {
		t.Fatalf("close twice: %+v", r)
	}
}

func TestAdminAPI(t *testing.T) {
	srv := simtest.NewAtol(t, fiscalsim.Config{}, nil)
	admin := srv.AdminURL + "/sim/"
	for body, want := range map[string]int{
		`{"method": "post", "kind": "kkt_error", "code": 120, "text": "Закончен срок эксплуатации ФН"}`: 200,
		`{"method": "get", "kind": "delay", "delay": "10ms", "count": 2}`:                               200,
		`{"method": "get", "kind": "status", "status": 503}`:                                            200,
		`{"method": "nope", "kind": "status"}`:                                                          400,
		`{"method": "get", "kind": "explode"}`:                                                          400,
		`{"method": "get", "kind": "status", "status": 200}`:                                            400,
		`{"method": "get", "kind": "delay", "delay": "soon"}`:                                           400,
		`{"method": "get", "kind": "delay", "extra": 1}`:                                                400,
	} {
		if code := call(t, "POST", admin+"faults", nil, body, nil); code != want {
			t.Errorf("fault %s: %d, want %d", body, code, want)
		}
	}
	if code := call(t, "DELETE", admin+"faults", nil, "", nil); code != 200 {
		t.Fatalf("clear faults: %d", code)
	}
	if code := call(t, "POST", admin+"clock", nil, `{"advance": "-1h"}`, nil); code != 400 {
		t.Fatalf("clock backwards: %d", code)
	}
	before := srv.Sim.State().Now
	if code := call(t, "POST", admin+"clock", nil, `{"advance": "25h"}`, nil); code != 200 {
		t.Fatalf("clock: %d", code)
	}
	var st fiscalsim.State
	if code := call(t, "GET", admin+"state", nil, "", &st); code != 200 || st.Now.Sub(before) < 25*time.Hour ||
		st.Receipts == nil || st.Tasks == nil {
		t.Fatalf("state: %d %+v", code, st)
	}
	// The cleared faults are gone: a sell goes through.
	call(t, "POST", srv.URL+atol.PathRequests, nil, strings.Replace(sellTask, "%s", "a-1", 1), nil)
	if st := srv.Sim.State(); len(st.Receipts) != 1 || st.Requests[fiscalsim.AtolPost] != 1 {
		t.Fatalf("after clearing faults: %+v", st)
	}
}

func TestOnlineWire(t *testing.T) {
	srv := simtest.NewOnline(t, fiscalsim.OnlineConfig{Login: "l", Password: "p", Group: "g"}, nil)
	var ta atolonline.TokenAnswer
	if code := call(t, "POST", srv.URL+atolonline.PathToken, nil, `{"login": "l", "pass": "x"}`, &ta); code != 401 ||
		ta.Error == nil || ta.Error.Code != atolonline.CodeWrongLogin {
		t.Fatalf("wrong password: %d %+v", code, ta)
	}
	if code := call(t, "POST", srv.URL+atolonline.PathToken, nil, `{"login": "l", "pass": "p"}`, &ta); code != 200 || ta.Token == "" {
		t.Fatalf("token: %d %+v", code, ta)
	}
	auth := http.Header{atolonline.TokenHeader: {ta.Token}}
	body := `{"external_id": "e-1", "timestamp": "01.02.2025 10:00:00", "receipt": {
	  "client": {"email": "b@x"}, "company": {"email": "s@x", "sno": "osn", "inn": "7700000000", "payment_address": "Автомат"},
	  "items": [{"name": "Чай", "price": 50.5, "quantity": 2, "sum": 101, "payment_method": "full_payment",
	             "payment_object": "commodity", "vat": {"type": "vat10"}}],
	  "payments": [{"type": 1, "sum": 101}], "total": 101}}`
	var oa atolonline.OperationAnswer
	if code := call(t, "POST", srv.URL+"/g/sell", nil, body, &oa); code != 400 || oa.Error.Code != atolonline.CodeMissingToken {
		t.Fatalf("no token: %d %+v", code, oa)
	}
	if code := call(t, "POST", srv.URL+"/other/sell", auth, body, &oa); code != 400 || oa.Error.Code != atolonline.CodeGroupCodeToToken {
		t.Fatalf("other group: %d %+v", code, oa)
	}
	if code := call(t, "POST", srv.URL+"/g/buy", auth, body, &oa); code != 400 || oa.Error.Code != atolonline.CodeOperationNotSupp {
		t.Fatalf("buy: %d %+v", code, oa)
	}
	oa = atolonline.OperationAnswer{}
	if code := call(t, "POST", srv.URL+"/g/sell", auth, body, &oa); code != 200 || oa.UUID == "" || oa.Error != nil || oa.Status != "wait" {
		t.Fatalf("sell: %d %+v", code, oa)
	}
	first := oa.UUID
	if code := call(t, "POST", srv.URL+"/g/sell", auth, body, &oa); code != 400 || oa.Error.Code != atolonline.CodeExistExternalID || oa.UUID != first {
		t.Fatalf("second sell of an external_id: %d %+v", code, oa)
	}
	var rep atolonline.ReportAnswer
	if code := call(t, "GET", srv.URL+"/g/report/"+first, auth, "", &rep); code != 200 || rep.Status != "done" ||
		rep.Payload == nil || rep.Payload.Total != "101.00" || rep.Payload.FiscalDocumentAttribute == "" || rep.ExternalID != "e-1" {
		t.Fatalf("report: %d %+v", code, rep)
	}
	if code := call(t, "GET", srv.URL+"/g/report/nope", auth, "", &rep); code != 400 || rep.Error.Code != atolonline.CodeStateNotFound {
		t.Fatalf("unknown uuid: %d %+v", code, rep)
	}
	if code := call(t, "POST", srv.URL+"/g/sell", auth, strings.Replace(body, `"sum": 101}], "total": 101`, `"sum": 100}], "total": 101`, 1), &oa); code != 400 ||
		oa.Error.Code != atolonline.CodeIncomingValidation {
		t.Fatalf("underpaid: %d %+v", code, oa)
	}
	if code := call(t, "POST", srv.AdminURL+"/sim/tokens/expire", nil, "", nil); code != 200 {
		t.Fatalf("expire tokens: %d", code)
	}
	if code := call(t, "GET", srv.URL+"/g/report/"+first, auth, "", &rep); code != 401 || rep.Error.Code != atolonline.CodeExpiredToken {
		t.Fatalf("expired token: %d %+v", code, rep)
	}
	if st := srv.Sim.State(); len(st.Receipts) != 1 || st.Receipts[0].DocUUID != first || st.Tokens != 1 {
		t.Fatalf("state %+v", st)
	}
}
