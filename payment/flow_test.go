package payment_test

import (
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

// A frame start renews a session about to expire, once however many
// scanners report it, so the commit that follows needs no login.
func TestFrameStartedWarmsOnce(t *testing.T) {
	// A session this short is always "about to expire" for the client.
	a := startAgent(t, sim.Config{SessionTTL: 2 * time.Second}, payment.Config{FixedAmount: 100})
	auths := func() int { return a.sim.Sim.State().Requests[sim.MethodAuth] }
	before := auths()
	for range 10 {
		a.flow.FrameStarted()
	}
	deadline := time.Now().Add(5 * time.Second)
	for auths() == before {
		if time.Now().After(deadline) {
			t.Fatal("FrameStarted did not renew the session")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if n := auths() - before; n != 1 {
		t.Fatalf("%d logins for 10 frame starts, want 1", n)
	}
	a.flow.Scan([]byte(a.sim.QR(t, "warm")), "test", time.Now())
	a.wait(t, payment.WaitingAmount, payment.Releasing)
	if n := auths() - before; n != 1 {
		t.Fatalf("the commit logged in again (%d logins)", n)
	}
}

// A scan that is not a payment QR is reported with its reason and never
// reaches the service; a hand-over with no paid sale is refused.
func TestBadCodeNeverReachesService(t *testing.T) {
	a := startAgent(t, sim.Config{}, payment.Config{})
	a.flow.Scan([]byte(`{"id_loyalty":"x","encrypted":"!!","sign":"AA=="}`), "test", time.Now())
	for e := range a.events {
		if e.Kind == payment.KindBadCode {
			if e.Message == "" {
				t.Fatal("bad code event without a reason")
			}
			break
		}
	}
	if n := a.sim.Sim.State().Requests[sim.MethodCommit]; n != 0 {
		t.Fatalf("%d commits for a bad code", n)
	}
	if err := a.flow.Handover(true); err == nil {
		t.Fatal("hand-over accepted while idle")
	}
}
