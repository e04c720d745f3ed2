package chaostest

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

// saleKind is what the host does with a sale.
type saleKind int

const (
	kindPaid             saleKind = iota // amount, paid, handed over, fiscal, refunds
	kindDeclined                         // an amount the simulator declines (…51 kopecks)
	kindProcessingCancel                 // the payment stays processing (…52): the host cancels it
	kindHandoverRefused                  // paid, but the goods could not be given: hand-over false
	kindCancelPaid                       // paid, then the host cancels instead of handing over
	kindCancelWaiting                    // the host cancels before sending the amount
	kindPaidElsewhere                    // the customer paid another way before the release
	kindReplaced                         // another QR scanned before the amount replaces the sale
	kindRescan                           // the previous sale's QR scanned again: must not be committed twice
)

var kindNames = [...]string{"paid", "declined", "processing_cancel", "handover_refused", "cancel_paid",
	"cancel_waiting", "paid_elsewhere", "replaced", "rescan"}

func (k saleKind) String() string { return kindNames[k] }

// kindWeights: mostly paid sales, every other path often enough to matter.
var kindWeights = [...]int{40, 7, 6, 6, 4, 7, 8, 6, 6}

// Steps of a sale, where faults are injected and kills planned.
const (
	stepScan   = iota // the amount (when sent first) and the scan
	stepAmount        // the amount, or the cancel, paid-elsewhere or replacing scan instead
	stepPaid          // the hand-over (or the cancel while paying or paid)
	stepFiscal        // the fiscal record of a completed sale
	stepRefund        // refunds of a completed sale
	numSteps
)

var stepNames = [numSteps]string{"scan", "amount", "paid", "fiscal", "refund"}

type killMode int

const (
	killNone      killMode = iota
	killBetween            // before the step's request
	killAfterSend          // right after the step's request was written, before its answer
	killAtCall             // when the simulator receives a chosen call (before or after it takes effect)
)

type killPlan struct {
	mode   killMode
	step   int
	delay  time.Duration // killAfterSend: how long after the request was written
	method string        // killAtCall: a sim.Method*
	after  bool          // killAtCall: after the call took effect (its answer is lost)
}

func (k killPlan) String() string {
	switch k.mode {
	case killBetween:
		return "between"
	case killAfterSend:
		return "after_send"
	case killAtCall:
		if k.after {
			return "after_" + k.method
		}
		return "before_" + k.method
	}
	return "none"
}

// refundPlan is one refund request of a completed sale.
type refundPlan struct {
	amount    int64 // kopecks; may exceed what is left, the service must refuse it
	requestID bool  // the host sends an idempotency key
	header    bool  // ...as the Idempotency-Key header rather than request_id
	twice     bool  // sent twice at once
	repeat    bool  // sent again afterwards with the same key
}

// plan is everything the seed decides about one sale.
type plan struct {
	index       int
	kind        saleKind
	amount      int64
	amountFirst bool           // the host sends the amount before the scan
	viaPTY      bool           // the scan comes over the serial scanner, not POST /v1/scan
	scanForm    int            // index into scanForms for a serial scan
	apiForm     int            // index into apiForms for POST /v1/scan
	tcp         bool           // host requests over loopback TCP with the token
	twice       [numSteps]bool // the step's host request is sent twice at once
	faults      [numSteps][]sim.Fault
	kill        killPlan
	fiscal      int  // 0 none, 1 v1, 2 v2 (with the receipt)
	fiscalByID  bool // name the purchase in the fiscal request
	refunds     []refundPlan
	refundDelay time.Duration // before the first refund
}

// faultMethods are every method of the simulator a fault can hit.
var faultMethods = []string{sim.MethodAuth, sim.MethodCommit, sim.MethodRelease, sim.MethodStatus,
	sim.MethodKassaStatus, sim.MethodFiscalV1, sim.MethodFiscalV2, sim.MethodRefund,
	sim.MethodRefundStatus, sim.MethodRefundKassaStatus, sim.MethodPing}

