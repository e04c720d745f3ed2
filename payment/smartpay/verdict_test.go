package smartpay_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

// The verdict on every kind of service answer, and errors.Is agreeing with it.
func TestAPIErrorVerdict(t *testing.T) {
	for _, c := range []struct {
		status, code int
		want         smartpay.Verdict
	}{
		{409, smartpay.CodeQRAlreadyCommitted, smartpay.Refused},
		{422, smartpay.CodeBadSignature, smartpay.Refused},
		{404, smartpay.CodeNotFound, smartpay.Refused},
		{404, 0, smartpay.Unknown},                        // a proxy's answer: the service may never have seen it
		{400, smartpay.CodeUnavailable, smartpay.Unknown}, // the service says it is not working
		{500, smartpay.CodeInternal, smartpay.Unknown},
		{503, smartpay.CodeUnavailable, smartpay.Unknown},
		{502, 0, smartpay.Unknown},
		{302, 0, smartpay.Unknown},
		{401, smartpay.CodeSessionExpired, smartpay.Unavailable}, // left after the re-login
		{408, smartpay.CodeBadRequest, smartpay.Unavailable},
		{429, smartpay.CodeBadRequest, smartpay.Unavailable},
	} {
		err := fmt.Errorf("wrapped: %w", &smartpay.APIError{Method: smartpay.PathCommit, HTTPStatus: c.status, Code: c.code})
		if got := smartpay.VerdictOf(err); got != c.want {
			t.Errorf("HTTP %d code %d: %s, want %s", c.status, c.code, got, c.want)
		}
		is := map[smartpay.Verdict]error{smartpay.Unknown: smartpay.ErrOutcomeUnknown, smartpay.Refused: smartpay.ErrRefused,
			smartpay.Unavailable: smartpay.ErrUnavailable}
		for v, target := range is {
			if errors.Is(err, target) != (v == c.want) {
				t.Errorf("HTTP %d code %d: errors.Is(%v) = %v", c.status, c.code, target, !(v == c.want))
			}
		}
	}
	if v := smartpay.VerdictOf(errors.New("anything else")); v != smartpay.Unknown {
		t.Errorf("a foreign error: %s, want unknown", v)
	}
	if v := smartpay.VerdictOf(fmt.Errorf("x: %w", smartpay.ErrUnavailable)); v != smartpay.Unavailable {
		t.Errorf("a wrapped sentinel: %s", v)
	}
}

// recorder is an Observer that keeps every call.
type recorder struct {
	mu    sync.Mutex
	calls []observed
}

type observed struct {
	method string
	took   time.Duration
	err    error
}

var _ smartpay.Observer = (*recorder)(nil)

func (r *recorder) CallDone(method string, took time.Duration, err error) {
	r.mu.Lock()
	r.calls = append(r.calls, observed{method, took, err})
	r.mu.Unlock()
}

func (r *recorder) methods() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var m []string
	for _, c := range r.calls {
		m = append(m, c.method)
	}
	return m
}

func (r *recorder) last() observed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[len(r.calls)-1]
}

// The observer hears every call once, with the whole call's time and its
// final error: the login and error answers of Start, the caller's calls
// (retries folded into one), re-logins and the keep-warm calls.
func TestObserverHearsEveryCall(t *testing.T) {
	e := newEnv(t, sim.Config{})
	rec := &recorder{}
	c := e.NewClient(t, func(cfg *smartpay.Config) { cfg.Observer = rec })
	if got := rec.methods(); !slices.Equal(got, []string{sim.MethodAuth, sim.MethodErrorAnswers}) {
		t.Fatalf("after Start: %q", got)
	}
	id := commit(t, e, c, "1")
	e.Fault(t, sim.Fault{Method: sim.MethodStatus, Kind: sim.FaultStatus, Status: 503, Count: 1})
	if _, err := c.Status(bg, id); err != nil {
		t.Fatal(err)
	}
	if l := rec.last(); l.method != sim.MethodStatus || l.err != nil {
		t.Fatalf("a status retried after a 503: %+v", l)
	}
	e.Fault(t, sim.Fault{Method: sim.MethodRelease, Kind: sim.FaultExpireSession})
	if _, err := c.Release(bg, id, 100); err != nil {
		t.Fatal(err)
	}
	_, err := c.Release(bg, id, 200)
	if l := rec.last(); l.method != sim.MethodRelease || l.err != err || smartpay.VerdictOf(err) != smartpay.Refused {
		t.Fatalf("a refused release: %+v (%v)", l, err)
	}
	want := []string{sim.MethodAuth, sim.MethodErrorAnswers, sim.MethodCommit, sim.MethodStatus,
		sim.MethodAuth, sim.MethodRelease, sim.MethodRelease} // the re-login after the 401 is a call of its own
	if got := rec.methods(); !slices.Equal(got, want) {
		t.Fatalf("calls %q, want %q", got, want)
	}
}

// The keep-warm calls feed the observer too: an outage is heard within one
// period while no call is made, and the recovery within one period after.
func TestKeepWarmFeedsObserver(t *testing.T) {
	e := newEnv(t, sim.Config{})
	rec := &recorder{}
	const period = 100 * time.Millisecond
	e.NewClient(t, func(cfg *smartpay.Config) {
		cfg.Observer, cfg.KeepWarm, cfg.AttemptTimeout = rec, period, time.Second
	})
	waitObserved := func(what string, ok func(observed) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok(rec.last()) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: last call %+v", what, rec.last())
			}
			time.Sleep(period / 4)
		}
	}
	waitObserved("a keep-warm ping", func(o observed) bool { return o.method == sim.MethodPing && o.err == nil })
	e.Down()
	waitObserved("the outage", func(o observed) bool {
		return o.method == sim.MethodPing && smartpay.VerdictOf(o.err) == smartpay.Unavailable
	})
	e.Up()
	waitObserved("the recovery", func(o observed) bool { return o.method == sim.MethodPing && o.err == nil })
}

