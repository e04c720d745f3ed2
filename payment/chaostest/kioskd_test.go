package chaostest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/proctest"
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
	sock    string
	tcpAddr string
	token   string
	unixTr  *http.Transport
	tcpTr   *http.Transport
	hc      map[bool]*http.Client // by "over TCP"
	proc    proctest.Process
	starts  int // by start, on the host's goroutine
}

// newKioskd writes the configuration: the simulator srv with kassa 1's
// certificate, the journal and API in dir, a serial scanner on port and the
// log display.
func newKioskd(t testing.TB, dir string, srv *simtest.Server, port string) *kioskd {
	t.Helper()
	k := &kioskd{t: t, dir: dir, config: filepath.Join(dir, "devices.yaml"), logPath: filepath.Join(dir, "kioskd.log"),
		sock: filepath.Join(dir, "api.sock"), tcpAddr: simtest.FreeAddr(t)}
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	k.token = hex.EncodeToString(tok[:])
	tokenFile := filepath.Join(dir, "api.token")
	if err := os.WriteFile(tokenFile, []byte(k.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`kassa:
  id: chaos
  handover: host
%sjournal: %q
api:
  socket: %q
  listen: %q
  token_file: %q
scanners:
  - name: pty
    driver: serial
    port: %q
    framing: auto
displays:
  - name: log
    driver: log
log:
  level: info
  format: json
timeouts:
  amount: %s
  payment: %s
  handover: %s
  call: %s
duplicate_window: %s
`, srv.ServiceYAML(), k.journalPath(), k.sock, k.tcpAddr, tokenFile, port,
		saleTimeouts, saleTimeouts, saleTimeouts, callTimeout, dupWindow)
	if err := os.WriteFile(k.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	k.unixTr = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", k.sock)
	}}
	k.tcpTr = &http.Transport{}
	k.hc = map[bool]*http.Client{
		false: {Transport: k.unixTr, Timeout: 15 * time.Second},
		true:  {Transport: k.tcpTr, Timeout: 15 * time.Second},
	}
	t.Cleanup(func() {
		k.kill()
		k.unixTr.CloseIdleConnections()
		k.tcpTr.CloseIdleConnections()
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
	cmd := exec.Command(kioskdBin, "run", "-config", k.config)
	cmd.Stdout, cmd.Stderr = logf, logf
	err = k.proc.Start(cmd)
	logf.Close() // the child has its own descriptor
	if err != nil {
		return err
	}
	k.starts++
	exited := k.proc.Exited()
	deadline := time.Now().Add(60 * time.Second) // recovery may wait out a payment timeout
	for {
		if st, err := k.state(); err == nil && st.Ready {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("kioskd exited at start: %s", cmd.ProcessState)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("kioskd did not become ready in 60s")
		}
	}
}

// kill SIGKILLs kioskd, if it runs, and waits until it is gone. Safe to
// call from any goroutine, more than once.
func (k *kioskd) kill() { k.proc.Kill() }

// stop ends kioskd with SIGTERM and reports how it exited.
func (k *kioskd) stop() error { return k.proc.Stop(15 * time.Second) }

// down reports whether the process has ended, and whether the test killed
// it. A kill the test has begun counts as ended: the host sees its
// connections fail before the process is reaped.
func (k *kioskd) down() (ended, byTest bool) {
	exited := k.proc.Exited()
	if k.proc.Killed() {
		<-exited
		return true, true
	}
	select {
	case <-exited:
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

// do sends r. wrote, when set, is called once the request is written: the
// kill "right after a request was sent" hangs on it.
func (k *kioskd) do(r request, wrote func()) answer {
	ctx := context.Background()
	if wrote != nil {
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { wrote() }})
	}
	host := "http://kioskd"
	if r.tcp {
		host = "http://" + k.tcpAddr
	}
	req, err := http.NewRequestWithContext(ctx, r.method, host+r.path, strings.NewReader(r.body))
	if err != nil {
		k.t.Fatal(err)
	}
	if r.tcp {
		req.Header.Set("Authorization", "Bearer "+k.token)
	}
	for h, v := range r.header {
		req.Header.Set(h, v)
	}
	resp, err := k.hc[r.tcp].Do(req)
	if err != nil {
		return answer{}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{code: resp.StatusCode, body: b, ok: err == nil}
}

func (k *kioskd) state() (payment.Status, error) {
	a := k.do(request{method: "GET", path: "/v1/state"}, nil)
	if !a.ok || a.code != http.StatusOK {
		return payment.Status{}, fmt.Errorf("state: %s", a)
	}
	var st payment.Status
	return st, json.Unmarshal(a.body, &st)
}

// health is GET /healthz: whether kioskd is ready and why not.
func (k *kioskd) health() (ready bool, reasons []string, err error) {
	a := k.do(request{method: "GET", path: "/healthz"}, nil)
	if !a.ok {
		return false, nil, errors.New("healthz: no answer")
	}
	var h struct {
		Ready   bool     `json:"ready"`
		Reasons []string `json:"reasons"`
	}
	return h.Ready, h.Reasons, json.Unmarshal(a.body, &h)
}
