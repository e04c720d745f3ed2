package payment

import (
	"errors"

	"github.com/kioskd/kioskd/payment/smartpay"
)

// refusalOf returns the service's definitive "no" carried by err, or nil
// when err says nothing about whether the call took effect (an unknown
// outcome: repeat with the same id or ask the status).
//
// TODO(redesign): smartpay's own verdict replaces this once it lands.
func refusalOf(err error) *ServiceError {
	var ae *smartpay.APIError
	if !errors.As(err, &ae) || errors.Is(err, smartpay.ErrOutcomeUnknown) {
		return nil
	}
	if ae.Code == 0 || ae.Code == smartpay.CodeUnavailable || ae.HTTPStatus < 400 || ae.HTTPStatus >= 500 {
		return nil
	}
	switch ae.HTTPStatus {
	case 401, 408, 429:
		return nil
	}
	return &ServiceError{Code: ae.Code, Message: ae.Message, Err: err}
}
