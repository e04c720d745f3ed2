package chaostest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/kioskd/kioskd/payment/kiosktest"
)

var (
	flagSales = flag.Int("chaos.sales", 0, "sales to run (default 40, 15 with -short)")
	flagSeed  = flag.Uint64("chaos.seed", 0, "seed of the sales' plans (0: a random seed, printed)")
	flagKeep  = flag.Bool("chaos.keep", false, "keep the work directory (journal, kioskd log) and print its path")
)

// kioskdBin is the real kioskd, built once by TestMain.
var kioskdBin string

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "kioskd-chaos-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaostest:", err)
		return 2
	}
	defer os.RemoveAll(dir)
	var flags []string
	if raceEnabled {
		flags = append(flags, "-race") // races in kioskd under chaos fail the run too
	}
	if kioskdBin, err = kiosktest.Build(context.Background(), dir, flags...); err != nil {
		fmt.Fprintln(os.Stderr, "chaostest:", err)
		return 2
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	return code
}
