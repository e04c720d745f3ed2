package fiscalsim

import (
	"fmt"
	"io"
	"net/http"
	"time"
)

// FaultKind is what an injected fault does.
type FaultKind string

// Fault kinds. Transport faults act on the next calls of a method;
// document faults on the next new receipt submitted by it; no_sign on the
// next answers of a method that carry fiscal data.
const (
	FaultStatus     FaultKind = "status"      // answer Status [500] without handling the call
	FaultMalformed  FaultKind = "malformed"   // answer 200 with a body that is not JSON, without handling
	FaultDrop       FaultKind = "drop"        // read the request, close the connection, do not handle it
	FaultLoseAnswer FaultKind = "lose_answer" // handle the call, then close the connection without the answer
	FaultDelay      FaultKind = "delay"       // wait Delay, then handle the call
	FaultPending    FaultKind = "pending"     // document: stays in progress for Polls result queries (-1: forever)
	FaultKKTError   FaultKind = "kkt_error"   // document: refused with Code and Text (an FN fault…)
	FaultNoSign     FaultKind = "no_sign"     // the fiscal data in the answer lacks the fiscal sign
)

func (k FaultKind) transport() bool {
	switch k {
	case FaultStatus, FaultMalformed, FaultDrop, FaultLoseAnswer, FaultDelay:
		return true
	}
	return false
}

// Fault changes the next Count [1] calls, documents or answers of Method
// (a method name of the front end).
type Fault struct {
	Method string        `json:"method"`
	Kind   FaultKind     `json:"kind"`
	Count  int           `json:"count,omitempty"`
	Status int           `json:"status,omitempty"` // FaultStatus [500]
	Code   int           `json:"code,omitempty"`   // FaultKKTError: the ККТ's code [118]
	Text   string        `json:"text,omitempty"`   // FaultKKTError: its text
	Polls  int           `json:"polls,omitempty"`  // FaultPending: queries in progress; -1 forever
	Delay  time.Duration `json:"delay,omitempty"`  // FaultDelay
}

func (k *kkt) injectFault(f Fault, methods map[string]bool) error {
	if !methods[f.Method] {
		return fmt.Errorf("fiscalsim: fault: unknown method %q", f.Method)
	}
	switch f.Kind {
	case FaultStatus:
		if f.Status == 0 {
			f.Status = http.StatusInternalServerError
		}
		if f.Status < 400 || f.Status > 599 {
			return fmt.Errorf("fiscalsim: fault: status %d is not an error status", f.Status)
		}
	case FaultDelay:
		if f.Delay <= 0 {
			return fmt.Errorf("fiscalsim: fault: delay needs a positive delay")
		}
	case FaultKKTError:
		if f.Code == 0 {
			f.Code, f.Text = 118, "Неисправимая ошибка ФН"
		}
	case FaultPending:
		if f.Polls == 0 {
			f.Polls = 1
		}
	case FaultMalformed, FaultDrop, FaultLoseAnswer, FaultNoSign:
	default:
		return fmt.Errorf("fiscalsim: fault: unknown kind %q", f.Kind)
	}
	if f.Count <= 0 {
		f.Count = 1
	}
	k.mu.Lock()
	k.faults = append(k.faults, &f)
	k.mu.Unlock()
	return nil
}

// takeFaultLocked consumes one use of the first fault of method whose kind
// is accepted.
func (k *kkt) takeFaultLocked(method string, accept func(FaultKind) bool) *Fault {
	for i, f := range k.faults {
		if f.Method != method || !accept(f.Kind) {
			continue
		}
		f.Count--
		if f.Count <= 0 {
			k.faults = append(k.faults[:i], k.faults[i+1:]...)
		}
		c := *f
		return &c
	}
	return nil
}

func (k *kkt) takeFault(method string, kind FaultKind) *Fault {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.takeFaultLocked(method, func(fk FaultKind) bool { return fk == kind })
}

// applyFault acts out f; it reports whether the call is then handled.
func (k *kkt) applyFault(w http.ResponseWriter, r *http.Request, f *Fault) bool {
	switch f.Kind {
	case FaultStatus:
		writeJSON(w, f.Status, map[string]any{"error": map[string]any{"code": f.Status, "description": "injected fault"}})
		return false
	case FaultMalformed:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"results": [{"status": "ready", "result": {"fiscalParams": `)
		return false
	case FaultDrop:
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		hangUp(w)
		return false
	case FaultDelay:
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return false
		}
	}
	return true
}

// hangUp closes the connection without an answer.
func hangUp(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler) // no hijacking (HTTP/2): abort the stream instead
}
