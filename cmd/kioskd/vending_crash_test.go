package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/journal"
	"github.com/kioskd/kioskd/payment/proctest"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
	"github.com/kioskd/kioskd/payment/smartpay/sim/simtest"
	"github.com/kioskd/kioskd/payment/vending/vmcsim"
	"github.com/kioskd/kioskd/payment/vending/vmcsim/vmctest"
	"github.com/kioskd/kioskd/scanner/serial/serialtest"
)

// vendCrash is one kill of the real kioskd binary during a paid vend: it
// runs with a vending section against the emulated machine on a pty and the
// simulator over mTLS, is killed with SIGKILL at one point, and started
// again on the same journal.
type vendCrash struct {
	name string
	// simKill kills kioskd when the simulator gets this call, if set.
	simKill proctest.At
	// hang: the machine holds the approved vend; kioskd is killed once it
	// dispenses, and the vend ends with result ok while kioskd is down.
	hang   bool
	result bool
	fail   bool // the machine cannot dispense (c,ERR,VEND 3)
	// The consistent end: dispensed and charged, or neither.
	dispensed bool
	// phase is the journal phase the restart recovers the sale from:
	// where the kill landed.
	phase journal.SalePhase
}

func vendCrashes() []vendCrash {
	var cs []vendCrash
	add := func(c vendCrash) { cs = append(cs, c) }
	var c vendCrash

	// Paid, not yet approved: the journal says released; the restart learns
	// the success and cancels it (nobody approved the vend), and the
	// reconfigured adapter ends the machine's selection.
	c = vendCrash{name: "before approve", phase: journal.SaleReleased}
	c.simKill = proctest.At{Method: sim.MethodStatus, Answer: `"status":"success"`, After: true}
	add(c)
	// Approved (Dispensing journaled, C,VEND written), no result yet: the
	// restart confirms, as MDB counts an approved vend without a result;
	// the machine drops the product meanwhile.
	add(vendCrash{name: "after approve, before the vend result", hang: true, result: true, dispensed: true, phase: journal.SaleDispensing})
	// The vend result journaled, its kassa/status not yet sent or its
	// answer lost: the restart sends it (again).
	c = vendCrash{name: "after vend success, before the confirm", dispensed: true, phase: journal.SaleHandedOver}
	c.simKill = proctest.At{Method: sim.MethodKassaStatus, Body: `"success"`}
	add(c)
	c.name, c.simKill.After = "after vend success, the confirm's answer lost", true
	add(c)
	c = vendCrash{name: "after vend failure, before the cancel", fail: true, phase: journal.SaleCancelling}
	c.simKill = proctest.At{Method: sim.MethodKassaStatus, Body: `"cancel"`}
	add(c)
	c.name, c.simKill.After = "after vend failure, the cancel's answer lost", true
	add(c)
	return cs
}

// Each kill point of a paid vend ends consistent after the restart: the
// machine dispensed exactly when the simulator holds the payment
// confirmed, and nothing is left open at either end.
func TestVendingKillPoints(t *testing.T) {
	bin, err := buildBinaries()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range vendCrashes() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runVendCrash(t, filepath.Join(bin, "kioskd"), c)
		})
	}
}

// The documented trade-off (README, "Vending machines"): a vend that fails
// while kioskd is down after approving it is confirmed at the restart, as
// MDB counts an approved vend without a result. The journal keeps the
// product and the price of that confirmation, and the log says it was
// counted; a refund is the operator's.
func TestVendingKillBeforeAFailureIsCountedAsSold(t *testing.T) {
	bin, err := buildBinaries()
	if err != nil {
		t.Fatal(err)
	}
	runVendCrash(t, filepath.Join(bin, "kioskd"), vendCrash{hang: true, result: false, dispensed: false, phase: journal.SaleDispensing})
}

// killable is the kioskd process of a scenario.
type killable struct {
	proctest.Process
	t      *testing.T
	bin    string
	config string
	out    *os.File
}

func (k *killable) start() {
	k.t.Helper()
	cmd := exec.Command(k.bin, "run", "-config", k.config)
	cmd.Stdout, cmd.Stderr = k.out, k.out
	if err := k.Start(cmd); err != nil {
		k.t.Fatal(err)
	}
}

func (k *killable) output() string {
	b, _ := os.ReadFile(k.out.Name())
	return string(b)
}

