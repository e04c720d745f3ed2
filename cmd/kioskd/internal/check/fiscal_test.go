package check

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/fiscal"
	"github.com/kioskd/kioskd/payment/fiscal/fiscalsim"
	fsimtest "github.com/kioskd/kioskd/payment/fiscal/fiscalsim/simtest"
	"github.com/kioskd/kioskd/payment/smartpay/sim/simtest"
)

func fiscalYAML(url string) string {
	return fmt.Sprintf(`fiscal:
  provider: atol
  url: %s
  taxation: usn_income
  vat: none
  machine_number: VM-1
  place: Холл
  address: Москва
`, url)
}

// kioskd check asks the ККТ for its shift through the web server
// simulator, without making a document: a closed shift passes (kioskd
// opens one), an expired one is a warning, a ККТ that does not answer and
// an FN fault are failures that say what to do.
func TestFiscalProvider(t *testing.T) {
	url, ca, cert, key := startSim(t)
	kkt := fsimtest.NewAtol(t, fiscalsim.Config{}, zap.NewNop())
	opts := Options{SkipDevices: true, ServiceUser: "no-such-user-kioskd-test", Timeout: 5 * time.Second}
	cfg := configFor(t, url, ca, cert, key, fiscalYAML(kkt.URL))
	fiscalLines := func(r *Report) (passed []string, problems []string) {
		for _, l := range r.Passed {
			if strings.HasPrefix(l, "fiscal: ") {
				passed = append(passed, l)
			}
		}
		return passed, only(r, "fiscal")
	}

	r := Run(context.Background(), cfg, opts)
	logReport(t, r)
	if passed, problems := fiscalLines(r); len(problems) != 0 || len(passed) != 1 ||
		!strings.Contains(passed[0], "provider atol ("+kkt.URL+") answered in ") || !strings.Contains(passed[0], "the shift is closed") {
		t.Fatalf("closed shift: passed %q, problems %q", passed, problems)
	}
	if n := len(kkt.Sim.State().Receipts); n != 0 || kkt.Sim.State().FDNumber != 0 {
		t.Fatalf("check made fiscal documents: %+v", kkt.Sim.State())
	}

	// Open a shift and let it age past 24 h.
	rs, err := cfg.Receipts(zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rs.Provider.(fiscal.Shifts).OpenShift(context.Background()); err != nil {
		t.Fatal(err)
	}
	kkt.Sim.AdvanceClock(25 * time.Hour)
	r = Run(context.Background(), cfg, opts)
	if _, problems := fiscalLines(r); len(problems) != 1 || !strings.HasPrefix(problems[0], "warning fiscal: provider atol") ||
		!strings.Contains(problems[0], "shift 1 is expired") || !strings.Contains(problems[0], "kioskd closes and opens it") {
		t.Fatalf("expired shift: %q", problems)
	}

	// Nothing listens at the URL.
	cfg = configFor(t, url, ca, cert, key, fiscalYAML("http://"+simtest.FreeAddr(t)+"/api/v2"))
	r = Run(context.Background(), cfg, opts)
	if _, problems := fiscalLines(r); len(problems) != 1 || !strings.Contains(problems[0], "unreachable") ||
		!strings.Contains(problems[0], "is the ATOL web server running") {
		t.Fatalf("no ККТ: %q", problems)
	}
}
