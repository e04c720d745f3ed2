package payment_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

var keyDir string

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "kioskd-payment-keys")
	if err != nil {
		panic(err)
	}
	keyDir = d
	if _, err := sim.New(sim.Config{Dir: d}, zap.NewNop()); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(d)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
