package chaostest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/kiosktest"
	"github.com/kioskd/kioskd/payment/smartpay/sim/simtest"
)

// Timeouts of kioskd under test: short, so that a sale the host abandoned
// (killed mid-way) ends on its own within seconds.
const (
	callTimeout  = 500 * time.Millisecond
	saleTimeouts = 5 * time.Second
	dupWindow    = 300 * time.Millisecond
)

// kioskd is the agent under test: the real binary on a generated
// devices.yaml, killed with SIGKILL and restarted on the same journal.
type kioskd struct {
	t       testing.TB
	dir     string
	config  string
	logPath string
	unix    *kiosktest.Client               // the API on the socket
	tcp     *kiosktest.Client               // ...and on loopback TCP with the token
	agent   atomic.Pointer[kiosktest.Agent] // the process last started
	starts  int                             // by start, on the host's goroutine
}

// newKioskd writes the configuration: the simulator srv with kassa 1's
// certificate, the journal and API in dir, a serial scanner on port and the
// log display.
func newKioskd(t testing.TB, dir string, srv *simtest.Server, port string) *kioskd {
	t.Helper()
	k := &kioskd{t: t, dir: dir, config: filepath.Join(dir, "devices.yaml"), logPath: filepath.Join(dir, "kioskd.log")}
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	token := hex.EncodeToString(tok[:])
	ca, cert, key := srv.KassaFiles(1)
	cfg := kiosktest.Config{KassaID: "chaos", ServiceURL: srv.URL, CA: ca, Cert: cert, Key: key,
		Journal: k.journalPath(), Socket: filepath.Join(dir, "api.sock"),
		Listen: simtest.FreeAddr(t), TokenFile: filepath.Join(dir, "api.token"),
		ScannerPort: port, Framing: "auto", Handover: "host", LogFormat: "json",
		Timeouts:        kiosktest.Timeouts{Amount: saleTimeouts, Payment: saleTimeouts, Handover: saleTimeouts, Call: callTimeout},
		DuplicateWindow: dupWindow}
	if err := os.WriteFile(cfg.TokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k.config, []byte(cfg.YAML()), 0o600); err != nil {
		t.Fatal(err)
	}
	k.unix, k.tcp = kiosktest.UnixClient(cfg.Socket), kiosktest.TCPClient(cfg.Listen, token)
	t.Cleanup(func() {
		k.kill()
		k.unix.CloseIdle()
		k.tcp.CloseIdle()
	})
	return k
}

// start runs kioskd and waits until its flow has recovered what the
// journal holds and takes sales.
func (k *kioskd) start() error {
	logf, err := os.OpenFile(k.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "=== chaostest: start %d\n", k.starts+1)
	logf.Close()
	a, err := kiosktest.Start(kioskdBin, k.config, k.logPath)
	if err != nil {
		return err
	}
	k.agent.Store(a)
	k.starts++
	deadline := time.Now().Add(60 * time.Second) // recovery may wait out a payment timeout
	for {
		if st, err := k.state(); err == nil && st.Ready {
			return nil
		}
		select {
		case <-a.Exited():
			return fmt.Errorf("kioskd exited at start: %v", a.Err())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("kioskd did not become ready in 60s")
		}
	}
}

// kill SIGKILLs kioskd, if it runs, and waits until it is gone. Safe to
// call from any goroutine, more than once.
func (k *kioskd) kill() {
	if a := k.agent.Load(); a != nil {
		a.Kill()
	}
}

// stop ends kioskd with SIGTERM and reports how it exited.
func (k *kioskd) stop() error { return k.agent.Load().Stop(15 * time.Second) }

// down reports whether the process has ended, and whether the test killed
// it. A kill the test has begun counts as ended: the host sees its
// connections fail before the process is reaped.
func (k *kioskd) down() (ended, byTest bool) {
	a := k.agent.Load()
	if a.Killed() {
		<-a.Exited()
		return true, true
	}
	select {
	case <-a.Exited():
		return true, false
	default:
		return false, false
	}
}

func (k *kioskd) journalPath() string { return filepath.Join(k.dir, "journal.db") }

// logTail is the end of kioskd's log, for failure messages.
func (k *kioskd) logTail(n int) string {
	b, _ := os.ReadFile(k.logPath)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// answer is kioskd's reply to one API request; ok is false when none came.
type answer struct {
	code int
	body []byte
	ok   bool
}

func (a answer) String() string {
	if !a.ok {
		return "no answer"
	}
	return fmt.Sprintf("%d %s", a.code, bytes.TrimSpace(a.body))
}

// request is one host request.
type request struct {
	method, path, body string
	tcp                bool              // over TCP with the token, else the unix socket
	header             map[string]string // extra headers (Idempotency-Key)
	idempotent         bool              // a copy sent at the same time must get the same answer
}

// requestTimeout bounds one host request.
const requestTimeout = 15 * time.Second

// do sends r. wrote, when set, is called once the request is written: the
// kill "right after a request was sent" hangs on it.
func (k *kioskd) do(r request, wrote func()) answer {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	if wrote != nil {
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { wrote() }})
	}
	c := k.unix
	if r.tcp {
		c = k.tcp
	}
	header := http.Header{}
	for h, v := range r.header {
		header.Set(h, v)
	}
	a, err := c.Send(ctx, r.method, r.path, []byte(r.body), header)
	if err != nil {
		return answer{}
	}
	return answer{code: a.Status, body: a.Body, ok: true}
}

func (k *kioskd) state() (payment.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	return k.unix.State(ctx)
}

// health is GET /healthz: whether kioskd is ready and why not.
func (k *kioskd) health() (ready bool, reasons []string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	return k.unix.Health(ctx)
}