// newPlan draws sale i's plan from its own stream of the seed, so a plan
// does not depend on how the sales before it went.
func newPlan(seed uint64, i int) plan {
	r := rand.New(rand.NewPCG(seed, uint64(i)))
	p := plan{index: i, kind: saleKind(weighted(r, kindWeights[:]))}
	p.amount = 100 + r.Int64N(500_000)
	switch p.kind {
	case kindDeclined:
		p.amount = p.amount/100*100 + 51
	case kindProcessingCancel:
		p.amount = p.amount/100*100 + 52
	default:
		if m := p.amount % 100; m == 51 || m == 52 {
			p.amount += 10
		}
	}
	// A sale with its amount first is released at once: nothing to replace.
	p.amountFirst = r.IntN(10) < 3 && p.kind != kindReplaced
	p.viaPTY = r.IntN(10) < 3
	p.scanForm = r.IntN(len(scanForms))
	p.apiForm = r.IntN(len(apiForms))
	p.tcp = r.IntN(10) < 3
	for s := range numSteps {
		p.twice[s] = r.IntN(100) < 15
		if r.IntN(100) < 30 {
			for range 1 + r.IntN(2) {
				p.faults[s] = append(p.faults[s], newFault(r))
			}
		}
	}
	p.fiscal = weighted(r, []int{15, 60, 25})
	p.fiscalByID = r.IntN(2) == 0
	if r.IntN(100) < 35 {
		for range 1 + r.IntN(3) {
			rp := refundPlan{requestID: r.IntN(100) < 85, twice: r.IntN(100) < 20, repeat: r.IntN(100) < 15}
			rp.header = rp.requestID && r.IntN(3) == 0
			switch v := r.IntN(100); {
			case v < 60:
				rp.amount = 1 + r.Int64N(max(p.amount/2, 1))
			case v < 85:
				rp.amount = p.amount
			default:
				rp.amount = p.amount + 1 + r.Int64N(1000) // over the amount: refused
			}
			p.refunds = append(p.refunds, rp)
		}
	}
	p.refundDelay = time.Duration(r.IntN(50)) * time.Millisecond
	if r.IntN(100) < 30 {
		p.kill = p.newKill(r)
	}
	return p
}

// stepCalls are the calls the service sees around each step, for a kill
// at a call.
var stepCalls = [numSteps][]string{
	stepScan:   {sim.MethodCommit},
	stepAmount: {sim.MethodRelease, sim.MethodStatus, sim.MethodKassaStatus},
	stepPaid:   {sim.MethodKassaStatus, sim.MethodStatus},
	stepFiscal: {sim.MethodFiscalV1, sim.MethodFiscalV2},
	stepRefund: {sim.MethodRefund, sim.MethodRefundStatus, sim.MethodRefundKassaStatus},
}

// newKill picks a kill at a step this sale reaches with a request to send.
func (p plan) newKill(r *rand.Rand) killPlan {
	steps := []int{stepScan, stepAmount}
	switch p.kind {
	case kindPaid, kindProcessingCancel, kindHandoverRefused, kindCancelPaid:
		steps = append(steps, stepPaid)
	}
	if p.kind == kindPaid && p.fiscal > 0 {
		steps = append(steps, stepFiscal)
	}
	if p.kind == kindPaid && len(p.refunds) > 0 {
		steps = append(steps, stepRefund)
	}
	k := killPlan{mode: killMode(1 + r.IntN(3)), step: steps[r.IntN(len(steps))],
		delay: time.Duration(r.IntN(3000)) * time.Microsecond, after: r.IntN(2) == 0}
	calls := stepCalls[k.step]
	k.method = calls[r.IntN(len(calls))]
	return k
}

// newFault draws one fault: a delay past the call deadline, a 500 or 503,
// a dropped connection or an expired session, on any method.
func newFault(r *rand.Rand) sim.Fault {
	f := sim.Fault{Method: faultMethods[r.IntN(len(faultMethods))], Count: 1 + r.IntN(2)}
	switch r.IntN(5) {
	case 0:
		f.Kind, f.Delay = sim.FaultDelay, callTimeout+time.Duration(100+r.IntN(1000))*time.Millisecond
	case 1:
		f.Kind, f.Status = sim.FaultStatus, http.StatusInternalServerError
	case 2:
		f.Kind, f.Status = sim.FaultStatus, http.StatusServiceUnavailable
	case 3:
		f.Kind = sim.FaultDrop
	default:
		f.Kind = sim.FaultExpireSession
	}
	return f
}

func weighted(r *rand.Rand, w []int) int {
	total := 0
	for _, x := range w {
		total += x
	}
	n := r.IntN(total)
	for i, x := range w {
		if n < x {
			return i
		}
		n -= x
	}
	panic(fmt.Sprint("weighted: ", w))
}
