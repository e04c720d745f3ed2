package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/kioskd/kioskd/cmd/kioskd/internal/metrics"
	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/payment/vending"
	"github.com/kioskd/kioskd/payment/vending/vmcsim"
	"github.com/kioskd/kioskd/payment/vending/vmcsim/vmctest"
)

// vendingKiosk is the agent with a vending section, the emulated machine
// on the adapter's pty.
type vendingKiosk struct {
	*kiosk
	m *vmcsim.Machine
}

func startVendingKiosk(tb testing.TB, log *zap.Logger, answered chan time.Time) *vendingKiosk {
	tb.Helper()
	// Stopped after the agent: cleanups run last-in first-out.
	m := vmctest.NewMachine(tb, vmcsim.Config{Link: filepath.Join(tb.TempDir(), "mdb0"),
		DispenseTime: 10 * time.Millisecond, SetupDelay: 10 * time.Millisecond})
	k := startKioskWith(tb, log, Options{}, kioskSetup{answered: answered, extra: m.VendingYAML(30 * time.Second)})
	return &vendingKiosk{kiosk: k, m: m}
}

// webScreen is what the web display shows.
func (k *vendingKiosk) webScreen() (state, title, amount string) {
	resp, err := http.Get(k.web + "screen")
	if err != nil {
		return "", "", ""
	}
	defer resp.Body.Close()
	var s struct{ State, Title, Amount string }
	_ = json.NewDecoder(resp.Body).Decode(&s)
	return s.State, s.Title, s.Amount
}

