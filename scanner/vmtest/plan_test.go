package vmtest

import (
	"strings"
	"testing"
)

// A cut is a function of its seed, and the seeds of a run's cuts differ, so
// a printed seed replays its cut; over many seeds every kind comes up.
func TestPlanCutIsItsSeed(t *testing.T) {
	kinds := map[CutKind]int{}
	seeds := map[uint64]bool{}
	for i := 1; i <= 2000; i++ {
		s := CutSeed(42, i)
		if seeds[s] {
			t.Fatalf("cut %d repeats a seed", i)
		}
		seeds[s] = true
		p := PlanCut(s)
		if p != PlanCut(s) {
			t.Fatalf("seed %d gives two plans", s)
		}
		kinds[p.Kind]++
		switch p.Kind {
		case CutTimed:
			if p.After <= 0 {
				t.Fatalf("timed cut with no delay: %+v", p)
			}
		case CutCommit, CutCall:
			if p.Method == "" || p.Nth < 1 {
				t.Fatalf("call cut without a call: %+v", p)
			}
		case CutFlush:
			if p.Nth < 1 {
				t.Fatalf("flush cut without a flush: %+v", p)
			}
		}
		if p.Keep < 0 || p.Keep > 1 {
			t.Fatalf("keep %g", p.Keep)
		}
	}
	for _, k := range []CutKind{CutTimed, CutCommit, CutCall, CutFlush} {
		if kinds[k] < 200 {
			t.Errorf("%s: %d of 2000 cuts", k, kinds[k])
		}
	}
	if CutSeed(1, 1) == CutSeed(2, 1) {
		t.Error("two runs share their first cut")
	}
	for _, k := range []CutKind{CutTimed, CutCommit, CutCall, CutFlush} {
		p := PlanCutOf(7, k)
		if p.Kind != k || PlanCut(p.Seed) != p {
			t.Errorf("PlanCutOf(7, %s) = %+v", k, p)
		}
	}
	if got := PlanCut(CutSeed(42, 1)).String(); !strings.Contains(got, "keep=") {
		t.Errorf("String() = %q", got)
	}
}

func TestGuestLines(t *testing.T) {
	rep := BootReport{MountMillis: 12, Journal: true, Sales: []JournalSale{{ID: "1", Phase: "done"}, {ID: "2", Phase: "released"}}}
	kind, _, got, err := ParseGuestLine("Booting from ROM.." + rep.Line())
	if err != nil || kind != "boot" || len(got.Sales) != 2 || got.MountMillis != 12 {
		t.Fatalf("boot line: %q %+v %v", kind, got, err)
	}
	if open := got.Open(); len(open) != 1 || open[0].ID != "2" {
		t.Errorf("open sales %+v", open)
	}
	if kind, rest, _, _ := ParseGuestLine(GuestLinePrefix + "fatal mount failed"); kind != "fatal" || rest != "mount failed" {
		t.Errorf("fatal line: %q %q", kind, rest)
	}
	if kind, _, _, _ := ParseGuestLine("kioskd| INFO ready"); kind != "" {
		t.Errorf("a kioskd line parsed as %q", kind)
	}
}
