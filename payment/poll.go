package payment

import (
	"cmp"
	"math"
	"slices"
	"sync"
	"time"
)

// The status poller spends a rate-limited budget of status requests where
// this kiosk's payments have been completing: a kiosk's payments through one
// service finish after a characteristic delay (SBP processing), so checking
// densely around that delay and sparsely elsewhere shows "paid" sooner than
// a fixed schedule for the same number of requests.
//
// The guarantee, made by two limits that every check goes through:
//
//  1. The Flow's bucket: pollBurst tokens, refilled at one per second, one
//     spent per status request (also between sales, so a fresh wait starts
//     with a full bucket once the kiosk has been idle for pollBurst seconds).
//     Over any interval of W seconds the flow sends at most pollBurst + W
//     purchase status requests (refunds poll on their own, pollDelay).
//  2. The wait's ledger: the k-th check after a release (k = 1, 2, …) is sent
//     no earlier than (k − waitCredit) × waitEvery after it. So in the first
//     W seconds of a wait there are at most waitCredit + W/waitEvery =
//     5 + 0.75·W checks, which is ≤ W for every W ≥ 20 s: a wait of 20 s or
//     longer averages at most one request per second (at most 0.79/s over
//     the 120 s payment timeout).
//
// Within those limits the schedule (nextPoll) makes the first check 100 ms
// after the release (later only if the bucket is empty), checks every
// ~100–150 ms inside the window where past payments completed, every 2 s
// before it and every 1.3 s after it. With no history it is the fixed
// schedule pollDelay describes (until, ~48 s into a wait, the ledger slows
// it to 0.75/s).
const (
	pollBurst   = 6                       // bucket capacity, tokens
	pollRefill  = time.Second             // one token per second
	waitCredit  = 5                       // checks a wait may make ahead of its steady rate
	waitEvery   = 4 * time.Second / 3     // a wait's steady rate: 0.75 checks/s
	firstCheck  = 100 * time.Millisecond  // always: many payments are already done
	denseGap    = 100 * time.Millisecond  // closest spacing inside the learned window
	sparseGap   = 1300 * time.Millisecond // spacing after it (and with no history)
	earlyGap    = 2 * time.Second         // spacing before it: few payments complete there
	historySize = 32                      // completions remembered
)

// span is when one paid purchase completed, since its release: after lo
// (the last check that answered "not yet") and no later than hi (the check
// that answered success). The true instant is somewhere in between.
type span struct{ lo, hi time.Duration }

// window is where past payments completed: the dense part of the schedule.
type window struct{ lo, hi time.Duration }

// learnedWindow is where past payments completed: from the 10th to the
// 90th percentile of their estimated instants (each span's middle), widened
// by 25 ms, 2.5% (payment times scale with the delay) and a quarter of the
// median span (how precisely they were seen). Each span weighs
// 1/√width: the first payments, seen by the sparse no-history schedule, are
// known to ±0.65 s and would otherwise keep the window wide until they age
// out. The weight also halves every 4 sales back, so that when the
// service's delay changes the window reaches the new one within ~3 sales
// (1/width took ~17: the new completions, seen sparsely, weighed little);
// narrowing onto it takes ~20 (TestPollFollowsAChangedDelay).
// ok is false with no history.
func learnedWindow(hist []span) (w window, ok bool) {
	if len(hist) == 0 {
		return window{}, false
	}
	type est struct {
		at     time.Duration
		weight float64
	}
	ests := make([]est, len(hist))
	halves := make([]time.Duration, len(hist))
	total := 0.0
	for i, s := range hist {
		width := max(s.hi-s.lo, denseGap)
		recency := math.Exp2(float64(i-len(hist)) / 4) // halves every 4 sales back
		ests[i] = est{at: s.lo + (s.hi-s.lo)/2, weight: recency / math.Sqrt(width.Seconds())}
		halves[i] = (s.hi - s.lo) / 2
		total += ests[i].weight
	}
	slices.SortFunc(ests, func(a, b est) int { return cmp.Compare(a.at, b.at) })
	slices.Sort(halves)
	lo, hi := ests[0].at, ests[len(ests)-1].at
	cum, loSet := 0.0, false
	for _, e := range ests {
		cum += e.weight
		if !loSet && cum >= 0.1*total {
			lo, loSet = e.at, true
		}
		if cum >= 0.9*total {
			hi = e.at
			break
		}
	}
	margin := 25*time.Millisecond + hi/40 + halves[(len(halves)-1)/2]/2
	return window{lo: max(lo-margin, 0), hi: hi + margin}, true
}

