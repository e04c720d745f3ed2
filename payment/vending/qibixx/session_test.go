package qibixx

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment/vending"
)

// describe renders actions compactly: events by type and cause, the command,
// the error and whether a note was made.
func describe(a actions) string {
	s := ""
	for _, ev := range a.events {
		switch e := ev.(type) {
		case vending.VendRequest:
			s += fmt.Sprintf("request#%d ", e.ID)
		case vending.VendSuccess:
			s += fmt.Sprintf("success#%d(reset=%v) ", e.ID, e.ByVMCReset)
		case vending.VendFailure:
			s += fmt.Sprintf("failure#%d ", e.ID)
		case vending.VendResultUnknown:
			s += fmt.Sprintf("unknown#%d(%v) ", e.ID, e.Cause)
		case vending.SessionCancelled:
			s += fmt.Sprintf("cancelled#%d(%v) ", e.ID, e.Cause)
		case vending.VendDenied:
			s += fmt.Sprintf("denied#%d(%v) ", e.ID, e.Cause)
		default:
			s += fmt.Sprintf("%T ", ev)
		}
	}
	if a.send != "" {
		s += "send:" + string(a.send) + " "
	}
	switch {
	case errors.Is(a.err, vending.ErrNotPending):
		s += "err:not_pending "
	case errors.Is(a.err, vending.ErrApproved):
		s += "err:approved "
	case errors.Is(a.err, vending.ErrAmountMismatch):
		s += "err:mismatch "
	case a.err != nil:
		s += "err:" + a.err.Error() + " "
	}
	if a.note != "" {
		s += "note"
	}
	return s
}

func TestDecide(t *testing.T) {
	at := time.Unix(1, 0)
	req := func(amount int64, item int) fact {
		return fact{kind: factRequest, vend: vending.Vend{Amount: amount, Item: item}, at: at}
	}
	approve := func(id uint64, amount int64) fact {
		return fact{kind: factApprove, vend: vending.Vend{ID: id, Amount: amount}, text: fmt.Sprintf("%d.%02d", amount/100, amount%100)}
	}
	deny := func(id uint64) fact { return fact{kind: factDeny, vend: vending.Vend{ID: id}} }
	reader := func(r vending.ReaderState) fact { return fact{kind: factReader, reader: r, at: at} }
	success := fact{kind: factSuccess, at: at}
	failure := fact{kind: factFailure, text: "VEND 3", at: at}
	lost := fact{kind: factLost, cause: vending.CauseLinkLost, at: at}
	bad := fact{kind: factBadRequest, vend: vending.Vend{Amount: 151, Item: 4}, cause: vending.CausePriceMismatch, at: at}

	type step struct {
		f     fact
		want  string
		phase phase
	}
	cases := map[string][]step{
		"approve then success": {
			{req(150, 3), "request#1 ", phaseRequested},
			{approve(1, 150), "send:C,VEND,1.50 ", phaseApproved},
			{success, "success#1(reset=false) ", phaseNone},
			{reader(vending.ReaderSessionIdle), "", phaseNone},
			{reader(vending.ReaderEnabled), "", phaseNone},
		},
		"approve then failure": {
			{req(150, 3), "request#1 ", phaseRequested},
			{approve(1, 150), "send:C,VEND,1.50 ", phaseApproved},
			{failure, "failure#1 ", phaseNone},
		},
		"deny": {
			{req(150, 3), "request#1 ", phaseRequested},
			{deny(1), "send:C,STOP ", phaseNone},
			{reader(vending.ReaderEnabled), "", phaseNone},
			{approve(1, 150), "err:not_pending ", phaseNone},
		},
		"refusals keep the request": {
			{req(150, 3), "request#1 ", phaseRequested},
			{approve(1, 149), "err:mismatch ", phaseRequested},
			{approve(2, 150), "err:not_pending ", phaseRequested},
			{deny(7), "err:not_pending ", phaseRequested},
			{approve(1, 150), "send:C,VEND,1.50 ", phaseApproved},
			{approve(1, 150), "err:approved ", phaseApproved},
			{deny(1), "err:approved ", phaseApproved},
		},
		"VMC gives up (cancel or timeout)": {
			{req(150, 3), "request#1 ", phaseRequested},
			{reader(vending.ReaderSessionIdle), "cancelled#1(vmc) ", phaseNone},
			{approve(1, 150), "err:not_pending ", phaseNone},
		},
		"VMC resets before approval": {
			{req(150, 3), "request#1 ", phaseRequested},
			{reader(vending.ReaderInactive), "cancelled#1(vmc_reset) ", phaseNone},
		},
		"VMC resets after approval: success by MDB's rule": {
			{req(150, 3), "request#1 ", phaseRequested},
			{approve(1, 150), "send:C,VEND,1.50 ", phaseApproved},
			{reader(vending.ReaderInactive), "success#1(reset=true) note", phaseNone},
		},
		"session ends after approval without a result": {
			{req(150, 3), "request#1 ", phaseRequested},
			{approve(1, 150), "send:C,VEND,1.50 ", phaseApproved},
			{reader(vending.ReaderEnabled), "unknown#1(no_result) note", phaseNone},
		},
		"disabled after approval": {
			{req(150, 3), "request#1 ", phaseRequested},
			{approve(1, 150), "send:C,VEND,1.50 ", phaseApproved},
			{reader(vending.ReaderDisabled), "unknown#1(disabled) ", phaseNone},
		},
		"link lost": {
			{req(150, 3), "request#1 ", phaseRequested},
			{lost, "cancelled#1(link_lost) ", phaseNone},
			{req(150, 3), "request#2 ", phaseRequested},
			{approve(2, 150), "send:C,VEND,1.50 ", phaseApproved},
			{lost, "unknown#2(link_lost) ", phaseNone},
			{lost, "", phaseNone},
		},
		"out of order results are ignored": {
			{success, "note", phaseNone},
			{failure, "note", phaseNone},
			{req(150, 3), "request#1 ", phaseRequested},
			{success, "note", phaseRequested},
			{failure, "note", phaseRequested},
		},
		"repeated and replaced requests": {
			{req(150, 3), "request#1 ", phaseRequested},
			{req(150, 3), "note", phaseRequested},
			{req(200, 4), "cancelled#1(superseded) request#2 note", phaseRequested},
			{approve(2, 200), "send:C,VEND,2.00 ", phaseApproved},
			{req(200, 4), "unknown#2(superseded) request#3 note", phaseRequested},
		},
		"device denies what it cannot pay": {
			{bad, "denied#1(price_mismatch) send:C,STOP ", phaseNone},
			{req(150, 3), "request#2 ", phaseRequested},
			{bad, "cancelled#2(superseded) denied#3(price_mismatch) send:C,STOP note", phaseNone},
		},
	}
	for name, steps := range cases {
		var s session
		for i, st := range steps {
			var a actions
			s, a = decide(s, st.f)
			if got := describe(a); got != st.want || s.phase != st.phase {
				t.Errorf("%s, step %d: %q phase %v; want %q phase %v", name, i, got, s.phase, st.want, st.phase)
				break
			}
		}
	}
}
