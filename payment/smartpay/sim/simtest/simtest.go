package simtest

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/kioskd/kioskd/payment/internal/loopback"
	"github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

// Server is a simulator serving on a loopback port. The embedded
// *sim.Server gives its state (State), faults (InjectFault, ClearFaults) and
// the app's keys (AppKeys).
type Server struct {
	*sim.Server
	URL string // https://127.0.0.1:port, the service URL for a client
	Dir string // the key material: sim.KassaFiles(Dir, n) and the simulator's own files
	lb  *loopback.Server
}

// NewServer serves a simulator with cfg until t ends. An empty cfg.Dir is a
// new directory of t's, filled with the shared key material; kassas 1 and 2
// have certificates unless cfg.Kassas asks for more.
func NewServer(t testing.TB, cfg sim.Config) *Server {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
		if err := copyKeys(cfg.Dir); err != nil {
			t.Fatal(err)
		}
	}
	// No test logger: a handler still sleeping in a delay fault may log
	// after the test has ended.
	srv, err := sim.New(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	lb := loopback.Serve(t, srv.Serve)
	return &Server{Server: srv, URL: "https://" + lb.Addr, Dir: cfg.Dir, lb: lb}
}

// Down stops serving, as an outage would: the listener and every connection
// close, and new connections are refused until Up. The state is kept.
func (s *Server) Down() { s.lb.Down() }

// Up serves again on the same address after Down.
func (s *Server) Up() { s.lb.Up() }

// KassaFiles returns the CA, certificate and key files of kassa n (1-based).
func (s *Server) KassaFiles(n int) (ca, cert, key string) { return sim.KassaFiles(s.Dir, n) }

// ServiceYAML is the service section of a devices.yaml for kassa 1 of this
// simulator, with absolute paths, for tests that run the agent.
func (s *Server) ServiceYAML() string {
	ca, cert, key := s.KassaFiles(1)
	return fmt.Sprintf("service:\n  url: %s\n  ca: %s\n  cert: %s\n  key: %s\n", s.URL, ca, cert, key)
}

// ClientConfig is the configuration of a client of kassa n: short attempt
// timeouts and backoff for tests, the rest defaults.
func (s *Server) ClientConfig(n int) smartpay.Config {
	ca, cert, key := s.KassaFiles(n)
	return smartpay.Config{URL: s.URL, CAFile: ca, CertFile: cert, KeyFile: key,
		AttemptTimeout: 2 * time.Second, RetryBackoff: 10 * time.Millisecond}
}

// Kassa makes NewClient a client of kassa n instead of kassa 1.
func (s *Server) Kassa(n int) func(*smartpay.Config) {
	return func(c *smartpay.Config) {
		c.CAFile, c.CertFile, c.KeyFile = s.KassaFiles(n)
	}
}

// NewClient returns a started client of kassa 1 (ClientConfig changed by
// mods), logging to t; it is closed when t ends.
func (s *Server) NewClient(t testing.TB, mods ...func(*smartpay.Config)) *smartpay.Client {
	t.Helper()
	cfg := s.ClientConfig(1)
	for _, m := range mods {
		m(&cfg)
	}
	c, err := smartpay.NewClient(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	// The keep-warm goroutine lives until Close.
	t.Cleanup(func() { c.Close() })
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

// Payload returns a fresh payment QR of user, as a scanner reads it.
func (s *Server) Payload(t testing.TB, user string) string {
	t.Helper()
	q, err := s.Server.QR(user)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// QRCode returns a fresh QR made with p (user, OTP, time), parsed as the
// scanner path parses it.
func (s *Server) QRCode(t testing.TB, p sim.QRParams) smartpay.QR {
	t.Helper()
	payload, err := s.AppKeys().QR(p)
	if err != nil {
		t.Fatal(err)
	}
	q, err := smartpay.ParseQR([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// Fault arms f, failing the test if the simulator refuses it.
func (s *Server) Fault(t testing.TB, f sim.Fault) {
	t.Helper()
	if err := s.InjectFault(f); err != nil {
		t.Fatal(err)
	}
}

// Requests is how many calls of method (a sim.Method* name) arrived so far,
// faulted ones included.
func (s *Server) Requests(method string) int { return s.State().Requests[method] }

// keys is the key material of every Server of this test binary, made once.
var keys struct {
	once  sync.Once
	files map[string]keyFile
	err   error
}

type keyFile struct {
	data []byte
	mode fs.FileMode
}

// copyKeys writes the shared key material into dir.
func copyKeys(dir string) error {
	keys.once.Do(func() { keys.files, keys.err = makeKeys() })
	if keys.err != nil {
		return keys.err
	}
	for name, f := range keys.files {
		if err := os.WriteFile(filepath.Join(dir, name), f.data, f.mode); err != nil {
			return fmt.Errorf("simtest: %w", err)
		}
	}
	return nil
}

func makeKeys() (map[string]keyFile, error) {
	dir, err := os.MkdirTemp("", "simtest-keys-")
	if err != nil {
		return nil, fmt.Errorf("simtest: %w", err)
	}
	defer os.RemoveAll(dir)
	if _, err := sim.New(sim.Config{Dir: dir, Kassas: 2}, zap.NewNop()); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("simtest: %w", err)
	}
	files := map[string]keyFile{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("simtest: %w", err)
		}
		info, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("simtest: %w", err)
		}
		files[e.Name()] = keyFile{data: data, mode: info.Mode().Perm()}
	}
	return files, nil
}

// FreeAddr returns a loopback address nothing listens on, for a server a
// test starts beside the simulator (kioskd's web display or TCP API, the
// smartpay-sim command). Another process may take it in between; tests
// that restart a server on it rely on SO_REUSEADDR.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
