package atol

import (
	"encoding/json"
	"fmt"
)

// DefaultURL is the web server's address on the machine it runs on [V:
// port 16732, /api/v2 in every public client].
const DefaultURL = "http://127.0.0.1:16732/api/v2"

// PathRequests is the task queue under the base URL: POST adds a task,
// GET PathRequests/{uuid} reads its results [V: decompiled ATOL clients,
// kktsite-agent's list of Web Requests endpoints].
const PathRequests = "/requests"

// Task types [V: the driver's RECEIPT_TYPES; openShift/closeShift/
// getShiftStatus in decompiled clients].
const (
	TaskSell        = "sell"
	TaskSellReturn  = "sellReturn"
	TaskOpenShift   = "openShift"
	TaskCloseShift  = "closeShift"
	TaskShiftStatus = "getShiftStatus"
)

// Task statuses in a GET answer [V: the web server description mirrored
// by shop-ctrl; wait/inProgress in decompiled clients].
const (
	StatusWait        = "wait"        // queued
	StatusInProgress  = "inProgress"  // running
	StatusReady       = "ready"       // done; result holds the answer
	StatusError       = "error"       // failed with an error code; the receipt was cancelled
	StatusInterrupted = "interrupted" // not run: an earlier task of the request failed
	StatusBlocked     = "blocked"     // result unknown, the queue stopped (ККТ lost mid-task)
	StatusCanceled    = "canceled"    // cancelled by a user before it ran
)

// Shift states in a getShiftStatus result [V: public Web Requests client].
const (
	ShiftOpened  = "opened"
	ShiftClosed  = "closed"
	ShiftExpired = "expired"
)

// Driver error codes (libfptr) that matter here [V: libfptr constants and
// texts in public bindings].
const (
	CodeNoPaper             = 44  // Нет бумаги
	CodeShiftExpired        = 68  // Смена превысила 24 часа
	CodeDeniedInClosedShift = 73  // Смена закрыта - операция невозможна
	CodeDeniedInOpenedShift = 83  // Смена открыта, операция невозможна
	CodeFNExchange          = 115 // Ошибка обмена с ФН на уровне интерфейса I2C
	CodeFNInvalidState      = 117 // Неверное состояние ФН
	CodeFNFault             = 118 // Неисправимая ошибка ФН
	CodeFNExpired           = 120 // Закончен срок эксплуатации ФН
	CodeFNOverflow          = 121 // Архив ФН переполнен
	CodeFNShiftExpired      = 141 // Продолжительность смены ФН более 24 часов
	CodeFNNotFound          = 166 // ФН не найден
	CodeReceiptParseError   = 501 // Ошибка парсинга чека / запроса
)

// FNCode reports whether a driver error code is a fault of the fiscal
// storage itself (the 104 and 113–142 range, 159, 162, 166) [I: from the
// libfptr names].
func FNCode(code int) bool {
	return code == 104 || (code >= 113 && code <= 142) || code == 159 || code == 162 || code == 166
}

