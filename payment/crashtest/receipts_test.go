package crashtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/fiscal"
	"github.com/kioskd/kioskd/payment/fiscal/atol"
	"github.com/kioskd/kioskd/payment/fiscal/fiscalsim"
	fsimtest "github.com/kioskd/kioskd/payment/fiscal/fiscalsim/simtest"
	"github.com/kioskd/kioskd/payment/proctest"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

// fiscalEnv names the ATOL web server the agent issues its own receipts
// through; without it the host sends fiscal data.
const fiscalEnv = "CRASH_FISCAL_URL"

// ownReceipts is the agent's receipt configuration from the environment.
func ownReceipts() (payment.Receipts, error) {
	url := os.Getenv(fiscalEnv)
	if url == "" {
		return payment.Receipts{}, nil
	}
	p, err := atol.New(atol.Config{URL: url, Timing: fiscal.Timing{PollFirst: 5 * time.Millisecond, CallTimeout: 2 * time.Second}}, nil)
	if err != nil {
		return payment.Receipts{}, err
	}
	return payment.Receipts{Provider: p, Taxation: fiscal.TaxUSNIncome, VAT: fiscal.VATNone, Item: "Товар",
		MachineNumber: "VM-1", Place: "Холл", Address: "Москва", Wait: 3 * time.Second}, nil
}

// kktKill is where the agent dies around a call to the ККТ: the post or a
// result poll of the sell or sellReturn task.
type kktKill struct {
	call  string // fiscalsim.AtolPost or fiscalsim.AtolGet
	task  string // "sell" or "sellReturn"
	after bool
}

// kktKiller kills the agent at its point, once, in front of the fiscal
// simulator. It learns which uuids are tasks of the kind from the posts.
type kktKiller struct {
	a     *agent
	point *kktKill

	mu    sync.Mutex
	armed bool
	fired bool
	tasks map[string]string // uuid → task type
}

func (kk *kktKiller) arm() {
	kk.mu.Lock()
	kk.armed = true
	kk.mu.Unlock()
}

func (kk *kktKiller) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		call := fiscalsim.AtolGet
		uuid := ""
		if r.Method == http.MethodPost {
			call = fiscalsim.AtolPost
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			var rb atol.RequestBody
			if json.Unmarshal(body, &rb) == nil && len(rb.Request) > 0 {
				uuid = rb.UUID
				kk.mu.Lock()
				kk.tasks[uuid] = rb.Request[0].Type
				kk.mu.Unlock()
			}
		} else if i := strings.LastIndexByte(r.URL.Path, '/'); i >= 0 {
			uuid = r.URL.Path[i+1:]
		}
		kk.mu.Lock()
		p := kk.point
		hit := kk.armed && !kk.fired && p.call == call && kk.tasks[uuid] == p.task
		if hit {
			kk.fired = true
		}
		kk.mu.Unlock()
		proctest.ServeOrKill(w, r, next, hit, p.after, kk.a.kill)
	})
}

// receiptScenario kills the agent around one call of the kassa's own
// receipts: at the ККТ (kkt) or at Smart Pay (the fiscal records, sp).
type receiptScenario struct {
	name   string
	refund bool
	kkt    *kktKill
	sp     *proctest.At
}

func receiptScenarios() []receiptScenario {
	var out []receiptScenario
	for _, after := range []bool{false, true} {
		w := map[bool]string{false: "before", true: "after"}[after]
		for _, task := range []string{"sell", "sellReturn"} {
			for _, call := range []string{fiscalsim.AtolPost, fiscalsim.AtolGet} {
				out = append(out, receiptScenario{name: w + "_kkt_" + call + "_" + task, refund: task == "sellReturn",
					kkt: &kktKill{call: call, task: task, after: after}})
			}
		}
		for _, m := range []string{sim.MethodFiscalV1, sim.MethodFiscalV2} {
			out = append(out, receiptScenario{name: w + "_" + m, sp: &proctest.At{Method: m, After: after}})
		}
	}
	return out
}

// TestKillAroundReceipts kills the agent (SIGKILL of its process) before
// and after every call of its own fiscal receipts, the sale's and the
// refund's: after a restart on the same journal the ККТ holds exactly one
// document per sale and per refund, Smart Pay holds their records (the
// registration number and fiscal sign the ККТ made), and nothing else.
func TestKillAroundReceipts(t *testing.T) {
	for _, sc := range receiptScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			runReceiptScenario(t, sc)
		})
	}
}

