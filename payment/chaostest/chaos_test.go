package chaostest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/journal"
	"github.com/kioskd/kioskd/payment/kiosktest"
	"github.com/kioskd/kioskd/payment/proctest"
	sp "github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
	"github.com/kioskd/kioskd/payment/smartpay/sim/simtest"
	"github.com/kioskd/kioskd/scanner/serial/serialtest"
)

func TestChaos(t *testing.T) {
	sales := *flagSales
	if sales <= 0 {
		sales = 40
		if testing.Short() {
			sales = 15
		}
	}
	seed := *flagSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("chaos: seed %d, %d sales; replay: go test -race ./payment/chaostest -run Chaos -v -timeout 60m -chaos.seed=%d -chaos.sales=%d",
		seed, sales, seed, sales)
	h := newHarness(t)
	h.seed = seed
	b, k, s := h.book, h.k, h.s
	started := time.Now()
	for i := range sales {
		h.sale(newPlan(seed, i))
	}
	ran := time.Since(started)
	h.settle()
	infos := h.refundInfos()
	st, err := s.state()
	if err != nil {
		t.Fatal(err)
	}
	if err := k.stop(); err != nil {
		b.violation("%v", err)
	}
	b.unrecorded, b.givenUp = readJournal(t, k, st)
	b.check(st, infos)
	t.Logf("%s\n  ran %s, settled in %s", b.summary(seed, sales, st), ran.Round(time.Millisecond), (time.Since(started) - ran).Round(time.Millisecond))
	if len(b.violations) > 0 {
		state, _ := json.MarshalIndent(st, "", "  ")
		t.Logf("simulator state:\n%s", state)
		t.Logf("kioskd log tail:\n%s", k.logTail(20000))
		for _, v := range b.violations {
			t.Error(v)
		}
		t.Errorf("%d violations; replay with -chaos.seed=%d -chaos.sales=%d (kill timing may differ)", len(b.violations), seed, sales)
	}
}

// newHarness starts the simulator, the pty scanner and kioskd (in a temp
// dir, or one kept with -chaos.keep) and returns the host that drives them.
func newHarness(t *testing.T) *host {
	dir := t.TempDir()
	if *flagKeep {
		var err error
		if dir, err = os.MkdirTemp("", "kioskd-chaos"); err != nil {
			t.Fatal(err)
		}
		t.Logf("chaos: work directory %s (kioskd.log, journal.db)", dir)
	}
	b := newBook()
	s := startSimulator(t, b)
	// The serial scanner: the test holds both ends of the pty, so the device
	// and its line settings outlive every kioskd process.
	link := filepath.Join(dir, "scanner")
	scanner := serialtest.New(t, link)
	k := newKioskd(t, dir, s.srv, link)
	s.k = k
	if err := k.start(); err != nil {
		t.Fatalf("%v; log:\n%s", err, k.logTail(6000))
	}
	return &host{t: t, k: k, s: s, pty: scanner, book: b}
}

// mustWait waits for one of the states or fails the test.
func (h *host) mustWait(t *testing.T, want ...payment.State) payment.Status {
	t.Helper()
	st, err := h.wait(fmt.Sprint(want), func(st payment.Status) bool { return slices.Contains(want, st.State) })
	if err != nil {
		t.Fatalf("%v; log:\n%s", err, h.k.logTail(6000))
	}
	return st
}