// Wire bodies, exported so the simulator shares one definition of the JSON.
type (
	// RequestBody is the JSON of POST /requests [V].
	RequestBody struct {
		UUID    string `json:"uuid"`
		Request []Task `json:"request"`
	}
	// Task is one JSON task [V: field names from the driver's task
	// scripts: electronically, taxationType, paymentsPlace,
	// paymentsAddress, machineNumber, operator, clientInfo, items,
	// payments, total].
	Task struct {
		Type            string      `json:"type"`
		TaxationType    string      `json:"taxationType,omitempty"`
		Electronically  bool        `json:"electronically,omitempty"`
		Operator        *Operator   `json:"operator,omitempty"`
		ClientInfo      *ClientInfo `json:"clientInfo,omitempty"`
		PaymentsPlace   string      `json:"paymentsPlace,omitempty"`
		PaymentsAddress string      `json:"paymentsAddress,omitempty"`
		MachineNumber   string      `json:"machineNumber,omitempty"`
		Items           []Item      `json:"items,omitempty"`
		Payments        []Payment   `json:"payments,omitempty"`
		Total           json.Number `json:"total,omitempty"`
	}
	// Operator is the cashier (tags 1021, 1203); optional in automatic mode.
	Operator struct {
		Name  string `json:"name"`
		Vatin string `json:"vatin,omitempty"`
	}
	// ClientInfo carries the buyer's contact (tag 1008).
	ClientInfo struct {
		EmailOrPhone string `json:"emailOrPhone"`
	}
	// Item is a receipt line of type "position" [V]. Money as decimal
	// rubles written from kopecks.
	Item struct {
		Type          string      `json:"type"`
		Name          string      `json:"name"`
		Price         json.Number `json:"price"`
		Quantity      json.Number `json:"quantity"`
		Amount        json.Number `json:"amount"`
		PaymentMethod string      `json:"paymentMethod"`
		PaymentObject string      `json:"paymentObject"`
		Tax           Tax         `json:"tax"`
	}
	// Tax is an item's VAT rate [V: "tax": {"type": "vat20"}].
	Tax struct {
		Type string `json:"type"`
	}
	// Payment is one payment of the receipt [V: "electronically", sum].
	Payment struct {
		Type string      `json:"type"`
		Sum  json.Number `json:"sum"`
	}
	// WireError is the web server's error object [V: {"code",
	// "description"}].
	WireError struct {
		Code        int    `json:"code"`
		Description string `json:"description"`
	}
	// PostAnswer is the JSON of a POST /requests answer [V: uuid, number,
	// error].
	PostAnswer struct {
		UUID   string     `json:"uuid,omitempty"`
		Number int        `json:"number,omitempty"`
		Error  *WireError `json:"error,omitempty"`
	}
	// ResultsBody is the JSON of GET /requests/{uuid}: one result per task
	// of the request [V].
	ResultsBody struct {
		Results []TaskResult `json:"results"`
		Error   *WireError   `json:"error,omitempty"`
	}
	// TaskResult is one task's state. Older servers give errorCode and
	// errorDescription, Web Requests an error object [V: both shapes in
	// public sources]; the client reads either.
	TaskResult struct {
		Status           string          `json:"status"`
		ErrorCode        int             `json:"errorCode,omitempty"`
		ErrorDescription string          `json:"errorDescription,omitempty"`
		Error            *WireError      `json:"error,omitempty"`
		Result           json.RawMessage `json:"result,omitempty"`
	}
	// FiscalResult is the result of a fiscal task (sell, sellReturn,
	// openShift, closeShift) [V].
	FiscalResult struct {
		FiscalParams *FiscalParams   `json:"fiscalParams,omitempty"`
		Warnings     json.RawMessage `json:"warnings,omitempty"`
	}
	// FiscalParams are the document's fiscal data [V: the driver's
	// getFiscalParams: total, fiscalDocumentNumber, fiscalDocumentDateTime
	// (ISO 8601 with offset), fiscalDocumentSign (string), fnNumber,
	// registrationNumber, shiftNumber, fiscalReceiptNumber, fnsUrl].
	FiscalParams struct {
		FiscalDocumentDateTime string      `json:"fiscalDocumentDateTime,omitempty"`
		FiscalDocumentNumber   json.Number `json:"fiscalDocumentNumber,omitempty"`
		FiscalDocumentSign     Digits      `json:"fiscalDocumentSign,omitempty"`
		FiscalReceiptNumber    json.Number `json:"fiscalReceiptNumber,omitempty"`
		FNNumber               Digits      `json:"fnNumber,omitempty"`
		RegistrationNumber     Digits      `json:"registrationNumber,omitempty"`
		ShiftNumber            json.Number `json:"shiftNumber,omitempty"`
		Total                  json.Number `json:"total,omitempty"`
		FNSURL                 string      `json:"fnsUrl,omitempty"`
	}
	// ShiftStatusResult is the result of getShiftStatus [V: shiftStatus
	// {state, number, expiredTime}].
	ShiftStatusResult struct {
		ShiftStatus *ShiftStatus `json:"shiftStatus,omitempty"`
	}
	// ShiftStatus is the shift's state.
	ShiftStatus struct {
		State       string `json:"state"`
		Number      int    `json:"number"`
		ExpiredTime string `json:"expiredTime,omitempty"`
	}
)

// Digits is a string field that some servers send as a JSON number (the
// fiscal sign in older versions [I]); it reads either and writes a string.
type Digits string

// UnmarshalJSON accepts a JSON string or number.
func (d *Digits) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*d = Digits(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("atol: want a string or a number, got %s", b)
	}
	*d = Digits(n)
	return nil
}

// TaskError returns the error code and text of a task result, from
// whichever of the two shapes the server used.
func (r TaskResult) TaskError() (int, string) {
	if r.Error != nil && r.Error.Code != 0 {
		return r.Error.Code, r.Error.Description
	}
	return r.ErrorCode, r.ErrorDescription
}
