package smartpay_test

import (
	"os"
	"strings"
	"testing"

	"github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
	"github.com/kioskd/kioskd/payment/smartpay/sim/simtest"
)

// The test harness itself (package simtest): two servers share the key material but not their state; a client of
// kassa 2 is that kassa; Down refuses connections and Up serves again.
func TestSimtestServer(t *testing.T) {
	ctx := bg
	a, b := simtest.NewServer(t, sim.Config{}), simtest.NewServer(t, sim.Config{})
	caA, _ := os.ReadFile(a.ClientConfig(1).CAFile)
	caB, _ := os.ReadFile(b.ClientConfig(1).CAFile)
	if a.Dir == b.Dir || string(caA) != string(caB) || len(caA) == 0 {
		t.Fatal("servers should have their own directories with the same key material")
	}
	c := a.NewClient(t, a.Kassa(2))
	r, err := c.Commit(ctx, smartpay.CommitRequest{KassaPurchaseID: "1", QR: a.QRCode(t, sim.QRParams{UserID: "u"})})
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := a.State().Purchase(r.PurchaseID); !ok || p.Kassa != sim.KassaID(2) || len(b.State().Purchases) != 0 {
		t.Fatalf("purchase %+v at a; %d at b", p, len(b.State().Purchases))
	}
	if q, err := smartpay.ParseQR([]byte(a.Payload(t, "v"))); err != nil || q.IDLoyalty != "v" {
		t.Fatalf("payload: %+v %v", q, err)
	}
	if !strings.Contains(a.ServiceYAML(), "url: "+a.URL+"\n") {
		t.Fatalf("service section:\n%s", a.ServiceYAML())
	}

	a.Down()
	if err := c.Ping(ctx); err == nil || smartpay.VerdictOf(err) == smartpay.Refused {
		t.Fatalf("ping while down: %v", err)
	}
	a.Up()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping after Up: %v", err)
	}
	a.Fault(t, sim.Fault{Method: sim.MethodPing, Kind: sim.FaultStatus, Status: 503, Count: 100})
	a.ClearFaults()
	if err := c.Ping(ctx); err != nil || a.Requests(sim.MethodPing) != 2 { // none arrived while down
		t.Fatalf("ping after ClearFaults: %v, %d pings", err, a.Requests(sim.MethodPing))
	}
}
