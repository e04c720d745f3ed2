package chaostest

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"go.uber.org/goleak"
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
	kioskdBin = filepath.Join(dir, "kioskd")
	args := []string{"build", "-o", kioskdBin}
	if raceEnabled {
		args = append(args, "-race") // races in kioskd under chaos fail the run too
	}
	build := exec.Command(goTool(), append(args, "github.com/kioskd/kioskd/cmd/kioskd")...)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "chaostest: building kioskd: %v\n%s", err, out)
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

// goTool is the go command of the toolchain running the test.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go") //nolint:staticcheck // only a fallback when go is not on PATH
}
