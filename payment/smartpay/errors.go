package smartpay

import (
	"errors"
	"fmt"
	"net/http"
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

// Verdict is what a failed call means for the caller. It is decided here
// only, from the HTTP status, the service code and what the transport saw;
// callers act on it and never read HTTP statuses themselves.
type Verdict int

// Verdicts. Unknown is the zero value: what cannot be judged is treated as
// possibly done, never as a refusal.
const (
	// Unknown: the call may or may not have taken effect (sent without an
	// answer, a 5xx, an answer that cannot be read). Ask the status or
	// repeat with the same kassa id; never take it for a decline.
	Unknown Verdict = iota
	// Refused: the service's definitive "no"; the call did not take effect.
	// The *APIError in the chain carries the code and the message.
	Refused
	// Unavailable: the call certainly did not take effect (it was not sent,
	// or the service turned it away unhandled: 401 left after the re-login,
	// 408, 429). Safe to repeat.
	Unavailable
	// Certificate: a TLS certificate problem (ours refused by the service or
	// its certificate not verified by our CA). Nothing was handled and
	// repeating cannot help until the certificates change.
	Certificate
)

var verdictNames = [...]string{"unknown", "refused", "unavailable", "certificate"}

func (v Verdict) String() string {
	if v < 0 || int(v) >= len(verdictNames) {
		return fmt.Sprintf("verdict(%d)", int(v))
	}
	return verdictNames[v]
}

// VerdictOf returns the verdict on an error returned by the Client. An error
// that carries none (or nil) is Unknown: the safe assumption.
func VerdictOf(err error) Verdict {
	var v interface{ Verdict() Verdict }
	if errors.As(err, &v) {
		return v.Verdict()
	}
	return Unknown
}

// LostAnswer reports whether err is a call that was sent and got no answer
// (a timeout, a dropped connection): the service may have acted on it, and
// a repeat of a call with no idempotency key (fiscal) may store it twice.
// An answer that said "failed" (a 5xx, an APIError) is not a lost answer.
func LostAnswer(err error) bool {
	var ae *APIError
	return err != nil && VerdictOf(err) == Unknown && !errors.As(err, &ae)
}

// sentinel is a verdict as an error value, for errors.Is.
type sentinel struct {
	v   Verdict
	msg string
}

func (s *sentinel) Error() string { return s.msg }

// Verdict returns the sentinel's verdict, so that an error wrapping one
// with %w is judged like the client's own errors.
func (s *sentinel) Verdict() Verdict { return s.v }

// The verdicts as errors.Is targets; every error the Client returns matches
// exactly the one of its verdict (and a certificate error ErrUnavailable
// too: the request was not handled).
var (
	// ErrOutcomeUnknown matches errors whose verdict is Unknown.
	ErrOutcomeUnknown error = &sentinel{Unknown, "smartpay: outcome unknown"}
	// ErrRefused matches errors whose verdict is Refused.
	ErrRefused error = &sentinel{Refused, "smartpay: refused by the service"}
	// ErrUnavailable matches errors whose verdict is Unavailable or Certificate.
	ErrUnavailable error = &sentinel{Unavailable, "smartpay: service unavailable"}
	// ErrCertificate matches errors whose verdict is Certificate.
	ErrCertificate error = &sentinel{Certificate, "smartpay: certificate rejected"}
)

// matches reports whether an error of verdict v is target.
func matches(v Verdict, target error) bool {
	switch target {
	case ErrOutcomeUnknown:
		return v == Unknown
	case ErrRefused:
		return v == Refused
	case ErrUnavailable:
		return v == Unavailable || v == Certificate
	case ErrCertificate:
		return v == Certificate
	}
	return false
}

// APIError is an answer with a non-2xx status, with the service's code and
// message when the body had them.
type APIError struct {
	Method     string // wire path, e.g. "/v1/purchase/code/commit"
	HTTPStatus int
	Code       int    // one of the Code* constants; 0 when the answer had none (a proxy's)
	Message    string // the service's text, fit to show to the customer
}

func (e *APIError) Error() string {
	return fmt.Sprintf("smartpay: %s: HTTP %d, code %d: %s", e.Method, e.HTTPStatus, e.Code, e.Message)
}

// Verdict judges the answer. Only a 4xx carrying a service code is a
// refusal. A 5xx, CodeUnavailable or a code-less answer (a proxy's) says
// nothing about whether the service acted: Unknown. 401 (left after the
// client's one re-login), 408 and 429 turn the request away before it is
// handled: Unavailable.
func (e *APIError) Verdict() Verdict {
	switch {
	case e.HTTPStatus == http.StatusUnauthorized, e.HTTPStatus == http.StatusRequestTimeout,
		e.HTTPStatus == http.StatusTooManyRequests:
		return Unavailable
	case e.HTTPStatus < 400, e.HTTPStatus >= 500, e.Code == 0, e.Code == CodeUnavailable:
		return Unknown
	}
	return Refused
}

// Is matches the sentinel of the answer's verdict.
func (e *APIError) Is(target error) bool { return matches(e.Verdict(), target) }

// CodeOf returns the service code carried by err, or 0.
func CodeOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return 0
}

// callError is a call that got no usable answer: a transport failure, an
// answer that cannot be read, or a login without a session.
type callError struct {
	path    string
	verdict Verdict
	err     error
}

func (e *callError) Error() string {
	return fmt.Sprintf("smartpay: %s: %s: %v", e.path, verdictTexts[e.verdict], e.err)
}

// verdictTexts say what a callError's verdict means, in its message.
var verdictTexts = [...]string{Unknown: "outcome unknown", Refused: "refused",
	Unavailable: "service unavailable", Certificate: "certificate rejected"}

func (e *callError) Unwrap() error { return e.err }

// Verdict is the failure's verdict.
func (e *callError) Verdict() Verdict { return e.verdict }

// Is matches the sentinel of the failure's verdict.
func (e *callError) Is(target error) bool { return matches(e.verdict, target) }
