package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/kioskd/kioskd/cmd/kioskd/internal/config"
	_ "github.com/kioskd/kioskd/display/logdisplay"
	_ "github.com/kioskd/kioskd/display/web"
	"github.com/kioskd/kioskd/payment/journal"
	"github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
	"github.com/kioskd/kioskd/payment/smartpay/sim/simtest"
	_ "github.com/kioskd/kioskd/scanner/serial"
	"github.com/kioskd/kioskd/scanner/serial/serialtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// kiosk is the agent running in-process against a simulator on loopback,
// with a serial scanner on a pty whose master end the test writes to and a
// web display whose /screen the test reads.
type kiosk struct {
	sim     *simtest.Server
	scanner *os.File // pty master: bytes written here reach the serial driver
	socket  string
	web     string       // the web display's URL
	arrived chan arrival // every kassa API request, as it reaches the simulator
	stop    func() error // cancels the agent and returns what Run returned
}

type arrival struct {
	path string
	at   time.Time
}

func startKiosk(tb testing.TB, log *zap.Logger, opts Options) *kiosk {
	tb.Helper()
	return startKioskWith(tb, log, opts, kioskSetup{kassa: "  fixed_amount: 10000\n"})
}

// kioskSetup is what a kiosk's devices.yaml and simulator add to the
// common ones.
type kioskSetup struct {
	kassa string // the kassa section's lines after its id
	extra string // the sections after the displays
	// answered, when set, gets the time each status answer that says
	// success leaves the simulator.
	answered chan time.Time
}

func startKioskWith(tb testing.TB, log *zap.Logger, opts Options, setup kioskSetup) *kiosk {
	tb.Helper()
	k := &kiosk{arrived: make(chan arrival, 1024)}
	k.sim = simtest.NewServer(tb, sim.Config{SuccessDelay: 5 * time.Millisecond,
		Middleware: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case k.arrived <- arrival{r.URL.Path, time.Now()}:
				default:
				}
				if setup.answered == nil || smartpay.MethodOf(r.URL.Path) != smartpay.MethodStatus {
					next.ServeHTTP(w, r)
					return
				}
				rec := &sniffer{ResponseWriter: w}
				next.ServeHTTP(rec, r)
				if strings.Contains(rec.body.String(), `"status":"success"`) {
					select {
					case setup.answered <- time.Now():
					default:
					}
				}
			})
		}})
	dir := k.sim.Dir // devices.yaml names the key files relative to itself
	k.socket = filepath.Join(dir, "api.sock")
	scanner := serialtest.New(tb, "")
	k.scanner = scanner.Master
	journalDir := dir
	if d := os.Getenv("KIOSKD_BENCH_JOURNAL_DIR"); d != "" {
		var err error
		journalDir, err = os.MkdirTemp(d, "kioskd-bench-") // e.g. /dev/shm: no disk fsync
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { os.RemoveAll(journalDir) })
	}
	web := simtest.FreeAddr(tb)
	k.web = "http://" + web + "/"
	journal := filepath.Join(journalDir, fmt.Sprintf("journal-%d.db", time.Now().UnixNano()))
	cfg := parseKiosk(tb, k.sim, setup.kassa, journal, scanner.Slave.Name(),
		fmt.Sprintf("  - name: screen\n    driver: web\n    listen: %q\n", web)+setup.extra)

	k.stop = runAgent(tb, cfg, log, opts)
	return k
}

// runAgent runs the agent on cfg until stop or the test's end, and returns
// once it is ready. stop returns Run's error; one at the test's end fails
// the test.
func runAgent(tb testing.TB, cfg *config.Config, log *zap.Logger, opts Options) (stop func() error) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready, exited := make(chan struct{}), make(chan struct{})
	opts.Ready = func() { close(ready) }
	var runErr error
	go func() {
		defer close(exited)
		runErr = Run(ctx, cfg, log, opts)
	}()
	stop = sync.OnceValue(func() error {
		cancel()
		<-exited
		return runErr
	})
	tb.Cleanup(func() {
		if err := stop(); err != nil {
			tb.Errorf("Run: %v", err)
		}
	})
	select {
	case <-ready:
	case <-exited:
		tb.Fatalf("agent ended before it was ready: %v", runErr)
	case <-time.After(20 * time.Second):
		tb.Fatal("agent not ready within 20s")
	}
	return stop
}

// parseConfig parses the devices.yaml of a kiosk (written in srv's
// directory) with one serial scanner on port, a log display and the
// displays given, served by srv.
func parseConfig(tb testing.TB, srv *simtest.Server, journal, port, displays string) *config.Config {
	tb.Helper()
	return parseKiosk(tb, srv, "  fixed_amount: 10000\n", journal, port, displays)
}

