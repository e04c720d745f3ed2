package soaktest

import (
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/kiosktest"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

var (
	nSales    = flag.Int("soak.sales", 200, "sales in the soak (the full run: 10000)")
	seed      = flag.Uint64("soak.seed", 1, "seed of the sale mix")
	outDir    = flag.String("soak.out", "", "folder for soak.csv and soak.txt (default: a temporary one, printed)")
	nSamples  = flag.Int("soak.samples", 20, "samples between the warm-up and the end")
	retention = flag.Duration("soak.retention", 20*time.Second, "journal retention of the agent (compaction runs every quarter of it)")
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// sample is the agent's footprint after a number of sales, read from its
// /metrics at a quiet moment (no sale or refund running) and from the file
// system.
type sample struct {
	Sales       int
	Elapsed     time.Duration
	RSS         float64 // process_resident_memory_bytes
	Heap        float64 // go_memstats_heap_inuse_bytes
	Goroutines  int     // go_goroutines
	FDs         int     // process_open_fds
	JournalData float64 // kioskd_journal_bytes (bbolt's data size)
	JournalFile int64   // the file's size on disk
}

func TestSoak(t *testing.T) {
	n := *nSales
	if n <= 0 {
		t.Skip("-soak.sales=0")
	}
	r := newRig(t, *retention)
	ctx, api, h := r.ctx, r.api, r.host
	out := *outDir
	if out == "" {
		out = r.dir
	}

	warm := min(max(60, n/10), n)
	every := max(1, (n-warm)/max(*nSamples, 1))
	rng := rand.New(rand.NewPCG(*seed, 0x50a4))
	t.Logf("soak: %d sales, seed %d, warm-up %d sales, a sample every %d, retention %s; agent pid %d, log %s",
		n, *seed, warm, every, *retention, r.agent.PID(), r.logPath)
	start := time.Now()
	first, err := take(ctx, api, r.cfg.Journal, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	samples := []sample{first}
	refunds := 0
	for i := 1; i <= n; i++ {
		script, amount := kiosktest.DefaultMix.Pick(rng)
		user := fmt.Sprintf("soak-%d-%d", *seed, i)
		if err := h.Sell(ctx, script, user, amount); err != nil {
			t.Fatalf("sale %d (%s): %v\n%s", i, script, err, r.failure(*outDir))
		}
		if sl, _ := h.Ledger.Sale(user); sl.SawCompleted && rng.IntN(100) < 6 {
			// A partial refund, asked twice with one idempotency key: the
			// second answer must name the same refund.
			rq := fmt.Sprintf("rq-%d-%d", *seed, i)
			for range 2 {
				if err := h.Refund(ctx, rq, sl.PurchaseID, amount/2); err != nil {
					t.Fatalf("refund after sale %d: %v\n%s", i, err, r.logTail())
				}
			}
			refunds++
		}
		if i == warm || (i > warm && (i-warm)%every == 0) || i == n {
			sm, err := take(ctx, api, r.cfg.Journal, i, time.Since(start))
			if err != nil {
				t.Fatalf("sample after sale %d: %v\n%s", i, err, r.logTail())
			}
			samples = append(samples, sm)
			if testing.Verbose() {
				t.Logf("%6d sales %8s  RSS %6.1f MiB  goroutines %3d  fds %3d  journal %6.1f KiB",
					sm.Sales, sm.Elapsed.Round(time.Second), sm.RSS/(1<<20), sm.Goroutines, sm.FDs, float64(sm.JournalFile)/1024)
			}
		}
	}
	took := time.Since(start)

	// Settle: every purchase at an end the service was told of, every
	// fiscal record delivered; then the invariants.
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := api.State(ctx)
		ok, why := kiosktest.Settled(r.sim.State(), kiosktest.CheckOptions{})
		if err == nil && ok && st.FiscalPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled a minute after the last sale: %s (state %v, err %v)\n%s", why, st, err, r.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	end, err := take(ctx, api, r.cfg.Journal, n, time.Since(start))
	if err != nil {
		t.Fatal(err)
	}
	samples[len(samples)-1] = end
	st := r.sim.State()
	for _, v := range kiosktest.Check(st, h.Ledger, kiosktest.CheckOptions{FiscalDrained: true}) {
		t.Errorf("invariant %s", v)
	}

	if err := r.stop(); err != nil {
		t.Error(err)
	}

	report := table(samples, warm)
	summary := fmt.Sprintf("%d sales (%d purchases, %d refunds, %d fiscal records at the service) in %s, %.2f sales/s, seed %d\n",
		n, len(st.Purchases), refunds, len(st.Fiscal), took.Round(time.Second), float64(n)/took.Seconds(), *seed)
	t.Log("\n" + summary + report)
	if err := writeCSV(filepath.Join(out, "soak.csv"), samples); err != nil {
		t.Error(err)
	}
	if err := os.WriteFile(filepath.Join(out, "soak.txt"), []byte(summary+report), 0o644); err != nil {
		t.Error(err)
	}
	t.Logf("wrote %s and %s", filepath.Join(out, "soak.csv"), filepath.Join(out, "soak.txt"))
	problems, note := flatness(samples, warm, journalSettle(*retention))
	t.Log(note)
	for _, p := range problems {
		t.Error(p)
	}
}

// rig is the agent under test: the kioskd binary on a fresh journal, with a
// pty scanner, against the simulator, and a host selling through its API.
type rig struct {
	t       *testing.T
	dir     string
	ctx     context.Context
	sim     *kiosktest.Sim
	cfg     kiosktest.Config
	agent   *kiosktest.Agent
	logPath string
	api     *kiosktest.Client
	host    *kiosktest.Host
	stopped bool
	cancel  context.CancelFunc
}

// newRig builds and starts the agent with the journal retention given and
// waits until it is ready and reads its scanner. Everything stops at the
// test's cleanup.
func newRig(t *testing.T, retention time.Duration) *rig {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	r := &rig{t: t, dir: dir, ctx: ctx, cancel: cancel}
	t.Cleanup(r.close)
	bin, err := kiosktest.Build(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	// Short payment times: the simulator answers success 20 ms after the
	// release; the agent's first status check comes 100 ms after it.
	if r.sim, err = kiosktest.ServeSim(sim.Config{Dir: filepath.Join(dir, "sim"), SuccessDelay: 20 * time.Millisecond}, "127.0.0.1:0", zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	// The scanner: a pty whose other end the agent's serial driver reads.
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close(); slave.Close() })
	ca, cert, key := r.sim.KassaFiles()
	r.cfg = kiosktest.Config{KassaID: sim.KassaID(1), ServiceURL: "https://" + r.sim.Addr, CA: ca, Cert: cert, Key: key,
		Journal: filepath.Join(dir, "journal.db"), Socket: filepath.Join(dir, "api.sock"), ScannerPort: slave.Name(),
		Handover: "host", Retention: retention}
	conf := filepath.Join(dir, "devices.yaml")
	if err := os.WriteFile(conf, []byte(r.cfg.YAML()), 0o600); err != nil {
		t.Fatal(err)
	}
	r.logPath = filepath.Join(dir, "kioskd.log")
	if r.agent, err = kiosktest.Start(bin, conf, r.logPath); err != nil {
		t.Fatal(err)
	}
	r.api = kiosktest.UnixClient(r.cfg.Socket)
	r.host = &kiosktest.Host{API: r.api, Ledger: kiosktest.NewLedger(), QR: r.sim.QR, Wake: r.api.Watch(ctx), Step: time.Minute,
		Feed: func(_ context.Context, payload string) error {
			_, err := master.WriteString(payload + "\r")
			return err
		}}
	if err := r.host.Idle(ctx); err != nil {
		t.Fatalf("agent not ready: %v\n%s", err, r.logTail())
	}
	if err := waitScanner(ctx, r.api); err != nil {
		t.Fatalf("%v\n%s", err, r.logTail())
	}
	return r
}

// failure gathers what the agent was doing when a sale failed: the last
// events (what became of the scan), its state and scanner metrics, then
// every goroutine's stack (SIGQUIT); the whole log is kept in dir.
func (r *rig) failure(dir string) string {
	var b strings.Builder
	b.WriteString("last events:\n")
	for _, e := range r.api.Recent() {
		b.WriteString("  " + e + "\n")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if st, err := r.api.State(ctx); err == nil {
		fmt.Fprintf(&b, "state: %+v\n", st)
	}
	if m, err := r.api.Metrics(ctx); err == nil {
		keys := make([]string, 0, len(m))
		for k := range m {
			if strings.HasPrefix(k, "kioskd_scan") || strings.HasPrefix(k, "kioskd_ready") || strings.HasPrefix(k, "kioskd_journal") {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "metric %s %g\n", k, m[k])
		}
	}
	r.stopped = true
	r.agent.Dump()
	if dir == "" {
		dir = os.TempDir()
	}
	kept := filepath.Join(dir, fmt.Sprintf("kioskd-failure-%d.log", r.agent.PID()))
	if data, err := os.ReadFile(r.logPath); err == nil && os.WriteFile(kept, data, 0o644) == nil {
		fmt.Fprintf(&b, "the agent's log, with its goroutines: %s\n", kept)
	}
	return b.String() + tail(r.logPath, 30)
}

// logTail is the end of the agent's log, and its exit if it exited.
func (r *rig) logTail() string {
	select {
	case <-r.agent.Exited():
		return fmt.Sprintf("kioskd exited: %v\n%s", r.agent.Err(), tail(r.logPath, 30))
	default:
		return tail(r.logPath, 30)
	}
}

// stop ends the agent with SIGTERM, as systemd does, and reports an
// unclean exit.
func (r *rig) stop() error {
	r.cancel() // the event stream
	r.api.CloseIdle()
	r.stopped = true
	if err := r.agent.Stop(15 * time.Second); err != nil {
		return fmt.Errorf("%w\n%s", err, r.logTail())
	}
	return nil
}

func (r *rig) close() {
	if r.agent != nil && !r.stopped {
		r.cancel()
		r.api.CloseIdle()
		r.agent.Kill()
	}
	r.cancel()
	if r.sim != nil {
		r.sim.Close()
	}
}

// waitScanner waits until the agent reads the pty.
func waitScanner(ctx context.Context, api *kiosktest.Client) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		m, err := api.Metrics(ctx)
		if err == nil && m[`kioskd_scanner_up{scanner="scan"}`] == 1 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the pty scanner never came up (metrics error %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// take samples the agent between sales. Goroutines and open files are the
// least of five reads over a second: one that lives for a call (a refund's
// last journal write, a keep-warm ping, a scrape's own connection) is not
// counted, while a leaked one is in every read.
func take(ctx context.Context, api *kiosktest.Client, journal string, sales int, elapsed time.Duration) (sample, error) {
	var s sample
	for try := range 5 {
		if try > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		m, err := api.Metrics(ctx)
		if err != nil {
			return sample{}, err
		}
		fi, err := os.Stat(journal)
		if err != nil {
			return sample{}, err
		}
		g, fds := int(m["go_goroutines"]), int(m["process_open_fds"])
		if try > 0 {
			g, fds = min(g, s.Goroutines), min(fds, s.FDs)
		}
		s = sample{Sales: sales, Elapsed: elapsed, RSS: m["process_resident_memory_bytes"], Heap: m["go_memstats_heap_inuse_bytes"],
			Goroutines: g, FDs: fds, JournalData: m["kioskd_journal_bytes"], JournalFile: fi.Size()}
	}
	return s, nil
}

// journalSettle is how long the journal takes to reach its steady size:
// the retention, then up to one compaction pass (every quarter of the
// retention, TestCompactionKeepsRetention), plus a margin.
func journalSettle(retention time.Duration) time.Duration {
	return retention + retention/4 + 30*time.Second
}

// flatness checks the end of the run against the end of the warm-up:
// goroutines and open files exactly flat, RSS within 10 % (plus 1 MiB for
// the page-granular noise of a short run). The journal file is checked
// within 10 % against the first sample after journalSettle (bbolt grows
// the file in steps and reuses the pages compaction frees); a run too
// short for that says so (note).
func flatness(s []sample, warm int, settle time.Duration) (problems []string, note string) {
	var w, j sample
	for _, x := range s {
		if w.Sales == 0 && x.Sales >= warm {
			w = x
		}
		if j.Elapsed == 0 && x.Elapsed >= settle {
			j = x
		}
	}
	e := s[len(s)-1]
	if e.Goroutines != w.Goroutines {
		problems = append(problems, fmt.Sprintf("goroutines %d after the warm-up, %d at the end", w.Goroutines, e.Goroutines))
	}
	if e.FDs != w.FDs {
		problems = append(problems, fmt.Sprintf("open files %d after the warm-up, %d at the end", w.FDs, e.FDs))
	}
	if e.RSS > w.RSS*1.10+(1<<20) {
		problems = append(problems, fmt.Sprintf("RSS %.1f MiB after the warm-up, %.1f MiB at the end (> +10%%)", w.RSS/(1<<20), e.RSS/(1<<20)))
	}
	switch {
	case j.Elapsed == 0 || e.Sales-j.Sales < 100:
		note = fmt.Sprintf("journal not judged: the run is shorter than %s (the journal's settling time) plus 100 sales", settle.Round(time.Second))
	case float64(e.JournalFile) > float64(j.JournalFile)*1.10:
		problems = append(problems, fmt.Sprintf("journal %d bytes after %s (sale %d), %d at the end (> +10%%): compaction does not bound it",
			j.JournalFile, j.Elapsed.Round(time.Second), j.Sales, e.JournalFile))
	default:
		note = fmt.Sprintf("journal %d bytes after %s (sale %d), %d at the end", j.JournalFile, j.Elapsed.Round(time.Second), j.Sales, e.JournalFile)
	}
	return problems, note
}

// table prints the samples, the warm-up row marked, and the start/end
// comparison.
func table(s []sample, warm int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%7s %9s %9s %9s %10s %4s %12s %12s\n", "sales", "elapsed", "RSS MiB", "heap MiB", "goroutines", "fds", "journal B", "journal data")
	for _, x := range s {
		mark := ""
		if x.Sales == warm {
			mark = "  <- warm-up done"
		}
		fmt.Fprintf(&b, "%7d %9s %9.2f %9.2f %10d %4d %12d %12.0f%s\n", x.Sales, x.Elapsed.Round(time.Second), x.RSS/(1<<20), x.Heap/(1<<20),
			x.Goroutines, x.FDs, x.JournalFile, x.JournalData, mark)
	}
	b.WriteString(chart(s))
	return b.String()
}

// chart is RSS over the sales as a text plot from zero, one column per
// sample: flat is a straight row.
func chart(s []sample) string {
	const rows = 10
	lo, hi := 0.0, 1.0
	for _, x := range s {
		hi = max(hi, x.RSS)
	}
	var b strings.Builder
	b.WriteString("RSS over the run (one column per sample):\n")
	for r := rows; r >= 0; r-- {
		level := lo + (hi-lo)*float64(r)/rows
		fmt.Fprintf(&b, "%7.2f MiB |", level/(1<<20))
		for _, x := range s {
			if int((x.RSS-lo)/(hi-lo)*rows+0.5) == r {
				b.WriteString(" *")
			} else {
				b.WriteString("  ")
			}
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "%11s +%s\n%11s  sales %d .. %d\n", "", strings.Repeat("--", len(s)), "", s[0].Sales, s[len(s)-1].Sales)
	return b.String()
}

func writeCSV(path string, s []sample) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"sales", "elapsed_s", "rss_bytes", "heap_inuse_bytes", "goroutines", "open_fds", "journal_file_bytes", "journal_data_bytes"})
	for _, x := range s {
		_ = w.Write([]string{strconv.Itoa(x.Sales), strconv.FormatFloat(x.Elapsed.Seconds(), 'f', 1, 64),
			strconv.FormatFloat(x.RSS, 'f', 0, 64), strconv.FormatFloat(x.Heap, 'f', 0, 64), strconv.Itoa(x.Goroutines),
			strconv.Itoa(x.FDs), strconv.FormatInt(x.JournalFile, 10), strconv.FormatFloat(x.JournalData, 'f', 0, 64)})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	l := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return "kioskd log:\n  | " + strings.Join(l, "\n  | ")
}
