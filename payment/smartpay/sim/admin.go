package sim

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/kioskd/kioskd/payment/internal/simadmin"
	sp "github.com/kioskd/kioskd/payment/smartpay"
)

// FaultKind is what an injected fault does to a call.
type FaultKind string

// Fault kinds.
const (
	FaultDelay         FaultKind = "delay"          // wait Delay, then handle the call normally
	FaultStatus        FaultKind = "status"         // answer Status (and Code) without handling the call
	FaultDrop          FaultKind = "drop"           // read the request, then close the connection without an answer
	FaultExpireSession FaultKind = "expire_session" // end the caller's session first, so the call gets 401
)

// Fault changes the next Count calls of one method (a Method* name). A new
// fault for a method replaces the one still pending.
type Fault struct {
	Method string
	Count  int // calls affected; 1 when 0
	Kind   FaultKind
	Delay  time.Duration // FaultDelay
	Status int           // FaultStatus: HTTP status [500]
	Code   int           // FaultStatus: service code [CodeInternal, CodeUnavailable for 503]
}

// InjectFault arms f for the next f.Count calls of f.Method.
func (s *Server) InjectFault(f Fault) error {
	if _, ok := methodNames[f.Method]; !ok {
		return fmt.Errorf("sim: fault: unknown method %q", f.Method)
	}
	switch f.Kind {
	case FaultDelay:
		if f.Delay <= 0 {
			return fmt.Errorf("sim: fault: delay needs a positive delay")
		}
	case FaultStatus:
		if f.Status == 0 {
			f.Status = http.StatusInternalServerError
		}
		if f.Status < 400 || f.Status > 599 {
			return fmt.Errorf("sim: fault: status %d is not an error status", f.Status)
		}
	case FaultDrop, FaultExpireSession:
	default:
		return fmt.Errorf("sim: fault: unknown kind %q", f.Kind)
	}
	if f.Count <= 0 {
		f.Count = 1
	}
	s.mu.Lock()
	s.faults[f.Method] = &f
	s.mu.Unlock()
	return nil
}

// ClearFaults disarms every pending fault: the service is healthy again.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	clear(s.faults)
	s.mu.Unlock()
}

func (s *Server) takeFaultLocked(method string) *Fault {
	f := s.faults[method]
	if f == nil {
		return nil
	}
	f.Count--
	if f.Count <= 0 {
		delete(s.faults, method)
	}
	s.faultsFired[method+"/"+string(f.Kind)]++
	c := *f
	return &c
}

var methodNames = func() map[string]bool {
	m := map[string]bool{}
	for path := range routes {
		m[sp.MethodOf(path)] = true
	}
	return m
}()

// AdminHandler serves the plain-HTTP admin API, meant for loopback only:
//
//	GET  /sim/state          State as JSON
//	POST /sim/faults         {"method":"commit","count":1,"kind":"delay","delay":"2s","status":503,"code":1015}
//	DELETE /sim/faults       disarm every pending fault
//	POST /sim/qr?user=ID     a fresh QR payload (text/plain)
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sim/state", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.State())
	})
	mux.HandleFunc("POST /sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Method string    `json:"method"`
			Count  int       `json:"count"`
			Kind   FaultKind `json:"kind"`
			Delay  string    `json:"delay"`
			Status int       `json:"status"`
			Code   int       `json:"code"`
		}
		if !simadmin.Decode(w, r, &in) {
			return
		}
		f := Fault{Method: in.Method, Count: in.Count, Kind: in.Kind, Status: in.Status, Code: in.Code}
		if !simadmin.Delay(w, in.Delay, &f.Delay) {
			return
		}
		if err := s.InjectFault(f); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, http.StatusOK, struct{}{})
	})
	mux.HandleFunc("DELETE /sim/faults", func(w http.ResponseWriter, r *http.Request) {
		s.ClearFaults()
		writeJSON(w, http.StatusOK, struct{}{})
	})
	mux.HandleFunc("POST /sim/qr", func(w http.ResponseWriter, r *http.Request) {
		user := r.URL.Query().Get("user")
		if user == "" {
			user = "demo-user"
		}
		q, err := s.QR(user)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, q+"\n")
	})
	return mux
}
