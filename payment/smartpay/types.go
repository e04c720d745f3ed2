package smartpay

import "time"

// Wire paths of the kassa API (SPEC §2). Exported for the simulator; nothing
// else should need them.
const (
	PathAuth              = "/v1/auth"
	PathCommit            = "/v1/purchase/code/commit"
	PathRelease           = "/v1/purchase/release"
	PathStatus            = "/v1/purchase/status"
	PathKassaStatus       = "/v1/purchase/kassa/status"
	PathFiscalV1          = "/v1/purchase/fiscal"
	PathFiscalV2          = "/v2/purchase/fiscal"
	PathRefund            = "/v1/purchase/refund"
	PathRefundStatus      = "/v1/purchase/refund/status"
	PathRefundKassaStatus = "/v1/purchase/refund/kassa/status"
	PathPing              = "/v1/ping"
	PathErrorAnswers      = "/v1/error_answers"
)

// Method names: the short name of each call, as the Observer, the metrics,
// the logs and the simulator's request counts and faults name it.
const (
	MethodAuth              = "auth"
	MethodCommit            = "commit"
	MethodRelease           = "release"
	MethodStatus            = "status"
	MethodKassaStatus       = "kassa_status"
	MethodFiscalV1          = "fiscal_v1"
	MethodFiscalV2          = "fiscal_v2"
	MethodRefund            = "refund"
	MethodRefundStatus      = "refund_status"
	MethodRefundKassaStatus = "refund_kassa_status"
	MethodPing              = "ping"
	MethodErrorAnswers      = "error_answers"
)

// MethodOf returns the method name of a wire path ("" for an unknown path).
func MethodOf(path string) string { return methods[path] }

var methods = map[string]string{
	PathAuth: MethodAuth, PathCommit: MethodCommit, PathRelease: MethodRelease, PathStatus: MethodStatus,
	PathKassaStatus: MethodKassaStatus, PathFiscalV1: MethodFiscalV1, PathFiscalV2: MethodFiscalV2,
	PathRefund: MethodRefund, PathRefundStatus: MethodRefundStatus, PathRefundKassaStatus: MethodRefundKassaStatus,
	PathPing: MethodPing, PathErrorAnswers: MethodErrorAnswers,
}

// PurchaseStatus is the service's state of a purchase.
type PurchaseStatus string

// Purchase states as the service reports them.
const (
	Committed  PurchaseStatus = "committed"  // QR fixed, no amount yet
	Released   PurchaseStatus = "released"   // amount sent, payment started
	Processing PurchaseStatus = "processing" // payment under way
	Success    PurchaseStatus = "success"    // paid
	Failed     PurchaseStatus = "failed"     // declined; Code/Message say why
	Cancelled  PurchaseStatus = "cancelled"  // cancelled by the kassa (reversed if it had been paid)
	Expired    PurchaseStatus = "expired"    // committed but never released in time
)

// Final reports whether the status can no longer change on its own. Success is
// final for polling even though a kassa cancel can still reverse it.
func (s PurchaseStatus) Final() bool {
	switch s {
	case Success, Failed, Cancelled, Expired:
		return true
	}
	return false
}

// Valid reports whether s is one of the documented values.
func (s PurchaseStatus) Valid() bool {
	switch s {
	case Committed, Released, Processing, Success, Failed, Cancelled, Expired:
		return true
	}
	return false
}

// RefundState is the service's state of a refund.
type RefundState string

// Refund states as the service reports them.
const (
	RefundPending   RefundState = "pending"
	RefundSuccess   RefundState = "success"
	RefundFailed    RefundState = "failed"
	RefundCancelled RefundState = "cancelled"
)

// Final reports whether the refund state can no longer change on its own.
func (s RefundState) Final() bool { return s != RefundPending }

// Valid reports whether s is one of the documented values.
func (s RefundState) Valid() bool {
	switch s {
	case RefundPending, RefundSuccess, RefundFailed, RefundCancelled:
		return true
	}
	return false
}

// KassaStatus is what the kassa tells the service about a purchase or refund.
type KassaStatus string

// Kassa confirmations.
const (
	KassaSuccess KassaStatus = "success" // goods handed over / refund paid out
	KassaCancel  KassaStatus = "cancel"  // abandon; the service reverses by itself
)

// QR is the scanned payment code (SPEC §3). The kassa cannot decrypt or verify
// Encrypted and Sign; it forwards them verbatim and must never log them.
type QR struct {
	IDLoyalty string `json:"id_loyalty"`
	Encrypted string `json:"encrypted"`
	Sign      string `json:"sign"`
}

// CommitRequest fixes a QR with the service. KassaPurchaseID must be chosen
// (and persisted) before the first attempt: the same id returns the same answer.
type CommitRequest struct {
	KassaPurchaseID string
	QR              QR
}

