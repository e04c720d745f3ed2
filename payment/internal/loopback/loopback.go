package loopback

import (
	"context"
	"net"
	"sync"
	"testing"
)

// ServeFunc serves on ln until ctx ends. It returns nil when it stopped
// because ctx ended, and its failure otherwise.
type ServeFunc func(ctx context.Context, ln net.Listener) error

// Server is a ServeFunc running on a loopback address.
type Server struct {
	Addr string // 127.0.0.1:port; the same after Down and Up

	t     testing.TB
	serve ServeFunc

	mu   sync.Mutex
	stop func() // ends the current Serve; nil while down
}

// Serve runs serve on a free loopback port until t ends.
func Serve(t testing.TB, serve ServeFunc) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: ln.Addr().String(), t: t, serve: serve}
	s.start(ln)
	t.Cleanup(s.Down)
	return s
}

func (s *Server) start(ln net.Listener) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.serve(ctx, ln) }()
	s.mu.Lock()
	s.stop = func() {
		cancel()
		if err := <-done; err != nil {
			s.t.Errorf("loopback: serving on %s: %v", s.Addr, err)
		}
	}
	s.mu.Unlock()
}

// Down stops serving, as an outage would: the listener and every
// connection close, and new connections are refused until Up.
func (s *Server) Down() {
	s.mu.Lock()
	stop := s.stop
	s.stop = nil
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// Up serves again on the same address after Down.
func (s *Server) Up() {
	s.t.Helper()
	s.mu.Lock()
	up := s.stop != nil
	s.mu.Unlock()
	if up {
		return
	}
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		s.t.Fatalf("loopback: serving again on %s: %v", s.Addr, err)
	}
	s.start(ln)
}