func runReceiptScenario(t *testing.T, sc receiptScenario) {
	a, srv := newAgent(t, 50*time.Millisecond)
	kk := &kktKiller{a: a, point: sc.kkt, tasks: map[string]string{}}
	if sc.kkt == nil {
		kk.point = &kktKill{} // never hits
	}
	kkt := fsimtest.NewAtol(t, fiscalsim.Config{Middleware: kk.middleware}, zap.NewNop())
	a.env = append(a.env, fiscalEnv+"="+kkt.URL)
	a.start()
	h := &host{handedOver: map[string]bool{}, handAcked: map[string]bool{}, fiscalAcked: map[string]bool{}}

	issued := func() bool {
		st, err := a.state()
		return err == nil && st.ReceiptsPending == 0 && st.FiscalPending == 0
	}
	arm := func() {
		kk.arm()
		if sc.sp != nil {
			a.trap.Arm(*sc.sp)
		}
	}
	var paidID string
	if sc.refund {
		paidID = sale(t, a, srv, h, 10000, false)
		if paidID == "" {
			t.Fatalf("the preparatory sale did not complete; output:\n%s", a.output())
		}
		waitFor(t, a, "the sale's receipt and records", issued)
		arm()
		h.refunds++
		a.do("POST", "/v1/refunds", fmt.Sprintf(`{"purchase_id": %q, "amount": 4000}`, paidID))
	} else {
		arm()
		sale(t, a, srv, h, 10000, false)
	}
	waitFor(t, a, "the kill", a.proc.Killed)

	a.start()
	waitFor(t, a, "recovery, every receipt issued and every record sent", func() bool {
		st, err := a.state()
		return err == nil && st.Ready && (st.State == payment.Idle || st.State.Terminal()) && settled(srv.State(), h) && issued()
	})
	a.stop()
	checkReceipts(t, sc, srv.State(), kkt.Sim.State(), h, a.output())
}

// checkReceipts: one ККТ document per completed sale and per refund, and at
// Smart Pay a v1 and a v2 record for each, carrying that document's data.
func checkReceipts(t *testing.T, sc receiptScenario, sp sim.State, kkt fiscalsim.State, h *host, out string) {
	t.Helper()
	sales, refunds := 0, 0
	for _, p := range sp.Purchases {
		if p.Confirmed {
			sales++
		}
	}
	for _, r := range sp.Refunds {
		if r.Confirmed {
			refunds++
		}
	}
	var sells, returns int
	bySign := map[string]fiscalsim.Receipt{}
	for _, rc := range kkt.Receipts {
		if rc.Type == "sell" {
			sells++
		} else {
			returns++
		}
		bySign[rc.Fiscal.FiscalSign] = rc
	}
	if sells != sales || returns != refunds {
		t.Errorf("the ККТ holds %d sell and %d sellReturn documents for %d sales and %d refunds", sells, returns, sales, refunds)
	}
	// The fiscal methods carry no idempotency key: a record the service
	// stored before the agent died, and before the journal noted it, is
	// sent again. Only a kill after a fiscal call may leave two copies.
	maxCopies := 1
	if sc.sp != nil && sc.sp.After {
		maxCopies = 2
	}
	copies := map[string]int{}
	for _, f := range sp.Fiscal {
		sign := f.FiscalSign
		if f.Version == 2 && f.Receipt != nil {
			sign = f.Receipt.FiscalSign
		}
		rc, ok := bySign[sign]
		switch {
		case !ok:
			t.Errorf("Smart Pay holds a v%d record with fiscal sign %q that no ККТ document has", f.Version, sign)
		case f.Version == 1 && f.KKTRegNumber != rc.Fiscal.RegistrationNumber:
			t.Errorf("v1 record: registration number %s, the ККТ's is %s", f.KKTRegNumber, rc.Fiscal.RegistrationNumber)
		}
		copies[fmt.Sprintf("v%d/%s", f.Version, sign)]++
	}
	for sign := range bySign {
		for _, v := range []string{"v1/", "v2/"} {
			if n := copies[v+sign]; n < 1 || n > maxCopies {
				t.Errorf("%s%s: %d records at Smart Pay, want 1 (up to %d)", v, sign, n, maxCopies)
			}
		}
	}
	for _, task := range kkt.Tasks {
		if (task.Type == "sell" || task.Type == "sellReturn") && task.Posts > 1 {
			t.Logf("task %s (%s) posted %d times: one document", task.ID, task.Type, task.Posts)
		}
	}
	if t.Failed() {
		b, _ := json.MarshalIndent(map[string]any{"smartpay": sp, "kkt": kkt}, "", "  ")
		t.Logf("state:\n%s\nagent output:\n%s", b, out)
	}
}
