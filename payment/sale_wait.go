package payment

import (
	"context"
	"time"

	"github.com/kioskd/kioskd/payment/smartpay"
)

// The sale's waits: the status poll, the deadlines, and the one loop that
// waits for any of them while taking the host's inputs.

// backoff is the pause before repeating a call whose outcome was unknown.
func backoff(attempt int) time.Duration {
	d := 100 * time.Millisecond << min(max(attempt-1, 0), 4)
	return min(d, time.Second)
}

// doPoll waits for the poller's next check of s and makes it. Checking uses
// the same schedule and counts as the same wait: an unknown answer spends
// the wait's budget like any other check.
func (m *sales) doPoll(ctx context.Context, s *sale) (fact, stepInfo) {
	if !s.released.IsZero() {
		now := m.clock.Now()
		at := m.poll.next(now, s.released, pollWait{n: s.polls, last: s.lastPoll})
		if fc, ok := m.await(ctx, s, at-now.Sub(s.released), true); ok {
			return fc, stepInfo{}
		}
	}
	if s.state == Checking {
		s.unsure = true
	}
	sent := m.clock.Now()
	m.poll.spend(sent)
	s.polls++
	if !s.released.IsZero() {
		s.lastPoll = sent.Sub(s.released)
	}
	var resp smartpay.StatusResponse
	fc, info := m.call(ctx, func(ctx context.Context) (fact, stepInfo, error) {
		var err error
		resp, err = m.svc.Status(ctx, s.rec.PurchaseID)
		return fact{kind: fStatus, status: resp.Status}, stepInfo{code: resp.Code, message: resp.Message}, err
	})
	switch {
	case fc.kind == fRejected && s.refused != Idle:
		// After a refused kassa/status a refused status too means the
		// service does not know the purchase: decide ends it.
		return fc, info
	case fc.kind != fStatus:
		return fact{kind: fUnknown}, info // a refused status says nothing about the payment
	case resp.Status == smartpay.Success && !s.unsure && !s.recovering && !s.released.IsZero():
		// Only a wait watched from its release teaches when payments
		// complete: after a lost answer (perhaps the release's) or a
		// restart, s.released may not be when the service released it.
		m.poll.learn(span{lo: s.pending, hi: s.lastPoll})
	case !resp.Status.Final():
		s.pending = s.lastPoll
	}
	return fc, info
}

// deadlineReason says why a sale waiting in st is cancelled at its deadline.
func deadlineReason(st State) string {
	switch st {
	case WaitingAmount:
		return "no amount in time"
	case Paid:
		return "goods not handed over in time"
	case Dispensing:
		return "no vend result in time: counted as dispensed"
	}
	return "payment not confirmed in time"
}

// await is the sale's one way to wait: until d passes (d < 0: no limit),
// ctx ends, or — when interruptible — the sale's deadline passes or an
// input arrives that must be acted on now. Inputs that arrive are taken
// in either case (a cancel during a pause is acted on after the call). It
// returns the fact to act on and true, or false when d passed.
func (m *sales) await(ctx context.Context, s *sale, d time.Duration, interruptible bool) (fact, bool) {
	// One timer, for whichever comes first: d or the deadline.
	wait, atDeadline := d, false
	if interruptible && !s.deadline.IsZero() {
		left := s.deadline.Sub(m.clock.Now())
		if left <= 0 {
			s.cancel, s.reason = true, deadlineReason(s.state)
			return fact{kind: fTimeout}, true
		}
		if d < 0 || left < d {
			wait, atDeadline = left, true
		}
	}
	var fired <-chan time.Time
	if wait >= 0 {
		t := m.clock.NewTimer(wait)
		defer t.Stop()
		fired = t.Chan()
	}
	for {
		select {
		case <-ctx.Done():
			return fact{}, true
		case <-fired:
			if !atDeadline {
				return fact{}, false
			}
			s.cancel, s.reason = true, deadlineReason(s.state)
			return fact{kind: fTimeout}, true
		case in := <-s.inputs:
			if fc, now := m.take(s, in); now && interruptible {
				return fc, true
			}
		}
	}
}

// take applies an input to s. It returns the fact to act on now, or false
// when the input only changed what s knows (amount, a pending cancel).
func (m *sales) take(s *sale, in input) (fact, bool) {
	switch in.kind {
	case fAmount:
		if s.rec.Amount == 0 {
			s.rec.Amount, s.rec.Item = in.amount, in.item
		}
		return fact{kind: fAmount}, s.state == WaitingAmount
	case fCancel:
		if !s.cancel {
			s.cancel, s.reason = true, in.reason
		}
		if in.replace != nil && s.replace == nil {
			s.replace = in.replace
		}
		return fact{kind: fCancel}, true
	case fDispense, fHandover:
		// A request the host waits for (ack): it is answered with the state
		// once it is journaled.
		fc := fact{kind: in.kind, ok: in.ok}
		if len(s.acks) > 0 && awaitsHost(s.state) {
			// A duplicate of the request being applied: it learns the
			// outcome with the first.
			s.acks = append(s.acks, in.ack)
			return fact{}, false
		}
		if decide(s.state, fc) == s.state {
			// Nothing to do in this state (a duplicate queued behind the
			// one that moved the sale on): answer with where the sale
			// stands instead of leaving the host waiting.
			if in.ack != nil {
				select {
				case in.ack <- s.state:
				default:
				}
			}
			return fact{}, false
		}
		s.acks = append(s.acks, in.ack)
		return fc, true
	}
	return fact{}, false
}

// awaitsHost reports whether a sale in st waits for the host's hand-over.
func awaitsHost(st State) bool { return st == Paid || st == Dispensing }

// drain takes the inputs that arrived during a call.
func (m *sales) drain(s *sale) {
	for {
		select {
		case in := <-s.inputs:
			m.take(s, in)
		default:
			return
		}
	}
}