// pollWait is what the schedule knows of the current wait.
type pollWait struct {
	n    int           // checks sent since the release
	last time.Duration // when the last one was sent, since the release
}

// nextPoll returns when (since the release) to send the next status check of
// wait w, at now (since the release), given the completions in hist and the
// bucket's tokens at now. It is pure, so the tests run it on a simulated
// clock. The result is never before now.
func nextPoll(now time.Duration, w pollWait, hist []span, tokens float64) time.Duration {
	var want time.Duration
	win, learned := learnedWindow(hist)
	if learned {
		// Start the dense checks up to denseGap early, by a pseudo-random
		// phase drawn from the newest completion: anchored at a fixed
		// point the grid can lock just before a fixed delay, missing
		// every payment by almost a whole gap.
		h := uint64(hist[len(hist)-1].hi) * 0x9E3779B97F4A7C15
		phase := float64(h>>11) / (1 << 53)
		win.lo = max(win.lo-time.Duration(phase*float64(denseGap)), 0)
	}
	switch {
	case w.n == 0:
		want = firstCheck
	case !learned:
		want = w.last + pollDelay(w.n)
	case w.last < win.lo:
		// Before the window: sparser still, saving the ledger's credit
		// for the window, and no check just before its start.
		want = w.last + earlyGap
		if want+earlyGap/2 > win.lo {
			want = win.lo
		}
	case w.last < win.hi:
		// Inside: spread the checks the ledger will allow by the window's
		// end over the rest of it, the last one at the end, no closer
		// than denseGap (a wide window, learned from scattered payments,
		// gets fewer, wider-spaced checks).
		credit := math.Floor(waitCredit + float64(win.hi)/float64(waitEvery) - float64(w.n))
		gap := sparseGap
		if credit >= 1 {
			gap = min(max(time.Duration(float64(win.hi-w.last)/credit), denseGap), sparseGap)
		}
		want = w.last + gap
	default:
		want = w.last + sparseGap
	}
	// The wait's ledger: check k = w.n+1 not before (k − waitCredit) × waitEvery.
	if k := w.n + 1; k > waitCredit {
		want = max(want, time.Duration(k-waitCredit)*waitEvery)
	}
	// The bucket: when it holds less than a token, wait for the next one.
	if tokens < 1 {
		want = max(want, now+time.Duration((1-tokens)*float64(pollRefill)))
	}
	return max(want, now)
}

// bucket is the Flow's token bucket of status requests.
type bucket struct {
	tokens float64   // at at
	at     time.Time // zero: never used, full
}

func (b *bucket) level(now time.Time) float64 {
	if b.at.IsZero() {
		return pollBurst
	}
	return min(pollBurst, b.tokens+float64(now.Sub(b.at))/float64(pollRefill))
}

// take spends a token at now. nextPoll only schedules a check once a token
// is there; the time.Timer never fires early, so the level does not go
// below zero by more than rounding.
func (b *bucket) take(now time.Time) {
	b.tokens, b.at = b.level(now)-1, now
}

// poller is the Flow's status poller: its budget and what it learned. The
// sale runner uses it; the mutex keeps it safe should another goroutine (a
// recovered sale, a future refund) share it.
type poller struct {
	mu   sync.Mutex
	b    bucket
	hist []span // oldest first, at most historySize
}

// next returns when (since released) to send wait w's next check, at now.
func (p *poller) next(now, released time.Time, w pollWait) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return nextPoll(now.Sub(released), w, p.hist, p.b.level(now))
}

// spend records a status request sent at now.
func (p *poller) spend(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.b.take(now)
}

// learn records a payment that completed within s after its release.
func (p *poller) learn(s span) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.hist) == historySize {
		p.hist = slices.Delete(p.hist, 0, 1)
	}
	p.hist = append(p.hist, s)
}

// pollDelay is the pause before status check n (0-based) after the release:
// fast at first, since most payments finish within seconds, then 1.3s so
// that over a long wait the average stays under one request per second
// (5 checks in the first 1.2s, then 0.77/s: 19 checks in 20s).
func pollDelay(n int) time.Duration {
	fast := [...]time.Duration{100 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
		300 * time.Millisecond, 500 * time.Millisecond}
	if n < len(fast) {
		return fast[n]
	}
	return sparseGap
}
