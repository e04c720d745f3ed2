package payment

import (
	"fmt"
	"testing"
	"time"
)

const ms = time.Millisecond

// around is a history of payments that completed at each of ds, seen by
// checks 50 ms either side.
func around(ds ...time.Duration) []span {
	h := make([]span, len(ds))
	for i, d := range ds {
		h[i] = span{lo: max(d-50*ms, 0), hi: d + 50*ms}
	}
	return h
}

func spreadDelays(from, to time.Duration, n int) []time.Duration {
	ds := make([]time.Duration, n)
	for i := range ds {
		ds[i] = from + time.Duration(i)*(to-from)/time.Duration(n-1)
	}
	return ds
}

// histories the schedule must keep its budget with, adversarial ones included.
var testHistories = map[string][]span{
	"none":          nil,
	"300ms":         around(300*ms, 300*ms, 300*ms),
	"1s":            around(time.Second, time.Second, time.Second),
	"2.5s":          around(2500*ms, 2500*ms),
	"1.5s±20%":      around(spreadDelays(1200*ms, 1800*ms, 16)...),
	"spread0.2-5s":  around(spreadDelays(200*ms, 5*time.Second, 32)...),
	"instant":       {{lo: 0, hi: 100 * ms}},
	"late10s":       around(10*time.Second, 10500*ms),
	"whole_timeout": {{lo: 0, hi: 120 * time.Second}},
}

// run plays one wait on a simulated clock: the release at start, bucket b
// carried over, a success visible from done on (done < 0: never), until
// the wait has lasted w. Calls take no time (the worst case for the
// budget). It returns the send times since the release and, when the
// payment was seen, the span to learn.
func run(t *testing.T, b *bucket, start time.Time, hist []span, done, w time.Duration) ([]time.Duration, span, bool) {
	t.Helper()
	var st pollWait
	var sent []time.Duration
	var pending time.Duration
	for {
		now := st.last
		at := nextPoll(now, st, hist, b.level(start.Add(now)))
		if at < now {
			t.Fatalf("nextPoll(%v, %+v) = %v: in the past", now, st, at)
		}
		if at > w {
			return sent, span{}, false
		}
		if l := b.level(start.Add(at)); l < 1-1e-9 {
			t.Fatalf("check at %v with %.3f tokens", at, l)
		}
		b.take(start.Add(at))
		sent = append(sent, at)
		st = pollWait{n: st.n + 1, last: at}
		if done >= 0 && at >= done {
			return sent, span{lo: pending, hi: at}, true
		}
		pending = at
	}
}

func TestPollBudget(t *testing.T) {
	release := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for name, hist := range testHistories {
		for _, w := range []time.Duration{5 * time.Second, 20 * time.Second, 60 * time.Second, 120 * time.Second} {
			t.Run(fmt.Sprintf("%s/%v", name, w), func(t *testing.T) {
				var b bucket // fresh: full
				sent, _, _ := run(t, &b, release, hist, -1, w)
				n, secs := float64(len(sent)), w.Seconds()
				if n > pollBurst+secs {
					t.Errorf("%v checks in %v: over the bucket's %v + W", n, w, pollBurst)
				}
				if secs >= 20 && n/secs > 1.0 {
					t.Errorf("%v checks in %v: %.3f/s, want <= 1/s", n, w, n/secs)
				}
				for i, at := range sent { // the ledger, check by check
					if k := float64(i + 1); k > waitCredit+at.Seconds()/waitEvery.Seconds()+1e-9 {
						t.Errorf("check %v at %v: over the wait's ledger", k, at)
					}
				}
			})
		}
	}
}

// TestPollBudgetBackToBack: sales one after another, each paid at once,
// cannot beat the bucket: any interval of W seconds holds at most
// pollBurst + W checks.
func TestPollBudgetBackToBack(t *testing.T) {
	for name, hist := range testHistories {
		t.Run(name, func(t *testing.T) {
			var b bucket
			clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			var all []time.Time
			for range 30 {
				sent, _, ok := run(t, &b, clock, hist, 0, time.Hour) // the first check sees success
				if !ok {
					t.Fatal("success never seen")
				}
				for _, at := range sent {
					all = append(all, clock.Add(at))
				}
				clock = clock.Add(sent[len(sent)-1] + 10*ms) // the next release
			}
			for i := range all {
				for j := i; j < len(all); j++ {
					if n, w := float64(j-i+1), all[j].Sub(all[i]).Seconds(); n > pollBurst+w+1e-9 {
						t.Fatalf("%v checks within %.2fs: over %v + W", n, w, pollBurst)
					}
				}
			}
		})
	}
}

func TestPollFirstCheck(t *testing.T) {
	for name, hist := range testHistories {
		if at := nextPoll(0, pollWait{}, hist, pollBurst); at > 100*ms {
			t.Errorf("%s: first check at %v, want <= 100ms", name, at)
		}
	}
	// An empty bucket waits for its next token rather than overspend.
	if at := nextPoll(3*time.Second, pollWait{n: 2, last: 2900 * ms}, nil, 0.25); at < 3750*ms {
		t.Errorf("with 0.25 tokens: check at %v, want >= 3.75s", at)
	}
}