// An attempt that gets no answer within AttemptTimeout is repeated within
// the caller's deadline when the call is repeatable (a read, a commit or a
// refund under its id), and not otherwise: the caller asks the status.
func TestSlowAnswerRetriedWithinCallDeadline(t *testing.T) {
	e := newEnv(t, sim.Config{})
	c := e.NewClient(t, func(cfg *smartpay.Config) { cfg.AttemptTimeout = 300 * time.Millisecond })
	id := commit(t, e, c, "1")
	ctx, cancel := context.WithTimeout(bg, 5*time.Second) // the flow's whole-call deadline
	defer cancel()

	e.Fault(t, sim.Fault{Method: sim.MethodStatus, Kind: sim.FaultDelay, Delay: time.Second})
	before := e.Requests(sim.MethodStatus)
	if st, err := c.Status(ctx, id); err != nil || st.Status != smartpay.Committed {
		t.Fatalf("status after a slow attempt: %+v %v", st, err)
	}
	if n := e.Requests(sim.MethodStatus) - before; n != 2 {
		t.Fatalf("%d status requests, want 2 (the slow one, then the repeat)", n)
	}

	e.Fault(t, sim.Fault{Method: sim.MethodCommit, Kind: sim.FaultDelay, Delay: time.Second})
	r, err := c.Commit(ctx, smartpay.CommitRequest{KassaPurchaseID: "2", QR: e.qr("u2")})
	if err != nil {
		t.Fatalf("commit after a slow attempt: %v", err)
	}
	if p, ok := e.State().Purchase(r.PurchaseID); !ok || p.KassaPurchaseID != "2" || len(e.State().Purchases) != 2 {
		t.Fatalf("purchases %+v", e.State().Purchases)
	}

	e.Fault(t, sim.Fault{Method: sim.MethodKassaStatus, Kind: sim.FaultDelay, Delay: time.Second})
	err = c.KassaStatus(ctx, id, smartpay.KassaCancel)
	if smartpay.VerdictOf(err) != smartpay.Unknown || !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		t.Fatalf("a slow kassa/status: %v", err)
	}
	if n := e.Requests(sim.MethodKassaStatus); n != 1 {
		t.Fatalf("kassa/status sent %d times; a repeat could act twice", n)
	}

	// The whole-call deadline ends the repeats.
	e.Fault(t, sim.Fault{Method: sim.MethodStatus, Kind: sim.FaultDelay, Delay: time.Second, Count: 10})
	short, cancel2 := context.WithTimeout(bg, 500*time.Millisecond)
	defer cancel2()
	t0 := time.Now()
	_, err = c.Status(short, id)
	if smartpay.VerdictOf(err) != smartpay.Unknown || time.Since(t0) > 2*time.Second {
		t.Fatalf("status past the call deadline: %v after %v", err, time.Since(t0))
	}
	e.ClearFaults()
}

// A request the service turned away unhandled (429) is repeated even for
// a call that is not repeatable after an unknown outcome: it did not act.
func TestUnhandledRepeatedForAnyCall(t *testing.T) {
	e := newEnv(t, sim.Config{})
	c := e.NewClient(t)
	id := commit(t, e, c, "1")
	e.Fault(t, sim.Fault{Method: sim.MethodRelease, Kind: sim.FaultStatus, Status: http.StatusTooManyRequests, Code: smartpay.CodeBadRequest})
	if _, err := c.Release(bg, id, 100); err != nil {
		t.Fatalf("release after a 429: %v", err)
	}
	if n := e.Requests(sim.MethodRelease); n != 2 {
		t.Fatalf("%d release requests, want 2", n)
	}
	// A refusal is final.
	e.Fault(t, sim.Fault{Method: sim.MethodRelease, Kind: sim.FaultStatus, Status: 409, Code: smartpay.CodeBadState})
	_, err := c.Release(bg, id, 100)
	if smartpay.VerdictOf(err) != smartpay.Refused || !errors.Is(err, smartpay.ErrRefused) || e.Requests(sim.MethodRelease) != 3 {
		t.Fatalf("refused release: %v after %d requests", err, e.Requests(sim.MethodRelease))
	}
}

// A kiosk that starts while the service cannot be reached gets its session
// soon after the service answers, well within the keep-warm period: after a
// failure the keep-warm loop tries again from 1s on.
func TestStartRecoversBeforeThePeriod(t *testing.T) {
	e := newEnv(t, sim.Config{})
	e.Down()
	rec := &recorder{}
	cfg := e.ClientConfig(1)
	cfg.Observer = rec // KeepWarm stays 30s
	c, err := smartpay.NewClient(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Start(bg); smartpay.VerdictOf(err) != smartpay.Unavailable {
		t.Fatalf("Start with the service down: %v", err)
	}
	e.Up()
	deadline := time.Now().Add(15 * time.Second)
	for l := rec.last(); l.method != sim.MethodErrorAnswers || l.err != nil; l = rec.last() {
		if time.Now().After(deadline) {
			t.Fatalf("no session 15s after the service came back: %q, last %+v", rec.methods(), l)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := c.Status(bg, "pur-none"); smartpay.VerdictOf(err) != smartpay.Refused {
		t.Fatalf("a call after the recovery: %v", err)
	}
}
