package proctest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"

	sp "github.com/kioskd/kioskd/payment/smartpay"
)

// At is a call of the Smart Pay simulator at which a Trap kills.
type At struct {
	Method string // the call's method (a sim.Method* name)
	Body   string // when set, a part its request body must contain
	// Answer, when set with After, is a part its answer must contain: the
	// kill waits for the call that answers so (a status poll that says
	// "success"), earlier ones pass.
	Answer string
	After  bool // after the call took effect (its answer is lost); else before it takes effect
}

// String names the point: "before_commit", "after_status".
func (at At) String() string {
	if at.After {
		return "after_" + at.Method
	}
	return "before_" + at.Method
}

// Trap is a sim.Config.Middleware that kills when the call it is armed
// with arrives, once per Arm. Kill must end the process under test and
// return once it is gone (Process.Kill, and what the test adds to it).
type Trap struct {
	Kill func(At)

	mu    sync.Mutex
	armed *At
}

// Arm makes the next call at a kill.
func (t *Trap) Arm(at At) {
	t.mu.Lock()
	t.armed = &at
	t.mu.Unlock()
}

// Disarm forgets the armed call; it reports whether one was armed and not
// reached.
func (t *Trap) Disarm() (missed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	missed = t.armed != nil
	t.armed = nil
	return missed
}

// claim takes the armed point if it matches the call (and its answer, when
// it names one); the point is then spent.
func (t *Trap) claim(method string, body, answer []byte) *At {
	t.mu.Lock()
	defer t.mu.Unlock()
	at := t.armed
	if at == nil || at.Method != method || !bytes.Contains(body, []byte(at.Body)) ||
		(answer != nil && !bytes.Contains(answer, []byte(at.Answer))) {
		return nil
	}
	t.armed = nil
	return at
}

// wantsAnswer reports whether the armed point waits for an answer, for a
// call of method.
func (t *Trap) wantsAnswer(method string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.armed != nil && t.armed.Method == method && t.armed.After && t.armed.Answer != ""
}

// Middleware wraps the simulator's API handler.
func (t *Trap) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := sp.MethodOf(r.URL.Path)
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if t.wantsAnswer(method) {
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r) // the call takes effect…
			if at := t.claim(method, body, rec.Body.Bytes()); at != nil {
				t.Kill(*at) // …and the process dies before the answer
				return
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
			return
		}
		at := t.claim(method, body, nil)
		if at == nil {
			next.ServeHTTP(w, r)
			return
		}
		ServeOrKill(w, r, next, true, at.After, func() { t.Kill(*at) })
	})
}

// ServeOrKill serves r, or, when hit, calls kill at the call: before it
// takes effect (the request is on its way; the caller, dead, never reads
// the 503 it is answered), or, with after, once it took effect, its answer
// lost. It is Trap's core, for middlewares that pick their call otherwise
// (the fiscal simulator's tasks).
func ServeOrKill(w http.ResponseWriter, r *http.Request, next http.Handler, hit, after bool, kill func()) {
	switch {
	case !hit:
		next.ServeHTTP(w, r)
	case after:
		next.ServeHTTP(httptest.NewRecorder(), r) // the call takes effect...
		kill()                                    // ...and the caller dies before the answer
	default:
		kill() // the caller dies while the request is on its way
		http.Error(w, "killed", http.StatusServiceUnavailable)
	}
}