// parseKiosk is parseConfig with the kassa's lines after its id, and
// anything after the displays in rest.
func parseKiosk(tb testing.TB, srv *simtest.Server, kassa, journal, port, rest string) *config.Config {
	tb.Helper()
	cfg, err := config.Parse(filepath.Join(srv.Dir, "devices.yaml"), []byte(fmt.Sprintf(`kassa:
  id: %s
%s%sjournal: %s
api:
  socket: api.sock
scanners:
  - name: front
    driver: serial
    port: %s
displays:
  - name: log
    driver: log
%s`, sim.KassaID(1), kassa, srv.ServiceYAML(), journal, port, rest)))
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// sniffer keeps a copy of what a handler writes.
type sniffer struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (s *sniffer) Write(b []byte) (int, error) {
	s.body.Write(b)
	return s.ResponseWriter.Write(b)
}

// screen returns the state the web display shows ("" while it cannot be read).
func (k *kiosk) screen() string {
	resp, err := http.Get(k.web + "screen")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var s struct{ State string }
	_ = json.NewDecoder(resp.Body).Decode(&s)
	return s.State
}

// client talks to the control API on the unix socket.
func (k *kiosk) client() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", k.socket)
		}}}
}

// get asks the control API on the unix socket.
func (k *kiosk) get(tb testing.TB, path string) (int, string) {
	tb.Helper()
	c := k.client()
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://kioskd" + path)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// waitFor reads arrivals until one for path comes.
func (k *kiosk) waitFor(tb testing.TB, path string) arrival {
	tb.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case a := <-k.arrived:
			if a.path == path {
				return a
			}
		case <-timeout:
			tb.Fatalf("no %s request within 20s", path)
		}
	}
}