// TestPollNoHistory: before anything is learned the schedule is the fixed
// one (pollDelay), for as long as the ledger lets it.
func TestPollNoHistory(t *testing.T) {
	var b bucket
	sent, _, _ := run(t, &b, time.Now(), nil, -1, 40*time.Second)
	var at time.Duration
	for i, got := range sent {
		at += pollDelay(i)
		if got != at {
			t.Fatalf("check %d at %v, the fixed schedule has %v", i+1, got, at)
		}
	}
	if at+pollDelay(len(sent)) <= 40*time.Second {
		t.Errorf("%d checks in 40s: the fixed schedule has more", len(sent))
	}
}

// latency is how long after done the first check at or after it is sent.
func latency(sent []time.Duration, done time.Duration) time.Duration {
	for _, at := range sent {
		if at >= done {
			return at - done
		}
	}
	return time.Hour
}

// TestPollDenseInLearnedWindow: where past payments completed the checks are
// ~100–150 ms apart, and a payment there is seen sooner than with no history.
func TestPollDenseInLearnedWindow(t *testing.T) {
	cases := []struct {
		name   string
		delays []time.Duration
		gap    time.Duration // widest spacing allowed inside the window
	}{
		{"300ms", []time.Duration{300 * ms}, 150 * ms},
		{"1s", []time.Duration{time.Second}, 150 * ms},
		{"2.5s", []time.Duration{2500 * ms}, 150 * ms},
		{"7s", []time.Duration{7 * time.Second}, 150 * ms},
		{"1.5s±20%", spreadDelays(1200*ms, 1800*ms, 16), 200 * ms},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hist := around(c.delays...)
			win, _ := learnedWindow(hist)
			var b bucket
			sent, _, _ := run(t, &b, time.Now(), hist, -1, 20*time.Second)
			var b0 bucket
			old, _, _ := run(t, &b0, time.Now(), nil, -1, 20*time.Second)
			var sumNew, sumOld time.Duration
			// Payments like the learned ones: within the span each was seen in.
			lo, hi := hist[0].lo, hist[len(hist)-1].hi
			n := 0
			for d := lo; d <= hi; d += 10 * ms {
				l := latency(sent, d)
				if l > c.gap {
					t.Errorf("paid at %v seen %v later (window %v–%v, checks %v)", d, l, win.lo, win.hi, sent)
				}
				sumNew += l
				sumOld += latency(old, d)
				n++
			}
			if sumNew >= sumOld {
				t.Errorf("mean latency %v, no better than with no history (%v)", sumNew/time.Duration(n), sumOld/time.Duration(n))
			}
			before := 0
			for _, at := range sent {
				if at < win.lo-denseGap { // the dense part may start a gap early (its phase)
					before++
				}
			}
			if max := 1 + int(win.lo/sparseGap); before > max {
				t.Errorf("%d checks before the window at %v, want sparse (<= %d): %v", before, win.lo, max, sent)
			}
		})
	}
}

// TestPollLearnsADelay: starting from nothing, a few sales at one delay
// teach the poller to see the next within ~100 ms of the payment.
func TestPollLearnsADelay(t *testing.T) {
	for _, d := range []time.Duration{300 * ms, time.Second, 2500 * ms, 4 * time.Second, 7 * time.Second} {
		t.Run(d.String(), func(t *testing.T) {
			var p poller
			var last time.Duration
			for range 6 {
				sent, s, ok := run(t, &bucket{}, time.Now(), p.hist, d, 120*time.Second)
				if !ok {
					t.Fatal("success never seen")
				}
				p.learn(s)
				last = latency(sent, d)
			}
			if last > 120*ms {
				t.Errorf("after 6 sales seen %v after the payment", last)
			}
		})
	}
}

func TestPollerKeepsTheLastCompletions(t *testing.T) {
	var p poller
	for i := range historySize + 8 {
		p.learn(span{hi: time.Duration(i) * ms})
	}
	if len(p.hist) != historySize || p.hist[0].hi != 8*ms || p.hist[historySize-1].hi != (historySize+7)*ms {
		t.Errorf("history %v: want the last %d, oldest first", p.hist, historySize)
	}
}

// TestPollFollowsAChangedDelay: when the service's delay changes from 1 s
// to 4 s, the window widens to the new delay within a few sales and then
// narrows onto it, though the old completions fill the history.
func TestPollFollowsAChangedDelay(t *testing.T) {
	var p poller
	for range historySize {
		_, s, _ := run(t, &bucket{}, time.Now(), p.hist, time.Second, 120*time.Second)
		p.learn(s)
	}
	var lat []time.Duration
	for range 20 {
		sent, s, ok := run(t, &bucket{}, time.Now(), p.hist, 4*time.Second, 120*time.Second)
		if !ok {
			t.Fatal("success never seen")
		}
		lat = append(lat, latency(sent, 4*time.Second))
		p.learn(s)
	}
	// The fixed schedule sees a payment at 4 s 1.1 s late (checks at 3.8
	// and 5.1 s): from the 4th sale on the window covers 4 s, and by the
	// 20th it has narrowed onto it.
	for _, l := range lat[3:] {
		if l > 600*ms {
			t.Errorf("seen %v after the payment 4–20 sales after the change: %v", l, lat)
			break
		}
	}
	if l := lat[len(lat)-1]; l > 150*ms {
		t.Errorf("seen %v after the payment 20 sales after the change: %v", l, lat)
	}
}
