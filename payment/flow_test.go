package payment_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/internal/simenv"
	"github.com/kioskd/kioskd/payment/journal"
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

// When the journal cannot be written the flow stops before the call the
// record was for: a release without its record would leave recovery blind.
func TestJournalFailureStopsBeforeTheCall(t *testing.T) {
	log := zap.NewNop()
	se := simenv.Start(t, sim.Config{Dir: keyDir}, log)
	j, err := journal.Open(filepath.Join(t.TempDir(), "j.db"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := payment.New(payment.Config{}, se.Client, j, log)
	if err != nil {
		t.Fatal(err)
	}
	events, unsub := f.Subscribe()
	defer unsub()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- f.Run(ctx) }()
	for !f.Snapshot().Ready {
		time.Sleep(time.Millisecond)
	}
	f.Scan([]byte(se.QR(t, "disk")), "test", time.Now())
	for e := range events {
		if e.Kind == payment.KindState && e.State == payment.WaitingAmount {
			break
		}
	}
	j.Close() // the disk is gone
	if err := f.StartSale(500); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-runErr:
		if err == nil {
			t.Fatal("Run ended without an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the flow kept running without its journal")
	}
	if n := se.Sim.State().Requests[sim.MethodRelease]; n != 0 {
		t.Fatalf("%d releases sent without a journal record", n)
	}
}
