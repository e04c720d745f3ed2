package proctest

import (
	"bytes"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Output collects what a process or command under test writes, from any
// goroutine, while the test reads it.
type Output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

// String returns everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// Match waits until re matches the output and returns the match and its
// submatches; after within it fails t, showing the output.
func (o *Output) Match(t testing.TB, re *regexp.Regexp, within time.Duration) []string {
	t.Helper()
	var m []string
	o.wait(t, re.String(), within, func(s string) bool { m = re.FindStringSubmatch(s); return m != nil })
	return m
}

// Contains waits until the output contains text; after within it fails t,
// showing the output.
func (o *Output) Contains(t testing.TB, text string, within time.Duration) {
	t.Helper()
	o.wait(t, text, within, func(s string) bool { return strings.Contains(s, text) })
}

func (o *Output) wait(t testing.TB, what string, within time.Duration, found func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !found(o.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the output within %v:\n%s", what, within, o.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
