package smartpay_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
	"github.com/kioskd/kioskd/payment/smartpay/sim/simtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a simulator serving the kassa API over real mTLS on loopback, with
// every request and answer validated against openapi.yaml.
type env struct {
	*simtest.Server
	t  testing.TB
	ct *contract
}

func newEnv(t testing.TB, cfg sim.Config) *env {
	t.Helper()
	if cfg.SuccessDelay == 0 {
		cfg.SuccessDelay = 50 * time.Millisecond
	}
	ct := loadContract(t)
	cfg.Middleware = ct.middleware
	t.Cleanup(func() { ct.check(t) }) // runs after the server has stopped
	return &env{Server: simtest.NewServer(t, cfg), t: t, ct: ct}
}

// qr returns a fresh, valid QR of user as the scanner path would: parsed by ParseQR.
func (e *env) qr(user string) smartpay.QR {
	e.t.Helper()
	return e.QRCode(e.t, sim.QRParams{UserID: user})
}

// invalid runs f, whose requests break the contract on purpose to test the
// simulator's own checks; answers are still validated.
func (e *env) invalid(f func()) {
	e.ct.lenient.Store(true)
	defer e.ct.lenient.Store(false)
	f()
}

// commit commits a fresh QR for kassa id kid and returns the purchase id.
func commit(t testing.TB, e *env, c *smartpay.Client, kid string) string {
	t.Helper()
	r, err := c.Commit(context.Background(), smartpay.CommitRequest{KassaPurchaseID: kid, QR: e.qr("user-" + kid)})
	if err != nil {
		t.Fatalf("commit %s: %v", kid, err)
	}
	return r.PurchaseID
}

// waitStatus polls until the purchase reaches want (or fails the test).
func waitStatus(t testing.TB, c *smartpay.Client, id string, want smartpay.PurchaseStatus) smartpay.StatusResponse {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := c.Status(context.Background(), id)
		if err != nil {
			t.Fatalf("status: %v", err)
		}
		if st.Status == want {
			return st
		}
		if st.Status.Final() || time.Now().After(deadline) {
			t.Fatalf("status %s, want %s", st.Status, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// paid runs a purchase to success and returns its id.
func paid(t testing.TB, e *env, c *smartpay.Client, kid string, amount int64) string {
	t.Helper()
	id := commit(t, e, c, kid)
	if _, err := c.Release(context.Background(), id, amount); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, id, smartpay.Success)
	return id
}

func wantCode(t testing.TB, err error, code int) {
	t.Helper()
	if got := smartpay.CodeOf(err); got != code {
		t.Fatalf("error %v: code %d, want %d", err, got, code)
	}
}