// waitIdle waits until the current sale has ended.
func (k *kiosk) waitIdle(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := k.get(tb, "/v1/state")
		if strings.Contains(body, `"state":"completed"`) || strings.Contains(body, `"state":"idle"`) {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("sale not over within 10s: %s", body)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (k *kiosk) scan(tb testing.TB, payload string) time.Time {
	tb.Helper()
	if _, err := k.scanner.Write([]byte(payload + "\r")); err != nil {
		tb.Fatal(err)
	}
	return time.Now()
}

// A QR read by the serial scanner becomes a paid, confirmed purchase; the
// control API reports health and metrics for it; when the context ends the
// agent stops with no error and no goroutine left behind (TestMain).
func TestSaleThroughAgent(t *testing.T) {
	k := startKiosk(t, zaptest.NewLogger(t), Options{})
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := k.get(t, "/healthz")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz after start: %d %s", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	k.scan(t, k.sim.Payload(t, "agent-test"))
	k.waitFor(t, smartpay.PathCommit)
	k.waitFor(t, smartpay.PathKassaStatus)

	deadline = time.Now().Add(5 * time.Second)
	for {
		st := k.sim.State()
		if len(st.Purchases) == 1 && st.Purchases[0].Confirmed && st.Purchases[0].Amount == 10000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("simulator purchases after the sale: %+v", st.Purchases)
		}
		time.Sleep(10 * time.Millisecond)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		_, metrics := k.get(t, "/metrics")
		want := []string{
			`kioskd_sales_total{outcome="completed"} 1`,
			`kioskd_scan_to_commit_seconds_count 1`,
			`kioskd_scanner_up{scanner="front"} 1`,
			`kioskd_display_up{display="log"} 1`,
			`kioskd_smartpay_call_seconds_count{method="commit",result="ok"} 1`,
			`kioskd_certificate_expiry_timestamp_seconds{file=`,
			`kioskd_ready 1`,
			`kioskd_journal_bytes`,
		}
		missing := slices.DeleteFunc(want, func(w string) bool { return strings.Contains(metrics, w) })
		if len(missing) == 0 {
			t.Run("promtool", func(t *testing.T) { promtoolCheck(t, metrics) })
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q:\n%s", missing, metrics)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := k.stop(); err != nil {
		t.Fatalf("agent Run returned %v after its context ended", err)
	}
}

// promtoolCheck runs "promtool check metrics" (Prometheus's own linter:
// base units, suffixes, help texts) on an exposition. CI installs promtool
// (.ci/deps test: Debian's prometheus package); elsewhere the check is
// skipped when it is absent.
func promtoolCheck(t *testing.T, exposition string) {
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not found; .ci/deps test installs it (apt-get install prometheus)")
		}
		t.Skip("promtool not found: apt-get install prometheus to lint /metrics (CI always does)")
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(exposition)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// Health names the reason when the service cannot be reached, and the
// customer display says the service is offline instead of "show your QR".
func TestHealthWithoutService(t *testing.T) {
	srv := simtest.NewServer(t, sim.Config{})
	srv.Down() // the key material stays; nothing listens
	cfg := parseConfig(t, srv, "journal.db", "/dev/kiosk/absent", "")
	k := &kiosk{socket: cfg.API.Socket}
	runAgent(t, cfg, zaptest.NewLogger(t), Options{})
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := k.get(t, "/healthz")
		if code == http.StatusServiceUnavailable && strings.Contains(body, "service unreachable") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz with the service down: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// BenchmarkScanToCommit measures SPEC §5's scan-to-commit figure through the
// whole agent: from the last byte of a QR written to the serial scanner's
// line to the commit request reaching the service, on the warm connection,
// next to a raw loopback TCP round trip measured in the same run.
//
//	go test -run X -bench ScanToCommit -benchtime 200x ./cmd/kioskd/internal/agent/
//
// settle lets the previous sale finish its journal writes before the next scan,
// as the seconds between two customers do.
const settle = 50 * time.Millisecond

func BenchmarkScanToCommit(b *testing.B) {
	k := startKiosk(b, zap.NewNop(), Options{})
	qrs := make([]string, b.N)
	for i := range qrs {
		qrs[i] = k.sim.Payload(b, fmt.Sprintf("bench-%d", i))
	}
	rtt := loopbackRTT(b, b.N)
	side := sideJournal(b)
	fsync := make([]time.Duration, 0, b.N)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		sent := k.scan(b, qrs[i])
		lat = append(lat, k.waitFor(b, smartpay.PathCommit).at.Sub(sent))
		k.waitFor(b, smartpay.PathKassaStatus)
		k.waitIdle(b) // a scan during a sale would be ignored
		time.Sleep(settle)
		fsync = append(fsync, side())
	}
	b.StopTimer()
	if os.Getenv("KIOSKD_BENCH_VERBOSE") != "" {
		sorted := slices.Clone(lat)
		slices.Sort(sorted)
		b.Logf("slowest scan-to-commit: %v", sorted[max(0, len(sorted)-8):])
	}
	_, p99 := reportPercentiles(b, "", lat)
	_, r99 := reportPercentiles(b, "raw-rtt-", rtt)
	b.ReportMetric(float64((p99 - r99).Microseconds()), "p99-over-raw-µs")
	reportPercentiles(b, "journal-write-", fsync)
}

// sideJournal opens a journal beside the agent's and returns a function that
// times one new-sale record written (with fsync) to it: the part of
// scan-to-commit that is the disk's, sampled over the same minutes as the scans.
func sideJournal(b *testing.B) func() time.Duration {
	dir := b.TempDir()
	if d := os.Getenv("KIOSKD_BENCH_JOURNAL_DIR"); d != "" {
		dir = d
	}
	path := filepath.Join(dir, fmt.Sprintf("kioskd-bench-%d.db", time.Now().UnixNano()))
	j, err := journal.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { j.Close(); os.Remove(path) })
	code := []byte(`{"id_loyalty":"u","encrypted":"` + strings.Repeat("A", 344) + `","sign":"` + strings.Repeat("B", 96) + `"}`)
	return func() time.Duration {
		t0 := time.Now()
		if _, err := j.NewSale(code, time.Now()); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
}

// loopbackRTT times n one-byte round trips over loopback TCP.
func loopbackRTT(b *testing.B, n int) []time.Duration {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	out := make([]time.Duration, n)
	buf := []byte{0}
	for i := range out {
		t0 := time.Now()
		c.Write(buf)
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
		out[i] = time.Since(t0)
	}
	return out
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2], s[min(len(s)-1, len(s)*99/100)]
}

// reportPercentiles reports the median and the 99th percentile of d as
// prefix+"p50-µs" and prefix+"p99-µs", and returns them.
func reportPercentiles(b *testing.B, prefix string, d []time.Duration) (p50, p99 time.Duration) {
	p50, p99 = percentiles(d)
	b.ReportMetric(float64(p50.Microseconds()), prefix+"p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), prefix+"p99-µs")
	return p50, p99
}

// Under systemd (Type=notify, WatchdogSec=) the agent says READY=1 once it
// can be asked for its state and then pings the watchdog while the flow
// answers.
func TestSystemdReadyAndWatchdog(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "200000") // 200 ms: pings every 100 ms
	startKiosk(t, zap.NewNop(), Options{})

	var got []string
	buf := make([]byte, 256)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for !slices.Contains(got, "READY=1") || !slices.Contains(got, "WATCHDOG=1") {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("notifications so far %q: %v", got, err)
		}
		got = append(got, string(buf[:n]))
	}
	if got[0] != "READY=1" {
		t.Errorf("first notification %q, want READY=1 before any watchdog ping", got[0])
	}
}