func runVendCrash(t *testing.T, bin string, c vendCrash) {
	dir := t.TempDir()
	out, err := os.Create(filepath.Join(dir, "kioskd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	k := &killable{t: t, bin: bin, out: out}
	// The kill happens once; the restarted kioskd's calls go through.
	trap := &proctest.Trap{Kill: func(proctest.At) { k.Kill() }}
	if c.simKill.Method != "" {
		trap.Arm(c.simKill)
	}
	srv := simtest.NewServer(t, sim.Config{SuccessDelay: 100 * time.Millisecond, CommitTTL: 3 * time.Second,
		Middleware: trap.Middleware})

	m := vmctest.NewMachine(t, vmcsim.Config{Link: filepath.Join(dir, "mdb0"), DispenseTime: 50 * time.Millisecond, SetupDelay: 20 * time.Millisecond})
	qrScanner := serialtest.New(t, "")
	k.config = filepath.Join(srv.Dir, "devices.yaml")
	yaml := fmt.Sprintf(`kassa:
  id: %s
%sjournal: %s
api:
  socket: %s
scanners:
  - name: qr
    driver: serial
    port: %s
displays:
  - name: log
    driver: log
%stimeouts:
  handover: 30s
log:
  level: debug
`, sim.KassaID(1), srv.ServiceYAML(), filepath.Join(dir, "journal.db"), filepath.Join(dir, "api.sock"), qrScanner.Slave.Name(), m.VendingYAML(30*time.Second))
	if err := os.WriteFile(k.config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	api := unixClient(filepath.Join(dir, "api.sock"))
	fail := func(format string, args ...any) {
		t.Helper()
		b, _ := json.MarshalIndent(srv.State(), "", "  ")
		t.Fatalf(format+"\nsimulator: %s\nmachine: %+v\nkioskd:\n%s", append(args, b, m.Snapshot().Outcomes, k.output())...)
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				fail("no %s within 30s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	ready := func() bool { return healthy(api) }

	k.start()
	defer func() {
		if !k.Killed() {
			k.Kill()
		}
	}()
	waitUntil("a ready kioskd", ready)
	switch {
	case c.hang:
		err = m.SetDispense(vmcsim.DispenseHang)
	case c.fail:
		err = m.SetDispense(vmcsim.DispenseFail)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Select(11); err != nil {
		t.Fatal(err)
	}
	waitUntil("the price set", func() bool { return strings.Contains(stateOf(api), `"pending_amount":8000`) })
	if _, err := qrScanner.Master.Write([]byte(srv.Payload(t, "vend-crash") + "\r")); err != nil {
		t.Fatal(err)
	}
	if c.hang {
		wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := m.Wait(wctx, func(s vmcsim.Snapshot) bool { return s.Session.Phase == "dispensing" })
		wcancel()
		if err != nil {
			fail("no vend approved: %v", err)
		}
		k.Kill()
		if err := m.FinishVend(c.result); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil("the kill", k.Killed)

	k.start()
	waitUntil("kioskd ready after the restart", ready)
	waitUntil("both ends settled", func() bool {
		var st payment.Status
		if json.Unmarshal([]byte(stateOf(api)), &st) != nil || !st.Ready || !(st.State == payment.Idle || st.State.Terminal()) {
			return false
		}
		s := m.Snapshot()
		return len(s.Outcomes) == 1 && s.Session.Phase == "" && simSettled(srv.State())
	})
	k.Kill() // the end: nothing may depend on a clean stop

	o, st := m.Snapshot().Outcomes[0], srv.State()
	confirmed := 0
	for _, p := range st.Purchases {
		if p.Confirmed {
			confirmed++
			if p.Amount != 8000 || o.Approved != "80.00" {
				fail("confirmed %d kopecks for a vend approved at %q", p.Amount, o.Approved)
			}
		}
	}
	switch {
	case o.Dispensed != c.dispensed:
		fail("machine: %+v, want dispensed=%v", o, c.dispensed)
	case c.hang && confirmed != 1:
		fail("an approved vend without a result must be confirmed (MDB), %d confirmed", confirmed)
	case !c.hang && o.Dispensed != (confirmed == 1):
		fail("inconsistent: dispensed=%v, %d payments confirmed", o.Dispensed, confirmed)
	case confirmed > 1 || len(st.Purchases) != 1:
		fail("%d purchases, %d confirmed: want exactly one", len(st.Purchases), confirmed)
	}
	if want := fmt.Sprintf(`"phase": %q`, c.phase); !strings.Contains(k.output(), want) {
		fail("the restart did not recover the sale from %s", c.phase)
	}
}

// stateOf is GET /v1/state, "" while kioskd does not answer.
func stateOf(c *http.Client) string {
	resp, err := c.Get("http://kioskd/v1/state")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// simSettled: there is a purchase, and every purchase is settled.
func simSettled(st sim.State) bool { return len(st.Purchases) > 0 && len(st.Unsettled()) == 0 }
