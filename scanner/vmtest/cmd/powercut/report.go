package main

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// printCut prints a cut's line: its seed and plan, what it hit, what the
// disk lost, and how the next boot recovered.
func printCut(c *cutResult) {
	verdict := "OK"
	if len(c.violations) > 0 {
		verdict = fmt.Sprintf("%d VIOLATION(S)", len(c.violations))
	}
	disk := c.disk
	if disk == "" {
		disk = "-"
	}
	if c.committed != "" {
		disk += "; the commit's sale " + c.committed
	}
	fmt.Printf("cut %3d seed %-20d %-40s hit %-28s disk: %-44s | boot %4.1fs mount %3dms, journal open %v → %v, new orphans %d, settled %4.1fs | %s\n",
		c.n, c.plan.Seed, c.fired, c.hit, disk, c.boot.Seconds(), c.mount.Milliseconds(), c.open, c.recovery, c.orphans, c.settle.Seconds(), verdict)
	for _, v := range c.violations {
		fmt.Println("    violation: " + strings.ReplaceAll(v, "\n", "\n    "))
	}
}

// summarize prints the run's totals and fails it on any violation.
func summarize(o options, rs []*cutResult, final []string, took time.Duration) error {
	fmt.Println("==== power cuts ====")
	kinds := map[string]int{}
	fates := map[string]int{}
	hits := map[string]int{}
	bad, orphans := 0, 0
	commits := map[string]int{}
	for _, c := range rs {
		if c.committed != "" {
			commits[c.committed]++
		}
		kinds[string(c.plan.Kind)]++
		if strings.HasPrefix(c.fired, "fallback") {
			kinds["(fell back to a timed cut)"]++
		}
		for _, f := range c.recovery {
			fates[f]++
		}
		if len(c.recovery) == 0 {
			fates["nothing open"]++
		}
		hits[c.hit]++
		orphans += c.orphans
		if len(c.violations) > 0 {
			bad++
		}
	}
	fmt.Printf("cuts: %d in %s (%.1f s per cut), seed %d, disk %s\n", len(rs), took.Round(time.Second), took.Seconds()/float64(max(len(rs), 1)), o.seed, o.diskMode)
	fmt.Printf("cut by: %s\n", counts(kinds))
	fmt.Printf("the cut hit (host's view): %s\n", counts(hits))
	fmt.Printf("recovery (journal phase → purchase at the service): %s\n", counts(fates))
	fmt.Printf("cuts at a commit: the sale's record after the cut: %s\n", counts(commits))
	fmt.Printf("orphan commits (at the service, not in the journal; the service expired them all by the end): %d\n", orphans)
	fmt.Printf("cuts with violations: %d; final check: %d violation(s)\n", bad, len(final))
	for _, v := range final {
		fmt.Println("    final violation: " + v)
	}
	if bad > 0 || len(final) > 0 {
		return fmt.Errorf("%d cut(s) with violations, %d in the final check (replay a cut with -cut SEED)", bad, len(final))
	}
	fmt.Println("ALL PASS")
	return nil
}

// counts renders a tally, most frequent first.
func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || m[keys[i]] == m[keys[j]] && keys[i] < keys[j] })
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", k, m[k])
	}
	return b.String()
}
