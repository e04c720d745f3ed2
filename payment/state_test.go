package payment

import (
	"testing"
	"time"

	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/payment/journal"
	sp "github.com/kioskd/kioskd/payment/smartpay"
)

func TestDecide(t *testing.T) {
	cases := []struct {
		name string
		cur  State
		f    fact
		want State
	}{
		{"commit without amount waits", Committing, fact{kind: fCommitted}, WaitingAmount},
		{"commit with amount releases", Committing, fact{kind: fCommitted, haveAmount: true}, Releasing},
		{"commit with a pending cancel cancels", Committing, fact{kind: fCommitted, haveAmount: true, cancel: true}, Cancelling},
		{"recovered commit is cancelled", Committing, fact{kind: fCommitted, haveAmount: true, recovering: true}, Cancelling},
		{"commit refused declines", Committing, fact{kind: fRejected}, Declined},
		{"commit unknown repeats", Committing, fact{kind: fUnknown, cancel: true}, Committing},
		{"amount releases", WaitingAmount, fact{kind: fAmount}, Releasing},
		{"amount with a cancel queued behind it cancels", WaitingAmount, fact{kind: fAmount, haveAmount: true, cancel: true}, Cancelling},
		{"amount timeout cancels", WaitingAmount, fact{kind: fTimeout}, Cancelling},
		{"replace cancels", WaitingAmount, fact{kind: fCancel}, Cancelling},
		{"released polls", Releasing, fact{kind: fReleased}, Paying},
		{"release unknown checks", Releasing, fact{kind: fUnknown}, Checking},
		{"release refused cancels", Releasing, fact{kind: fRejected}, Cancelling},
		{"release answered failed", Releasing, fact{kind: fStatus, status: sp.Failed}, Declined},
		{"processing keeps paying", Paying, fact{kind: fStatus, status: sp.Processing}, Paying},
		{"status unknown checks", Paying, fact{kind: fUnknown}, Checking},
		{"checking then processing", Checking, fact{kind: fStatus, status: sp.Processing}, Paying},
		{"success host waits", Paying, fact{kind: fStatus, status: sp.Success}, Paid},
		{"success auto confirms", Checking, fact{kind: fStatus, status: sp.Success, auto: true}, Confirming},
		{"success recovered cancels", Paying, fact{kind: fStatus, status: sp.Success, auto: true, recovering: true}, Cancelling},
		{"success after host cancel cancels", Paying, fact{kind: fStatus, status: sp.Success, cancel: true}, Cancelling},
		{"failed declines", Paying, fact{kind: fStatus, status: sp.Failed}, Declined},
		{"expired declines", Checking, fact{kind: fStatus, status: sp.Expired}, Declined},
		{"cancelled by service", Paying, fact{kind: fStatus, status: sp.Cancelled}, Cancelled},
		{"lost release is sent again", Checking, fact{kind: fStatus, status: sp.Committed}, Releasing},
		{"recovered lost release cancels", Checking, fact{kind: fStatus, status: sp.Committed, recovering: true}, Cancelling},
		{"payment timeout cancels", Paying, fact{kind: fTimeout}, Cancelling},
		{"host cancel while paying", Checking, fact{kind: fCancel}, Cancelling},
		{"handover ok confirms", Paid, fact{kind: fHandover, ok: true}, Confirming},
		{"handover failed cancels", Paid, fact{kind: fHandover}, Cancelling},
		{"handover timeout cancels", Paid, fact{kind: fTimeout}, Cancelling},
		{"dispense starts the vend", Paid, fact{kind: fDispense}, Dispensing},
		{"vend success confirms", Dispensing, fact{kind: fHandover, ok: true}, Confirming},
		{"vend failure cancels", Dispensing, fact{kind: fHandover}, Cancelling},
		{"no vend result: counted as dispensed", Dispensing, fact{kind: fTimeout}, Confirming},
		{"no cancel while dispensing", Dispensing, fact{kind: fCancel}, Dispensing},
		{"confirmed completes", Confirming, fact{kind: fConfirmed}, Completed},
		{"confirm unknown repeats", Confirming, fact{kind: fUnknown}, Confirming},
		{"confirm ignores cancel", Confirming, fact{kind: fCancel}, Confirming},
		{"cancel acked", Cancelling, fact{kind: fCancelAcked}, Cancelled},
		{"cancel refused: ask the status", Cancelling, fact{kind: fRejected}, Checking},
		{"confirm refused: ask the status", Confirming, fact{kind: fRejected}, Checking},
		{"refused cancel, purchase cancelled", Checking, fact{kind: fStatus, status: sp.Cancelled, refused: Cancelling}, Cancelled},
		{"refused cancel, purchase expired", Checking, fact{kind: fStatus, status: sp.Expired, refused: Cancelling, recovering: true}, Declined},
		{"refused cancel, purchase confirmed", Checking, fact{kind: fStatus, status: sp.Success, refused: Cancelling, cancel: true}, Completed},
		{"refused confirm, purchase success", Checking, fact{kind: fStatus, status: sp.Success, refused: Confirming}, Completed},
		{"refused confirm, purchase cancelled", Checking, fact{kind: fStatus, status: sp.Cancelled, refused: Confirming}, Cancelled},
		{"refused confirm, not final: keep asking", Checking, fact{kind: fStatus, status: sp.Processing, refused: Confirming}, Checking},
		{"refused confirm: no timeout cancel", Checking, fact{kind: fTimeout, refused: Confirming}, Checking},
		{"refused confirm: no host cancel", Checking, fact{kind: fCancel, cancel: true, refused: Confirming}, Checking},
		{"refused confirm: unknown keeps asking", Checking, fact{kind: fUnknown, refused: Confirming}, Checking},
		{"refused cancel, purchase unknown", Checking, fact{kind: fRejected, refused: Cancelling}, Cancelled},
		{"cancel unknown repeats", Cancelling, fact{kind: fUnknown}, Cancelling},
	}
	for _, c := range cases {
		if got := decide(c.cur, c.f); got != c.want {
			t.Errorf("%s: decide(%s, %+v) = %s, want %s", c.name, c.cur, c.f, got, c.want)
		}
	}
}

func TestPollScheduleAveragesUnderOnePerSecond(t *testing.T) {
	var at, first time.Duration
	n := 0
	for at < 20*time.Second {
		at += pollDelay(n)
		if n == 0 {
			first = at
		}
		n++
	}
	if first > 150*time.Millisecond {
		t.Errorf("first check at %v, want within ~100ms", first)
	}
	if rate := float64(n-1) / 20; rate > 1.0 {
		t.Errorf("%d checks in 20s: %.2f/s, want <= 1/s", n-1, rate)
	}
}

func TestStateNames(t *testing.T) {
	for s := Idle; s <= Cancelled; s++ {
		if s.String() == "unknown" {
			t.Errorf("state %d has no name", s)
		}
	}
	if State(99).String() != "unknown" {
		t.Error("out of range state has a name")
	}
	if len(stateEffects) != len(stateNames) {
		t.Errorf("%d states have effects, %d have names", len(stateEffects), len(stateNames))
	}
	if Paid.Display() != display.Paid || Checking.phase() != journal.SaleReleased || State(99).Display() != display.Ready {
		t.Error("state effects")
	}
}
