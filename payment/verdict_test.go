package payment

import (
	"errors"
	"fmt"
	"testing"

	sp "github.com/kioskd/kioskd/payment/smartpay"
)

// Only the service's coded 4xx refusals are final: anything that does not
// say whether the call took effect must be retried or checked, never shown
// (or journaled) as a refusal.
func TestOnlyCodedRefusalsAreFinal(t *testing.T) {
	api := func(status, code int) error {
		return fmt.Errorf("wrapped: %w", &sp.APIError{Method: sp.PathKassaStatus, HTTPStatus: status, Code: code, Message: "m"})
	}
	cases := []struct {
		name    string
		err     error
		refusal bool
	}{
		{"QR already committed", api(409, sp.CodeQRAlreadyCommitted), true},
		{"refund exceeds amount", api(409, sp.CodeRefundExceedsAmount), true},
		{"bad state", api(409, sp.CodeBadState), true},
		{"bad request", api(400, sp.CodeBadRequest), true},
		{"code-less 4xx from a proxy", api(403, 0), false},
		{"code-less 400", api(400, 0), false},
		{"408", api(408, sp.CodeBadRequest), false},
		{"429", api(429, sp.CodeBadRequest), false},
		{"429 without a code", api(429, 0), false},
		{"401 after the re-login", api(401, sp.CodeSessionExpired), false},
		{"2xx login without a cookie", api(200, sp.CodeSessionExpired), false},
		{"500", api(500, sp.CodeInternal), false},
		{"503", api(503, sp.CodeUnavailable), false},
		{"no answer", sp.ErrOutcomeUnknown, false},
		{"not sent", errors.New("dial: refused"), false},
	}
	for _, c := range cases {
		if got := refusalOf(c.err) != nil; got != c.refusal {
			t.Errorf("%s: refusal = %v, want %v", c.name, got, c.refusal)
		}
	}
}
