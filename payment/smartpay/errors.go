package smartpay

import (
	"errors"
	"fmt"
)

// Service error codes. The simulator returns exactly these and lists them in
// GET /v1/error_answers; the values are ours until the official description
// names the real ones (keep them here only).
const (
	CodeBadRequest          = 1000 // malformed body or missing field
	CodeSessionExpired      = 1001 // no, unknown or expired session cookie (HTTP 401)
	CodeNotFound            = 1002 // purchase or refund unknown to this kassa
	CodeBadState            = 1003 // operation not allowed in the current state
	CodeQRAlreadyCommitted  = 1004 // this QR is already committed (a copy, or another kassa)
	CodeOTPReused           = 1005 // the one-time password inside the QR was used before
	CodeStaleTimestamp      = 1006 // the QR's timestamp is outside the accepted window
	CodeBadSignature        = 1007 // the QR's signature does not verify
	CodeBadQR               = 1008 // the QR cannot be decrypted or its content is malformed
	CodeBadAmount           = 1009 // amount is not positive or above the limit
	CodeRefundExceedsAmount = 1010 // refunds would exceed the purchase amount
	CodeRefundNotAllowed    = 1011 // the purchase did not end in success
	CodeIdempotencyConflict = 1012 // the kassa id was used with different parameters
	CodePaymentDeclined     = 1013 // the bank declined the payment (status failed)
	CodeInternal            = 1014 // service failure (HTTP 5xx)
	CodeUnavailable         = 1015 // service temporarily unavailable (HTTP 503)
	CodeCommitExpired       = 1016 // committed but not released in time (status expired)
)

// ErrOutcomeUnknown marks a call that may or may not have taken effect: a
// timeout or lost connection after the request was sent, or a 5xx answer. The
// caller must find out (status) or repeat with the same kassa id, never assume
// a decline.
var ErrOutcomeUnknown = errors.New("smartpay: outcome unknown")

// ErrUnavailable marks a call that certainly did not reach the service: the
// connection or TLS handshake failed before the request was sent.
var ErrUnavailable = errors.New("smartpay: service unavailable")

// ErrCertificate marks a TLS failure caused by a certificate: ours rejected by
// the service or the service's not verified by our CA. Retrying cannot help;
// it always comes with ErrUnavailable.
var ErrCertificate = errors.New("smartpay: certificate rejected")

// APIError is an answer with a service code (any non-2xx status).
type APIError struct {
	Method     string // wire path, e.g. "/v1/purchase/code/commit"
	HTTPStatus int
	Code       int    // one of the Code* constants
	Message    string // the service's text, fit to show to the customer
}

func (e *APIError) Error() string {
	return fmt.Sprintf("smartpay: %s: HTTP %d, code %d: %s", e.Method, e.HTTPStatus, e.Code, e.Message)
}

// Is makes a 5xx answer match ErrOutcomeUnknown: the service may have done
// the work before failing.
func (e *APIError) Is(target error) bool {
	return target == ErrOutcomeUnknown && e.HTTPStatus >= 500
}

// CodeOf returns the service code carried by err, or 0.
func CodeOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return 0
}

// transportError is a call that got no answer. Kind is ErrOutcomeUnknown or
// ErrUnavailable; cert marks certificate failures.
type transportError struct {
	method string
	kind   error
	cert   bool
	err    error
}

func (e *transportError) Error() string {
	return fmt.Sprintf("%v: %s: %v", e.kind, e.method, e.err)
}

func (e *transportError) Unwrap() error { return e.err }

func (e *transportError) Is(target error) bool {
	return target == e.kind || (e.cert && target == ErrCertificate)
}
