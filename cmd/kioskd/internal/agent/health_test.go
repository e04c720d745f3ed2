package agent

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kioskd/kioskd/cmd/kioskd/internal/metrics"
	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

// What the idle screen becomes for each health: starting is not a fault,
// out of order needs every scanner to have failed, offline wins.
func TestIdleScreen(t *testing.T) {
	h := newHealth(metrics.New(nil))
	h.scanners = 2
	want := func(st display.State, ok bool) {
		t.Helper()
		if got, gotOK := h.idleScreen(); got != st || gotOK != ok {
			t.Fatalf("idle screen %s %v, want %s %v (%v)", got, gotOK, st, ok, h.reasons)
		}
	}
	h.wait("session", "no session yet")
	h.wait("scanner:a", "not open yet")
	h.wait("scanner:b", "not open yet")
	want(display.Starting, true) // not "out of order" while the scanners open
	h.set("scanner:a", "")
	h.set("session", "")
	want(display.Starting, true)
	h.set("scanner:b", "")
	want(display.Ready, false)
	h.set("scanner:a", "scanner a missing")
	want(display.Ready, false) // one scanner left: payments still work
	h.set("scanner:b", "scanner b missing")
	want(display.DeviceFault, true)
	h.set("service", "service unreachable")
	want(display.Offline, true)
	if ready, reasons := h.report(); ready || len(reasons) != 3 {
		t.Fatalf("report %v %q", ready, reasons)
	}
}

// Every call, keep-warm pings included, feeds health: while the kiosk is
// idle, /healthz and the screen go offline at the first keep-warm call that
// fails after an outage begins, and back at the first that succeeds after
// it ends. Counting the pings the simulator saw bounds the delay to one
// keep-warm period without timing the test.
func TestHealthFollowsServiceWhileIdle(t *testing.T) {
	const period = 300 * time.Millisecond
	k := startKiosk(t, zaptest.NewLogger(t), Options{KeepWarm: period})
	offline := func() bool {
		code, body := k.get(t, "/healthz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "service unreachable") && k.screen() == "offline"
	}
	online := func() bool {
		code, _ := k.get(t, "/healthz")
		return code == http.StatusOK && k.screen() == "ready"
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				code, body := k.get(t, "/healthz")
				t.Fatalf("%s: /healthz %d %s, screen %q", what, code, body, k.screen())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitUntil("ready after start", online)

	// An outage the admin API injects: every ping answers 503.
	before := k.sim.Requests(sim.MethodPing)
	k.sim.Fault(t, sim.Fault{Method: sim.MethodPing, Kind: sim.FaultStatus, Status: 503, Count: 1 << 20})
	waitUntil("offline during the outage", offline)
	if n := k.sim.Requests(sim.MethodPing) - before; n < 1 || n > 2 {
		t.Errorf("offline after %d failed pings, want the first (or the one after, read late)", n)
	}
	before = k.sim.Requests(sim.MethodPing)
	k.sim.ClearFaults()
	waitUntil("ready after the outage", online)
	if n := k.sim.Requests(sim.MethodPing) - before; n < 1 || n > 2 {
		t.Errorf("ready after %d good pings, want the first (or the one after, read late)", n)
	}

	// A real outage: the service stops listening, then comes back.
	k.sim.Down()
	waitUntil("offline while the service is down", offline)
	k.sim.Up()
	before = k.sim.Requests(sim.MethodPing)
	waitUntil("ready when the service is back", online)
	if n := k.sim.Requests(sim.MethodPing) - before; n > 2 {
		t.Errorf("ready after %d good pings, want the first (or the one after, read late)", n)
	}
}

// On stop the agent logs why and what is still in flight: here a sale whose
// release gets no answer yet.
func TestStopLogsWhatIsInFlight(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	log := zap.New(zapcore.NewTee(core, zaptest.NewLogger(t).Core()))
	k := startKiosk(t, log, Options{})
	k.sim.Fault(t, sim.Fault{Method: sim.MethodRelease, Kind: sim.FaultDelay, Delay: 3 * time.Second})
	k.scan(t, k.sim.Payload(t, "in-flight"))
	k.waitFor(t, smartpay.PathRelease)
	if err := k.stop(); err != nil {
		t.Fatal(err)
	}
	stops := logs.FilterMessageSnippet("kioskd stopping").All()
	if len(stops) != 1 {
		t.Fatalf("%d stop entries", len(stops))
	}
	f := stops[0].ContextMap()
	if !strings.Contains(stops[0].Message, "in flight resumes") || f["reason"] != "context canceled" ||
		f["sale_state"] != "releasing" || f["sale_id"] == "" {
		t.Fatalf("stop entry %q %v", stops[0].Message, f)
	}
	if logs.FilterMessage("kioskd stopped").Len() != 1 {
		t.Fatal("no final entry")
	}
}
