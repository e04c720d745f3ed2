//go:build linux

package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/kioskd/kioskd/scanner/vmtest"
)

// env is what every scenario can use: the control channel to the host and
// the gadgets it may unplug.
type env struct {
	ctl    *vmtest.Ctl
	hidPOS *gadget   // Honeywell HID POS scanner, 0c2e:10d3 on dummy_udc.0
	acm    *gadget   // CDC-ACM scanner, 0c2e:0720 (Honeywell serial) on dummy_udc.1
	qr     []byte    // the payload scanned when no simulator provides one
	sim    *exec.Cmd // smartpay-sim, started by the first kiosk scenario
	sd     sdState   // what the systemd scenarios hand on to each other
}

type scenario struct {
	name string
	run  func(ctx context.Context, e *env) (string, error)
}

func main() {
	rc := run()
	exitQEMU(rc)
	os.Exit(rc)
}

func run() int {
	only := flag.String("only", "", "comma-separated scenarios to run (default: all)")
	ctlPath := flag.String("ctl", "/dev/ttyS1", "control channel to vmhost")
	flag.BoolVar(&debug, "debug", false, "log the drivers at debug level on the console")
	suite := flag.String("suite", "initramfs", "scenarios: initramfs (the busybox guest) or systemd (systemd as PID 1, the Debian package)")
	flag.Parse()

	f, err := os.OpenFile(*ctlPath, os.O_RDWR, 0)
	if err == nil {
		err = makeRaw(f)
	}
	if err != nil {
		fmt.Println("VM setup: FAIL control channel:", err)
		return 1
	}
	e := &env{ctl: vmtest.NewCtl(f), qr: sampleQR()}
	if _, err := e.ctl.Do("hello"); err != nil {
		fmt.Println("VM setup: FAIL host does not answer:", err)
		return 1
	}
	list := scenarios()
	if *suite == "systemd" {
		list = systemdScenarios()
	}
	if err := e.setupGadgets(); err != nil {
		fmt.Println("VM setup: FAIL", err)
		return 1
	}
	want := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		if s != "" {
			want[s] = true
		}
	}
	fails := 0
	for i, s := range list {
		// The first scenario waits for every device: it always runs.
		if i > 0 && len(want) > 0 && !want[s.name] {
			continue
		}
		t0 := time.Now()
		bound := 90 * time.Second
		if d, ok := longScenarios[s.name]; ok {
			bound = d
		}
		info, hung, err := runBounded(s, e, bound)
		took := time.Since(t0).Round(time.Millisecond)
		if hung {
			// A scenario that ignores its context leaves devices in an
			// unknown state: report it with every goroutine's stack and stop.
			fmt.Printf("VM %s: FAIL hung past its deadline (%s)\n", s.name, took)
			buf := make([]byte, 1<<20)
			os.Stdout.Write(buf[:runtime.Stack(buf, true)])
			return fails + 1
		}
		if err != nil {
			fails++
			fmt.Printf("VM %s: FAIL %v (%s)\n", s.name, err, took)
			continue
		}
		fmt.Printf("VM %s: PASS %s (%s)\n", s.name, info, took)
	}
	return fails
}

// runBounded runs one scenario with a deadline; hung reports that it did not
// return within a grace period after the deadline.
func runBounded(s scenario, e *env, d time.Duration) (info string, hung bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	type result struct {
		info string
		err  error
	}
	done := make(chan result, 1)
	go func() { // owner: runBounded; abandoned only when the whole run stops
		info, err := s.run(ctx, e)
		done <- result{info, err}
	}()
	select {
	case r := <-done:
		return r.info, false, r.err
	case <-time.After(d + 15*time.Second):
		return "", true, nil
	}
}

func (e *env) setupGadgets() error {
	// Under systemd, sys-kernel-config.mount has usually mounted it already.
	if _, err := os.Stat(gadgetRoot); err != nil {
		if err := syscall.Mount("none", "/sys/kernel/config", "configfs", 0, ""); err != nil {
			return fmt.Errorf("mount configfs: %w", err)
		}
	}
	var err error
	e.hidPOS, err = newGadget("hidpos", "dummy_udc.0", 0x0c2e, 0x10d3, "CM4680SR HID POS", "VMPOS0001")
	if err != nil {
		return err
	}
	if err := e.hidPOS.addFunction("hid.usb0", map[string][]byte{
		"protocol": []byte("0"), "subclass": []byte("0"), "report_length": []byte("64"),
		"report_desc": honeywellPOSDescriptor,
	}); err != nil {
		return err
	}
	e.acm, err = newGadget("acm", "dummy_udc.1", 0x0c2e, 0x0720, "Scanner CDC", "VMACM0001")
	if err != nil {
		return err
	}
	if err := e.acm.addFunction("acm.usb0", nil); err != nil {
		return err
	}
	if err := e.hidPOS.bind(); err != nil {
		return err
	}
	return e.acm.bind()
}

// sampleQR is a payload with the shape of a KD Pay QR (JSON, base64 fields
// of realistic length), used where no simulator generated one: 9 HID POS
// reports long.
func sampleQR() []byte {
	enc := bytes.Repeat([]byte("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODkrLw"), 4)[:344]
	sig := bytes.Repeat([]byte("MEUCIQDx7mZ0K9"), 7)[:96]
	return []byte(fmt.Sprintf(`{"id_loyalty":"7000123456789","encrypted":"%s","sign":"%s"}`, enc, sig))
}
