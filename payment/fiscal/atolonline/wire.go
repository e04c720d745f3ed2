package atolonline

import "encoding/json"

// DefaultURL is the v4 API's base [V: ili/atol-online, the Ruby gem]. The
// test cloud is https://testonline.atol.ru/possystem/v4 [I].
const DefaultURL = "https://online.atol.ru/possystem/v4"

// Paths under the base URL [V].
const (
	PathToken      = "/getToken"
	OpSell         = "sell"        // приход
	OpSellRefund   = "sell_refund" // возврат прихода
	PathReportPart = "/report/"    // /{group}/report/{uuid}
)

// TokenHeader carries the token on every call after getToken [V: ili/
// atol-online sends the "Token" header].
const TokenHeader = "Token"

// Report statuses [V: done, fail, wait in public clients].
const (
	StatusWait = "wait"
	StatusDone = "done"
	StatusFail = "fail"
)

// Service error codes [V: the atol Ruby gem's table for v4/v5].
const (
	CodeBadJSON            = 0  // the request is not valid JSON
	CodeMissingToken       = 10 // no token
	CodeExpiredToken       = 11 // the token expired or is unknown (HTTP 401)
	CodeWrongLogin         = 12 // wrong login or password
	CodeValidation         = 13 // getToken: validation failed
	CodeUserBlocked        = 14 // the user is blocked
	CodeGroupCodeToToken   = 20 // the group does not belong to the token's user
	CodeMissingUUID        = 30 // report without uuid
	CodeOperationNotSupp   = 31 // unknown operation
	CodeIncomingValidation = 32 // the receipt failed validation
	CodeExistExternalID    = 33 // a document with this external_id exists; its uuid is in the answer
	CodeStateNotFound      = 34 // report: no document with this uuid
)

// TimeLayout is how the cloud writes dates: timestamp, receipt_datetime
// [V: ili/atol-online "dd.MM.yyyy HH:mm:ss"].
const TimeLayout = "02.01.2006 15:04:05"

// PaymentElectronic is the payments[].type of a cashless payment [V: 1].
const PaymentElectronic = 1

// Wire bodies, exported so the simulator shares one definition of the JSON.
type (
	// TokenRequest is the body of getToken [V: login, pass].
	TokenRequest struct {
		Login string `json:"login"`
		Pass  string `json:"pass"`
	}
	// TokenAnswer is the answer of getToken.
	TokenAnswer struct {
		Token     string     `json:"token,omitempty"`
		Error     *WireError `json:"error"`
		Timestamp string     `json:"timestamp,omitempty"`
	}
	// WireError is the cloud's error object [V: error_id, code, text,
	// type; type is "system", "driver" (the ККТ) or "timeout" [I]].
	WireError struct {
		ErrorID string `json:"error_id,omitempty"`
		Code    int    `json:"code"`
		Text    string `json:"text"`
		Type    string `json:"type,omitempty"`
	}
	// ReceiptRequest is the body of sell / sell_refund [V].
	ReceiptRequest struct {
		ExternalID string   `json:"external_id"`
		Receipt    Receipt  `json:"receipt"`
		Timestamp  string   `json:"timestamp"`
		Service    *Service `json:"service,omitempty"`
	}
	// Service carries the callback URL; kioskd polls instead.
	Service struct {
		CallbackURL string `json:"callback_url,omitempty"`
	}
	// Receipt is the receipt of a ReceiptRequest [V: client, company,
	// items, payments, vats, total].
	Receipt struct {
		Client   Buyer       `json:"client"`
		Company  Company     `json:"company"`
		Items    []Item      `json:"items"`
		Payments []Payment   `json:"payments"`
		Vats     []Vat       `json:"vats,omitempty"`
		Total    json.Number `json:"total"`
	}
	// Buyer is the receipt's client: an e-mail or a phone is required [V].
	Buyer struct {
		Email string `json:"email,omitempty"`
		Phone string `json:"phone,omitempty"`
	}
	// Company is the seller [V: email (1117), sno (1055), inn (1018),
	// payment_address (1187)].
	Company struct {
		Email          string `json:"email"`
		SNO            string `json:"sno,omitempty"`
		INN            string `json:"inn"`
		PaymentAddress string `json:"payment_address"`
	}
	// Item is a receipt line [V: v4 names: sum, payment_method and a
	// string payment_object].
	Item struct {
		Name          string      `json:"name"`
		Price         json.Number `json:"price"`
		Quantity      json.Number `json:"quantity"`
		Sum           json.Number `json:"sum"`
		PaymentMethod string      `json:"payment_method"`
		PaymentObject string      `json:"payment_object"`
		Vat           Vat         `json:"vat"`
	}
	// Vat is a VAT rate with an optional sum [V].
	Vat struct {
		Type string      `json:"type"`
		Sum  json.Number `json:"sum,omitempty"`
	}
	// Payment is one payment [V: type 1 is cashless].
	Payment struct {
		Type int         `json:"type"`
		Sum  json.Number `json:"sum"`
	}
	// OperationAnswer is the answer to sell / sell_refund [V: uuid,
	// status, error, timestamp].
	OperationAnswer struct {
		UUID      string     `json:"uuid,omitempty"`
		Status    string     `json:"status,omitempty"`
		Error     *WireError `json:"error"`
		Timestamp string     `json:"timestamp,omitempty"`
	}
	// ReportAnswer is the answer of report [V].
	ReportAnswer struct {
		UUID        string     `json:"uuid"`
		Status      string     `json:"status"`
		Error       *WireError `json:"error"`
		Payload     *Payload   `json:"payload"`
		Timestamp   string     `json:"timestamp,omitempty"`
		GroupCode   string     `json:"group_code,omitempty"`
		DaemonCode  string     `json:"daemon_code,omitempty"`
		DeviceCode  string     `json:"device_code,omitempty"`
		ExternalID  string     `json:"external_id,omitempty"`
		CallbackURL string     `json:"callback_url,omitempty"`
	}
	// Payload is a done document's fiscal data [V: ili/atol-online
	// ReportPayload].
	Payload struct {
		FiscalReceiptNumber     json.Number `json:"fiscal_receipt_number,omitempty"`
		ShiftNumber             json.Number `json:"shift_number,omitempty"`
		ReceiptDatetime         string      `json:"receipt_datetime,omitempty"`
		Total                   json.Number `json:"total,omitempty"`
		FNNumber                string      `json:"fn_number,omitempty"`
		EcrRegistrationNumber   string      `json:"ecr_registration_number,omitempty"`
		FiscalDocumentNumber    json.Number `json:"fiscal_document_number,omitempty"`
		FiscalDocumentAttribute json.Number `json:"fiscal_document_attribute,omitempty"`
		FNSSite                 string      `json:"fns_site,omitempty"`
		OFDINN                  string      `json:"ofd_inn,omitempty"`
		OFDReceiptURL           string      `json:"ofd_receipt_url,omitempty"`
	}
)