// settle clears the faults and waits until kioskd and the service agree
// that nothing is in flight.
func (h *host) settle() {
	h.s.disarm()
	if err := h.s.clearFaults(); err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.waitQuiet(); err != nil {
		h.book.violation("settling: %v", err)
	}
	h.retry()
	deadline := time.Now().Add(2 * time.Minute)
	var why string
	for time.Now().Before(deadline) {
		why = h.unsettled()
		if why == "" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.book.violation("did not settle in 2 minutes: %s", why)
}

// unsettled says what is still in flight, or "".
func (h *host) unsettled() string {
	st, err := h.k.state()
	if err != nil {
		if err := h.checkAlive(); err != nil {
			return "kioskd restarted"
		}
		return err.Error()
	}
	h.observe(st)
	switch {
	case !st.Ready:
		return "kioskd recovering"
	case st.State != payment.Idle && !st.State.Terminal():
		return "a sale is " + st.State.String()
	case st.FiscalPending > 0:
		return fmt.Sprintf("%d fiscal records pending", st.FiscalPending)
	}
	ss, err := h.s.state()
	if err != nil {
		return err.Error()
	}
	// A commit kioskd has no record of stays committed: it moves no money
	// and the service expires it (which ones kioskd has no record of is
	// read from the journal after the stop, and checked then).
	if ok, why := kiosktest.Settled(ss, kiosktest.CheckOptions{Journaled: func(string) bool { return false }}); !ok {
		return why
	}
	for id, info := range h.refundInfos() {
		if !info.Done {
			return fmt.Sprintf("refund %s is %s at kioskd", id, info.Phase)
		}
	}
	return ""
}

// readJournal reads two facts from kioskd's journal after the stop.
//
// unrecorded are the purchases left committed at the service whose sale
// the journal has no record of: kioskd writes a sale's first record
// alongside its commit (a commit moves no money), so a kill between the two
// leaves a commit for the service to expire. A commit left although the
// journal has the sale is a violation, reported by check.
//
// givenUp are the fiscal records kioskd gave up as unconfirmed after
// payment.MaxFiscalLostAnswers sends without an answer, by fiscalKey.
func readJournal(t *testing.T, k *kioskd, st sim.State) (unrecorded, givenUp map[string]bool) {
	j, err := journal.Open(k.journalPath())
	if err != nil {
		t.Fatalf("reading kioskd's journal after the stop: %v", err)
	}
	defer j.Close()
	unrecorded = map[string]bool{}
	for _, p := range st.Purchases {
		if p.Status != sp.Committed {
			continue
		}
		if _, err := j.Sale(p.KassaPurchaseID); errors.Is(err, journal.ErrNotFound) {
			unrecorded[p.KassaPurchaseID] = true
		} else if err != nil {
			t.Fatalf("journal: %v", err)
		}
	}
	recs, err := j.Fiscals(false)
	if err != nil {
		t.Fatalf("journal: %v", err)
	}
	givenUp = map[string]bool{}
	for _, f := range recs {
		if !f.Unconfirmed {
			continue
		}
		key := sim.FiscalRecord{Version: f.Version, PurchaseID: f.PurchaseID}
		if f.PurchaseID == "" { // a sale paid elsewhere: known by its QR
			q, err := sp.ParseQR(f.Code)
			if err != nil {
				t.Fatalf("journal: fiscal record %d: %v", f.Seq, err)
			}
			key.IDLoyalty = q.IDLoyalty
		}
		givenUp[fiscalKey(key)] = true
	}
	return unrecorded, givenUp
}

// refundInfos asks kioskd about every refund id it gave the host.
func (h *host) refundInfos() map[string]payment.RefundInfo {
	out := map[string]payment.RefundInfo{}
	for _, rr := range h.book.refunds {
		for id := range rr.ids {
			ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
			info, err := h.k.unix.RefundInfo(ctx, url.PathEscape(id))
			cancel()
			if err == nil {
				out[id] = info
			}
		}
	}
	return out
}

// startSimulator serves the simulator's kassa API over mTLS on loopback
// and its admin API over plain HTTP, until the test ends.
func startSimulator(t testing.TB, b *book) *simulator {
	s := &simulator{book: b}
	s.trap.Kill = func(at proctest.At) {
		s.k.kill()
		s.book.countKill(at.String()) // killPlan's name of a kill at a call
	}
	s.srv = simtest.NewServer(t, sim.Config{SuccessDelay: 30 * time.Millisecond, Middleware: s.trap.Middleware})
	admin := httptest.NewServer(s.srv.AdminHandler())
	t.Cleanup(admin.Close)
	s.adminURL = admin.URL
	return s
}

// admin calls the simulator's admin API.
func (s *simulator) admin(method, path, body string) ([]byte, error) {
	req, err := http.NewRequest(method, s.adminURL+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return b, err
}

// qr is a fresh payment QR of user, as the mobile app makes it.
func (s *simulator) qr(user string) (string, error) {
	b, err := s.admin("POST", "/sim/qr?user="+url.QueryEscape(user), "")
	return strings.TrimSpace(string(b)), err
}

func (s *simulator) inject(f sim.Fault) error {
	in := map[string]any{"method": f.Method, "count": f.Count, "kind": f.Kind}
	if f.Delay > 0 {
		in["delay"] = f.Delay.String()
	}
	if f.Status != 0 {
		in["status"] = f.Status
	}
	body, _ := json.Marshal(in)
	_, err := s.admin("POST", "/sim/faults", string(body))
	s.book.mu.Lock()
	s.book.injected++
	s.book.forCalls += f.Count
	s.book.mu.Unlock()
	return err
}

func (s *simulator) clearFaults() error {
	_, err := s.admin("DELETE", "/sim/faults", "")
	return err
}

func (s *simulator) state() (sim.State, error) {
	var st sim.State
	b, err := s.admin("GET", "/sim/state", "")
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	return st, err
}