// CommitResponse is the service's purchase id for a committed QR.
type CommitResponse struct {
	PurchaseID string `json:"purchase_id"`
}

// ReleaseResponse is the answer to a release.
type ReleaseResponse struct {
	PurchaseID string         `json:"purchase_id"`
	Status     PurchaseStatus `json:"status"`
}

// StatusResponse is a purchase's state. Code and Message explain a failure.
type StatusResponse struct {
	PurchaseID string         `json:"purchase_id"`
	Status     PurchaseStatus `json:"status"`
	Amount     int64          `json:"amount"`
	Code       int            `json:"code,omitempty"`
	Message    string         `json:"message,omitempty"`
}

// FiscalV1Request stores the short fiscal data of a paid purchase.
type FiscalV1Request struct {
	PurchaseID   string `json:"purchase_id"`
	KKTRegNumber string `json:"kkt_reg_number"`
	FiscalSign   string `json:"fiscal_sign"`
}

// FiscalV2Request stores a full receipt, also for a purchase paid by another
// method (the QR was scanned for loyalty only; PurchaseID is then empty).
type FiscalV2Request struct {
	QR         QR      `json:"qr"`
	PurchaseID string  `json:"purchase_id,omitempty"`
	Receipt    Receipt `json:"receipt"`
}

// Receipt is a fiscal receipt after the Russian fiscal data format.
type Receipt struct {
	KKTRegNumber string        `json:"kkt_reg_number"` // 16 digits
	FNNumber     string        `json:"fn_number"`      // 16 digits
	FDNumber     int64         `json:"fd_number"`
	FiscalSign   string        `json:"fiscal_sign"`
	DateTime     time.Time     `json:"datetime"`  // RFC 3339
	Operation    string        `json:"operation"` // OperationIncome or OperationIncomeReturn
	Total        int64         `json:"total"`     // kopecks
	Items        []ReceiptItem `json:"items"`
}

// Receipt operations.
const (
	OperationIncome       = "income"
	OperationIncomeReturn = "income_return"
)

// ReceiptItem is one line of a receipt. Money in kopecks.
type ReceiptItem struct {
	Name     string  `json:"name"`
	Price    int64   `json:"price"`
	Quantity float64 `json:"quantity"`
	Amount   int64   `json:"amount"`
	VAT      string  `json:"vat"`
}

// RefundRequest asks for a refund of (part of) a successful purchase.
// KassaRefundID must be fixed before the first attempt, like KassaPurchaseID.
type RefundRequest struct {
	PurchaseID    string `json:"purchase_id"`
	KassaRefundID string `json:"kassa_refund_id"`
	Amount        int64  `json:"amount"`
}

// RefundResponse is the service's refund id.
type RefundResponse struct {
	RefundID string `json:"refund_id"`
}

// RefundStatusResponse is a refund's state.
type RefundStatusResponse struct {
	RefundID string      `json:"refund_id"`
	Status   RefundState `json:"status"`
	Code     int         `json:"code,omitempty"`
	Message  string      `json:"message,omitempty"`
}

// ErrorAnswer is one entry of GET /v1/error_answers, and the body of every
// non-2xx answer.
type ErrorAnswer struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// Wire bodies that have no public counterpart. Exported for the simulator so
// the two sides share one definition of the JSON.
type (
	// CommitBody is the JSON of a commit request.
	CommitBody struct {
		KassaPurchaseID string `json:"kassa_purchase_id"`
		IDLoyalty       string `json:"id_loyalty"`
		Encrypted       string `json:"encrypted"`
		Sign            string `json:"sign"`
	}
	// ReleaseBody is the JSON of a release request.
	ReleaseBody struct {
		PurchaseID string `json:"purchase_id"`
		Amount     int64  `json:"amount"`
	}
	// PurchaseIDBody is the JSON of a purchase status request.
	PurchaseIDBody struct {
		PurchaseID string `json:"purchase_id"`
	}
	// KassaStatusBody is the JSON of a purchase kassa status request.
	KassaStatusBody struct {
		PurchaseID string      `json:"purchase_id"`
		Status     KassaStatus `json:"status"`
	}
	// RefundIDBody is the JSON of a refund status request.
	RefundIDBody struct {
		RefundID string `json:"refund_id"`
	}
	// RefundKassaStatusBody is the JSON of a refund kassa status request.
	RefundKassaStatusBody struct {
		RefundID string      `json:"refund_id"`
		Status   KassaStatus `json:"status"`
	}
	// PingResponse is the JSON of a ping answer.
	PingResponse struct {
		Status string `json:"status"`
	}
)