// until polls cond every 2 ms for at most 20 s.
func until(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("no %s within 20s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// healthz is /healthz: its status and its reasons.
func (k *vendingKiosk) healthz(tb testing.TB) (int, string) { return k.get(tb, "/healthz") }

// The whole agent sells a vend: the adapter is configured and /healthz is
// ready; a selection shows its product and price on the customer display;
// the QR read by the serial scanner pays it; the machine dispenses and the
// payment is confirmed; the metrics count the vend.
func TestVendThroughAgent(t *testing.T) {
	k := startVendingKiosk(t, zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)), nil)
	until(t, "a ready /healthz", func() bool { code, _ := k.healthz(t); return code == http.StatusOK })
	if err := k.m.Select(11); err != nil {
		t.Fatal(err)
	}
	until(t, "the selection on the display", func() bool {
		st, title, amount := k.webScreen()
		return st == "selected" && title == "Вода 0,5 л" && strings.HasPrefix(amount, "80,00")
	})
	k.scan(t, k.sim.Payload(t, "vend-agent"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	snap, err := k.m.Wait(ctx, func(s vmcsim.Snapshot) bool { return len(s.Outcomes) == 1 })
	if err != nil || snap.Outcomes[0].Kind != vmcsim.Vended || snap.Outcomes[0].Approved != "80.00" {
		t.Fatalf("machine: %+v %v", snap.Outcomes, err)
	}
	until(t, "the payment confirmed", func() bool {
		st := k.sim.State()
		return len(st.Purchases) == 1 && st.Purchases[0].Confirmed && st.Purchases[0].Amount == 8000
	})
	want := []string{
		`kioskd_vends_total{outcome="vended"} 1`,
		`kioskd_vends_total{outcome="failed"} 0`,
		`kioskd_qr_to_vend_approved_seconds_count 1`,
		`kioskd_sales_total{outcome="completed"} 1`,
	}
	var metrics string
	until(t, "the vend in /metrics", func() bool {
		_, metrics = k.get(t, "/metrics")
		return !slices.ContainsFunc(want, func(w string) bool { return !strings.Contains(metrics, w) })
	})
	t.Run("promtool", func(t *testing.T) { promtoolCheck(t, metrics) })
}

// /healthz names the adapter's problem: disabled by the machine, missing
// (unplugged), not answering, and ready again when it is back; the customer
// display says out of order meanwhile.
func TestVendingHealth(t *testing.T) {
	k := startVendingKiosk(t, zap.NewNop(), nil)
	until(t, "a ready /healthz", func() bool { code, _ := k.healthz(t); return code == http.StatusOK })
	for _, c := range []struct {
		do     func() error
		reason error
	}{
		{func() error { return k.m.EnableReader(false) }, vending.ErrDisabledByVMC},
		{func() error { return k.m.EnableReader(true) }, nil},
		{k.m.Unplug, vending.ErrAdapterMissing},
		{k.m.Replug, nil},
		// The driver's probe: V after 5 s of silence, 2 s for the answer.
		{func() error { return k.m.Silence(true) }, vending.ErrAdapterNotAnswering},
		{func() error { return k.m.Silence(false) }, nil},
	} {
		if err := c.do(); err != nil {
			t.Fatal(err)
		}
		var body string
		until(t, fmt.Sprintf("/healthz saying %v", c.reason), func() bool {
			var code int
			code, body = k.healthz(t)
			if c.reason == nil {
				return code == http.StatusOK
			}
			return code == http.StatusServiceUnavailable && strings.Contains(body, strings.SplitN(c.reason.Error(), ";", 2)[0])
		})
		if c.reason != nil {
			until(t, "the out-of-order screen", func() bool { st, _, _ := k.webScreen(); return st == "device_fault" })
		}
	}
}

// approvals counts the C,VEND the machine received.
func approvals(s vmcsim.Snapshot) int {
	n := 0
	for _, c := range s.Commands {
		if strings.HasPrefix(c, "C,VEND,") {
			n++
		}
	}
	return n
}

// BenchmarkQRToVend measures a paid vend through the whole agent: from the
// last byte of a QR written to the serial scanner's line to C,VEND read by
// the machine, beside the simulator's own payment time in the same run (the
// release arriving → the status answer that says success leaving it: the
// simulator's success delay and when the agent asked). The agent's own time
// is the difference: the scan to the release (the commit and its journal
// write) and the success answer to C,VEND (the Dispensing journal write and
// the approval). Vends are 1.5 s apart, as customers are at least, so the
// status budget (one request a second) does not hold the first check back.
//
//	go test -run X -bench QRToVend -benchtime 50x ./cmd/kioskd/internal/agent/
func BenchmarkQRToVend(b *testing.B) {
	answered := make(chan time.Time, 16)
	k := startVendingKiosk(b, zap.NewNop(), answered)
	until(b, "a ready /healthz", func() bool { code, _ := k.healthz(b); return code == http.StatusOK })
	qrs := make([]string, b.N)
	for i := range qrs {
		qrs[i] = k.sim.Payload(b, fmt.Sprintf("bench-%d", i))
	}
	total := make([]time.Duration, 0, b.N)
	payment := make([]time.Duration, 0, b.N)
	own := make([]time.Duration, 0, b.N)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		for len(answered) > 0 {
			<-answered
		}
		if err := k.m.Select(11); err != nil {
			b.Fatal(err)
		}
		until(b, "the price set", func() bool { _, st := k.get(b, "/v1/state"); return strings.Contains(st, `"pending_amount":8000`) })
		sent := k.scan(b, qrs[i])
		released := k.waitFor(b, smartpay.PathRelease).at
		_, err := k.m.Wait(ctx, func(s vmcsim.Snapshot) bool { return approvals(s) > i })
		approved := time.Now()
		if err != nil {
			b.Fatal(err)
		}
		var success time.Time
		select {
		case success = <-answered:
		default:
			b.Fatal("the simulator never answered success")
		}
		if _, err := k.m.Wait(ctx, func(s vmcsim.Snapshot) bool { return len(s.Outcomes) > i }); err != nil {
			b.Fatal(err)
		}
		k.waitIdle(b)
		time.Sleep(1500 * time.Millisecond)
		total = append(total, approved.Sub(sent))
		payment = append(payment, success.Sub(released))
		own = append(own, approved.Sub(sent)-success.Sub(released))
	}
	b.StopTimer()
	for _, m := range []struct {
		name string
		d    []time.Duration
	}{{"qr-to-vend", total}, {"sim-payment", payment}, {"agent-own", own}} {
		p50, p99 := percentiles(m.d)
		b.ReportMetric(float64(p50.Microseconds())/1000, m.name+"-p50-ms")
		b.ReportMetric(float64(p99.Microseconds())/1000, m.name+"-p99-ms")
	}
}

// While the machine sets the reader up (inactive, then disabled until it
// enables it) the kiosk is starting, not out of order; a reader disabled
// after it was enabled, or an adapter gone, is a fault.
func TestVendingHealthDuringSetup(t *testing.T) {
	m := metrics.New(nil)
	h := newHealth(m)
	o := &vendingObserver{m: m.Vending(), h: h}
	ready := func(r vending.ReaderState) vending.Status {
		return vending.Status{Adapter: vending.AdapterReady, Reader: r}
	}
	for i, c := range []struct {
		s    vending.Status
		want display.State
	}{
		{vending.Status{Adapter: vending.AdapterConfiguring}, display.Starting},
		{ready(vending.ReaderInactive), display.Starting},
		{ready(vending.ReaderDisabled), display.Starting},
		{ready(vending.ReaderEnabled), display.Ready},
		{ready(vending.ReaderDisabled), display.DeviceFault},
		{vending.Status{Adapter: vending.AdapterMissing, Err: errors.New("gone")}, display.DeviceFault},
		{vending.Status{Adapter: vending.AdapterConfiguring}, display.Starting},
		{ready(vending.ReaderDisabled), display.Starting},
	} {
		o.MachineStatus(c.s)
		if got, _ := h.idleScreen(); got != c.want {
			t.Errorf("step %d %+v: screen %v, want %v (reasons %v)", i, c.s, got, c.want, h.reasons)
		}
	}
}
