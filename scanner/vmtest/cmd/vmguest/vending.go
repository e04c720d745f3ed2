//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kioskd/kioskd/payment/smartpay/sim"
	"github.com/kioskd/kioskd/payment/vending"
	"github.com/kioskd/kioskd/payment/vending/vmcsim"
	"github.com/kioskd/kioskd/scanner/vmtest"
)

// The vending scenarios run kioskd as a vending machine's cashless device:
// the MDB adapter is a USB serial device in the guest (the CDC-ACM gadget
// on dummy_hcd, which kioskd opens as /dev/ttyACM0 through cdc_acm), the
// emulated machine plays the adapter on the gadget's end (/dev/ttyGS0), the
// QR comes through QEMU's usb-serial and the customer display is the pole
// display on the other. A scenario passes when the machine and the
// simulator agree on how the vend ended.

func vendingScenarios() []scenario {
	return []scenario{
		{"vending-paid", func(ctx context.Context, e *env) (string, error) {
			return e.vend(ctx, "vending-paid", vmcsim.DispenseOK)
		}},
		{"vending-failed", func(ctx context.Context, e *env) (string, error) {
			return e.vend(ctx, "vending-failed", vmcsim.DispenseFail)
		}},
	}
}

// vendProduct is what the machine sells in these scenarios.
var vendProduct = vmcsim.Product{Item: 11, Name: "Вода 0,5 л", Price: 8000}

func (e *env) vend(ctx context.Context, name string, dispense vmcsim.Dispense) (string, error) {
	adapter := ttyOnPort("ttyACM", "")
	if adapter == "" {
		return "", errors.New("the CDC-ACM gadget is not bound: no /dev/ttyACM*")
	}
	m, err := vmcsim.New(vmcsim.Config{Link: adapter, TTY: "/dev/ttyGS0", Products: []vmcsim.Product{vendProduct},
		DispenseTime: 200 * time.Millisecond, SetupDelay: 50 * time.Millisecond})
	if err != nil {
		return "", err
	}
	mctx, stopMachine := context.WithCancel(ctx)
	machineDone := make(chan error, 1)
	go func() { machineDone <- m.Run(mctx) }() // ends with mctx, below
	defer func() { stopMachine(); <-machineDone }()
	if err := m.SetDispense(dispense); err != nil {
		return "", err
	}

	scanner := fmt.Sprintf("driver: serial\n    port: %s\n    baud: 9600", ttyOnPort("ttyUSB", portSer))
	k, err := e.launchKiosk(ctx, name, "", scanner, m.VendingYAML(60*time.Second))
	if err != nil {
		return "", err
	}
	defer k.stop()
	t0 := time.Now()
	if _, err := m.Wait(ctx, func(s vmcsim.Snapshot) bool { return s.SlaveOn && s.Reader == vending.ReaderEnabled }); err != nil {
		return "", fmt.Errorf("kioskd never set the adapter up on %s: %w\n%s", adapter, err, k.log())
	}
	setUp := time.Since(t0)
	before, err := simState()
	if err != nil {
		return "", err
	}
	if _, err := e.ctl.Do("pole-reset"); err != nil {
		return "", err
	}
	if err := m.Select(vendProduct.Item); err != nil {
		return "", err
	}
	// The customer sees the product and its price on the pole display.
	if _, err := e.ctl.Do("pole-expect", vmtest.B64([]byte(vendProduct.Name)), "10000"); err != nil {
		return "", fmt.Errorf("pole display: %w\n%s", err, k.log())
	}
	qr, err := newQR()
	if err != nil {
		return "", err
	}
	if _, err := e.feedSerial(qr); err != nil {
		return "", err
	}
	snap, err := m.Wait(ctx, func(s vmcsim.Snapshot) bool { return len(s.Outcomes) == 1 })
	if err != nil {
		return "", fmt.Errorf("the vend never ended on the machine: %w\n%s", err, k.log())
	}
	o := snap.Outcomes[0]
	want := vmcsim.Vended
	if dispense == vmcsim.DispenseFail {
		want = vmcsim.VendFailed
	}
	if o.Kind != want || o.Approved != "80.00" {
		return "", fmt.Errorf("machine: %+v, want %v approved at 80.00\n%s", o, want, k.log())
	}
	p, err := e.newPurchase(ctx, before, func(p sim.Purchase) bool {
		if dispense == vmcsim.DispenseFail {
			return p.Status == "cancelled" && p.Reversed && !p.Confirmed
		}
		return p.Status == "success" && p.Confirmed
	})
	if err != nil {
		return "", fmt.Errorf("%w\n%s", err, k.log())
	}
	if p.Amount != vendProduct.Price {
		return "", fmt.Errorf("paid %d kopecks for a price of %d", p.Amount, vendProduct.Price)
	}
	screen := "Оплачено"
	if dispense == vmcsim.DispenseFail {
		screen = "Товар не выдан"
	}
	if _, err := e.ctl.Do("pole-expect", vmtest.B64([]byte(screen)), "10000"); err != nil {
		return "", fmt.Errorf("pole display: %w\n%s", err, k.log())
	}
	if err := k.stop(); err != nil {
		return "", err
	}
	end := "paid, vended, confirmed"
	if dispense == vmcsim.DispenseFail {
		end = "paid, vend failed, reversed"
	}
	return fmt.Sprintf("adapter on %s (cdc_acm) set up in %s; the selection on the pole; %s in /sim/state; the machine got %s",
		adapter, setUp.Round(time.Millisecond), end, approval(snap.Commands)), nil
}

// approval is the C,VEND the machine received.
func approval(commands []string) string {
	for _, c := range commands {
		if strings.HasPrefix(c, "C,VEND,") {
			return c
		}
	}
	return "no C,VEND"
}

// newPurchase waits for a purchase not in before for which ok holds; a
// purchase that ends otherwise fails.
func (e *env) newPurchase(ctx context.Context, before sim.State, ok func(sim.Purchase) bool) (sim.Purchase, error) {
	old := map[string]bool{}
	for _, p := range before.Purchases {
		old[p.ID] = true
	}
	for {
		st, err := simState()
		if err == nil {
			for _, p := range st.Purchases {
				if !old[p.ID] && ok(p) {
					return p, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return sim.Purchase{}, fmt.Errorf("no such purchase in /sim/state (%+v): %w", st.Purchases, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
