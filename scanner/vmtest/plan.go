package vmtest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"time"

	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

// CutKind is what times a power cut.
type CutKind string

// Cut kinds.
const (
	// CutTimed: a random time after the sales start.
	CutTimed CutKind = "timed"
	// CutCommit: the moment a commit reaches the service, before or after
	// the service handles it. Once the agent fsyncs a sale's record
	// alongside its commit instead of before it, this is the window
	// between the commit and the fsync.
	CutCommit CutKind = "commit"
	// CutCall: the moment another call (release, status, kassa/status,
	// fiscal, refund…) reaches the service, before or after it takes effect.
	CutCall CutKind = "call"
	// CutFlush: the moment the n-th disk flush arrives, before it is
	// applied: whatever the guest is fsyncing is lost (or half kept).
	CutFlush CutKind = "flush"
)

// CutPlan is one power cut, drawn from its seed by PlanCut.
type CutPlan struct {
	Seed    uint64
	Kind    CutKind
	After   time.Duration // CutTimed
	Method  string        // CutCommit, CutCall: a sim.Method* name
	Detail  string        // kassa/status calls: "success" or "cancel"
	Handled bool          // CutCommit, CutCall: the service handles the call first (its answer is lost)
	Nth     int           // CutCommit, CutCall, CutFlush: which one after the sales start (1-based)
	Keep    float64       // probability that a piece of the disk's write cache survives
}

// String is the plan in a few words, as the per-cut summary prints it.
func (p CutPlan) String() string {
	var s string
	switch p.Kind {
	case CutTimed:
		s = fmt.Sprintf("timed %s", p.After.Round(10*time.Millisecond))
	case CutFlush:
		s = fmt.Sprintf("flush#%d", p.Nth)
	default:
		m := p.Method
		if p.Detail != "" {
			m += "(" + p.Detail + ")"
		}
		when := "arriving"
		if p.Handled {
			when = "handled"
		}
		s = fmt.Sprintf("%s %s#%d %s", p.Kind, m, p.Nth, when)
	}
	return fmt.Sprintf("%s keep=%g", s, p.Keep)
}

// CutSeed derives the seed of cut i (1-based) from the run's seed
// (splitmix64), so any one cut can be replayed on its own by its seed.
func CutSeed(run uint64, i int) uint64 {
	z := run + uint64(i)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// RNG returns the generator of one purpose ("plan", "sales", "disk") of
// the cut with this seed: the same seed gives the same plan, sale mix and
// choice of the cache pieces that survive.
func RNG(seed uint64, purpose string) *rand.Rand {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(purpose); i++ {
		h = (h ^ uint64(purpose[i])) * 1099511628211
	}
	return rand.New(rand.NewPCG(seed, h))
}

// PlanCut draws a cut: a quarter at commits (the window that matters for
// the journal's fsync), a third timed, the rest at other calls and at disk
// flushes. The disk keeps none, half or all of its cache.
func PlanCut(seed uint64) CutPlan {
	r := RNG(seed, "plan")
	p := CutPlan{Seed: seed, Keep: []float64{0, 0, 0.5, 0.5, 1}[r.IntN(5)]}
	switch n := r.IntN(100); {
	case n < 25:
		p.Kind, p.Method, p.Nth, p.Handled = CutCommit, sim.MethodCommit, 1+r.IntN(2), r.IntN(3) > 0
	case n < 60:
		p.Kind, p.After = CutTimed, 300*time.Millisecond+time.Duration(r.Int64N(int64(7*time.Second)))
	case n < 85:
		calls := []struct{ method, detail string }{
			{sim.MethodRelease, ""}, {sim.MethodRelease, ""}, {sim.MethodStatus, ""}, {sim.MethodStatus, ""},
			{sim.MethodKassaStatus, "success"}, {sim.MethodKassaStatus, "success"}, {sim.MethodKassaStatus, "cancel"},
			{sim.MethodFiscalV1, ""}, {sim.MethodFiscalV2, ""}, {sim.MethodRefund, ""}, {sim.MethodRefundKassaStatus, "success"},
		}
		c := calls[r.IntN(len(calls))]
		p.Kind, p.Method, p.Detail, p.Nth, p.Handled = CutCall, c.method, c.detail, 1+r.IntN(3), r.IntN(2) == 0
	default:
		p.Kind, p.Nth = CutFlush, 1+r.IntN(40)
	}
	return p
}

// PlanCutOf is PlanCut restricted to one kind ("" is any): it draws from
// seeds derived from seed until the kind matches. The plan's Seed replays it
// with PlanCut.
func PlanCutOf(seed uint64, kind CutKind) CutPlan {
	p := PlanCut(seed)
	for i := 1; kind != "" && p.Kind != kind; i++ {
		p = PlanCut(CutSeed(seed, i))
	}
	return p
}

// Accel is QEMU's accelerator: TCG, unless KIOSKD_VM_KVM=1 and the CPU
// advertises vmx/svm (here /dev/kvm is a nested paravirtual KVM on which
// the guest dies in emulation failures; VMTEST.md).
func Accel() string {
	if os.Getenv("KIOSKD_VM_KVM") != "1" {
		return "tcg"
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil && regexp.MustCompile(`\b(vmx|svm)\b`).Match(b) {
		if _, err := os.Stat("/dev/kvm"); err == nil {
			return "kvm"
		}
	}
	return "tcg"
}
