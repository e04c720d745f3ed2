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
func TestClassifyOnlyCodedRefusalsAreFinal(t *testing.T) {
	api := func(status, code int) error {
		return fmt.Errorf("wrapped: %w", &sp.APIError{Method: sp.PathKassaStatus, HTTPStatus: status, Code: code, Message: "m"})
	}
	cases := []struct {
		name string
		err  error
		want factKind
	}{
		{"QR already committed", api(409, sp.CodeQRAlreadyCommitted), fRejected},
		{"refund exceeds amount", api(409, sp.CodeRefundExceedsAmount), fRejected},
		{"bad state", api(409, sp.CodeBadState), fRejected},
		{"bad request", api(400, sp.CodeBadRequest), fRejected},
		{"code-less 4xx from a proxy", api(403, 0), fUnknown},
		{"code-less 400", api(400, 0), fUnknown},
		{"408", api(408, sp.CodeBadRequest), fUnknown},
		{"429", api(429, sp.CodeBadRequest), fUnknown},
		{"429 without a code", api(429, 0), fUnknown},
		{"401 after the re-login", api(401, sp.CodeSessionExpired), fUnknown},
		{"2xx login without a cookie", api(200, sp.CodeSessionExpired), fUnknown},
		{"500", api(500, sp.CodeInternal), fUnknown},
		{"503", api(503, sp.CodeUnavailable), fUnknown},
		{"no answer", sp.ErrOutcomeUnknown, fUnknown},
		{"not sent", errors.New("dial: refused"), fUnknown},
	}
	for _, c := range cases {
		var info stepInfo
		if got := classify(c.err, &info); got != c.want {
			t.Errorf("%s: classify = %v, want %v", c.name, got, c.want)
		}
		if c.want == fUnknown && info.code != 0 {
			t.Errorf("%s: an unknown outcome recorded service code %d", c.name, info.code)
		}
	}
}
