package payment

import (
	"errors"

	"github.com/kioskd/kioskd/payment/smartpay"
)

// refusalOf returns the service's definitive "no" carried by err, or nil
// when err says nothing final (smartpay decides which: its verdict). The
// flow acts on nothing else: a refusal ends the call's step, anything else
// is repeated with the same id or checked with the status.
func refusalOf(err error) *ServiceError {
	var ae *smartpay.APIError
	if smartpay.VerdictOf(err) != smartpay.Refused || !errors.As(err, &ae) {
		return nil
	}
	return &ServiceError{Code: ae.Code, Message: ae.Message, Err: err}
}
