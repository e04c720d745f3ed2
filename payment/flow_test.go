package payment_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
	"github.com/kioskd/kioskd/payment/smartpay/sim/simtest"
)

// simEnv is a simulator and a started client for it.
type simEnv struct {
	*simtest.Server
	Client *smartpay.Client
}

// startSim serves a simulator with cfg and starts a client for it.
func startSim(tb testing.TB, cfg sim.Config) *simEnv {
	tb.Helper()
	srv := simtest.NewServer(tb, cfg)
	return &simEnv{Server: srv, Client: srv.NewClient(tb)}
}

// warmWatch reports each finished Warm of the real client.
type warmWatch struct {
	payment.Service
	done chan error
}

func (w warmWatch) Warm(ctx context.Context) error {
	err := w.Service.Warm(ctx)
	w.done <- err
	return err
}

// A frame start renews a session about to expire, once however many
// scanners report it, so the commit that follows needs no login.
func TestFrameStartedWarmsOnce(t *testing.T) {
	// A session this short is always "about to expire" for the client.
	se := startSim(t, sim.Config{SessionTTL: 2 * time.Second})
	svc := warmWatch{Service: se.Client, done: make(chan error, 16)}
	h := run(t, payment.Config{FixedAmount: 100}, svc, nil)
	h.ready()
	auths := func() int { return se.State().Requests[sim.MethodAuth] }
	before := auths()
	for range 10 {
		h.flow.FrameStarted()
	}
	select {
	case err := <-svc.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(guard):
		t.Fatal("FrameStarted did not warm the session")
	}
	if n := auths() - before; n != 1 {
		t.Fatalf("%d logins for a frame start, want 1", n)
	}
	h.scan(se.Payload(t, "warm"))
	h.state(payment.Releasing)
	if n := auths() - before; n != 1 {
		t.Fatalf("the commit logged in again (%d logins)", n)
	}
	if len(svc.done) != 0 {
		t.Fatal("10 frame starts warmed the session more than once")
	}
}

// A scan that is not a payment QR is reported with its reason and never
// reaches the service; a hand-over with no paid sale is refused.
func TestBadCodeNeverReachesService(t *testing.T) {
	t.Parallel()
	se := startSim(t, sim.Config{})
	h := run(t, payment.Config{}, se.Client, nil)
	h.ready()
	h.scan(`{"id_loyalty":"x","encrypted":"!!","sign":"AA=="}`)
	e := h.next("bad code event", func(e payment.Event) bool { return e.Kind == payment.KindBadCode })
	if e.Message == "" {
		t.Fatal("bad code event without a reason")
	}
	if n := se.State().Requests[sim.MethodCommit]; n != 0 {
		t.Fatalf("%d commits for a bad code", n)
	}
	if err := h.flow.Handover(context.Background(), true); err == nil {
		t.Fatal("hand-over accepted while idle")
	}
}

// Every read of the same payload within the window is dropped in one place
// and reported, so the display and the host see each one; the sale is
// committed once.
func TestDuplicateReadsReported(t *testing.T) {
	t.Parallel()
	se := startSim(t, sim.Config{})
	h := run(t, payment.Config{}, se.Client, nil)
	h.ready()
	qr := se.Payload(t, "dup")
	for range 4 {
		h.scan(qr)
	}
	for i := range 3 {
		h.next("duplicate event "+string(rune('1'+i)), func(e payment.Event) bool { return e.Kind == payment.KindDuplicate })
	}
	h.state(payment.WaitingAmount)
	if n := se.State().Requests[sim.MethodCommit]; n != 1 {
		t.Fatalf("%d commits for one QR read four times", n)
	}
}

// faultEvent waits for the event that says the journal cannot be written.
func (h *harness) faultEvent() payment.Event {
	h.tb.Helper()
	return h.next("journal fault", func(e payment.Event) bool { return e.Kind == payment.KindFault })
}

// When the journal cannot be written the sale waits before the call the
// record was for (a release without its record would leave recovery blind),
// the display and health say why, and the host is not told "done".
func TestJournalFailureWaitsBeforeTheCall(t *testing.T) {
	t.Parallel()
	se := startSim(t, sim.Config{})
	h := run(t, payment.Config{Timeouts: payment.Timeouts{Call: time.Second}}, se.Client, nil)
	h.ready()
	h.scan(se.Payload(t, "disk"))
	h.state(payment.WaitingAmount)
	h.j.Close() // the disk is gone
	if err := h.flow.SetAmount(context.Background(), 500, ""); err != nil {
		t.Fatal(err)
	}
	if e := h.faultEvent(); !strings.Contains(e.Message, "journal") {
		t.Fatalf("fault event %+v", e)
	}
	if st := h.flow.Snapshot(); st.JournalProblem == "" || st.State != payment.WaitingAmount {
		t.Fatalf("snapshot %+v", st)
	}
	if n := se.State().Requests[sim.MethodRelease]; n != 0 {
		t.Fatalf("%d releases sent without a journal record", n)
	}
	if err := h.flow.Cancel(context.Background()); err != nil {
		t.Fatal(err) // queued: acted on once it can be written
	}
}

// A sale's first record is written alongside the commit; when it cannot be
// written the commit (which moves no money) may be out, but the release
// never goes.
func TestFirstRecordFailureWaitsBeforeRelease(t *testing.T) {
	t.Parallel()
	se := startSim(t, sim.Config{})
	h := run(t, payment.Config{FixedAmount: 500}, se.Client, nil)
	h.ready()
	h.j.Close() // the disk is gone; the ids reserved at start need no write
	h.scan(se.Payload(t, "first"))
	h.faultEvent()
	if n := se.State().Requests[sim.MethodRelease]; n != 0 {
		t.Fatalf("%d releases sent without the sale's record", n)
	}
}
