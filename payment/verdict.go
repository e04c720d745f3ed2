package payment

import (
	"context"
	"errors"
	"time"

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

// callService makes one service call (do) under the whole-call timeout and
// turns its error into the fact the caller's decide acts on: the service's
// refusal (final; its code and message go to the step's info), or, for any
// other error, an unknown outcome.
func callService[F any](ctx context.Context, timeout time.Duration, do func(context.Context) (F, stepInfo, error), refused, unknown F) (F, stepInfo) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fc, info, err := do(cctx)
	if err == nil {
		return fc, info
	}
	info = stepInfo{err: err}
	if se := refusalOf(err); se != nil {
		info.code, info.message = se.Code, se.Message
		return refused, info
	}
	return unknown, info
}
