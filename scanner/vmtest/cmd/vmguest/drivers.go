//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/display/vfd"
	"github.com/kioskd/kioskd/scanner"
	_ "github.com/kioskd/kioskd/scanner/hid"    // registers driver "hid"
	_ "github.com/kioskd/kioskd/scanner/serial" // registers driver "serial"
	"github.com/kioskd/kioskd/scanner/settings"
	_ "github.com/kioskd/kioskd/scanner/usb" // registers driver "usb"
	"github.com/kioskd/kioskd/scanner/vmtest"
)

// The driver scenarios read each device through the project's scanner
// drivers under the real Supervisor, as the agent does, and drive the pole
// display through display/vfd.

// driverScenarios are the scenarios that read through the scanner drivers.
func driverScenarios() []scenario {
	return []scenario{
		{"serial-driver", serialDriver},
		{"acm-driver", acmDriver},
		{"hidpos-hid", func(ctx context.Context, e *env) (string, error) { return hidPOS(ctx, e, "hid") }},
		{"hidpos-usb", func(ctx context.Context, e *env) (string, error) { return hidPOS(ctx, e, "usb") }},
		{"keyboard-hid", func(ctx context.Context, e *env) (string, error) { return keyboard(ctx, e, "hid") }},
		{"keyboard-usb", func(ctx context.Context, e *env) (string, error) { return keyboard(ctx, e, "usb") }},
		{"pole-vfd", poleVFD},
		{"replug-serial", replugSerial},
		{"replug-acm", replugACM},
		{"replug-hidpos", replugHIDPOS},
		{"replug-keyboard", replugKeyboard},
	}
}

// sink is the Handler of a supervised test scanner: it records every code
// and every status change with its time.
type sink struct {
	codes chan scanner.Code
	mu    sync.Mutex
	ups   []time.Time // when the scanner went up
	downs []time.Time
}

func (s *sink) FrameStarted(string, time.Time) {}
func (s *sink) CodeRead(c scanner.Code) {
	select {
	case s.codes <- c:
	default:
	}
}

func (s *sink) status(st scanner.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch st.State {
	case scanner.StateUp:
		s.ups = append(s.ups, time.Now())
	case scanner.StateDown:
		s.downs = append(s.downs, time.Now())
	}
}

// waitState waits for the n-th up (or down) transition and returns its time.
func (s *sink) wait(ctx context.Context, up bool, n int) (time.Time, error) {
	for {
		s.mu.Lock()
		l := s.downs
		if up {
			l = s.ups
		}
		if len(l) >= n {
			t := l[n-1]
			s.mu.Unlock()
			return t, nil
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("scanner never went up=%v (#%d): %w", up, n, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// debug makes the drivers log to the console (-debug).
var debug bool

// supervised runs one scanner under a Supervisor until the returned stop is
// called, and returns once the scanner is open; stop returns once the
// Supervisor has closed the device.
func supervised(ctx context.Context, cfg scanner.Config) (*sink, func() error, error) {
	log := zap.NewNop()
	if debug {
		log, _ = zap.NewDevelopment()
	}
	open, err := scanner.NewOpener(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	s := &sink{codes: make(chan scanner.Code, 8)}
	sup, err := scanner.NewSupervisor([]scanner.Source{{Name: cfg.Name, Open: open}}, s, log,
		scanner.SupervisorOptions{OnStatus: s.status})
	if err != nil {
		return nil, nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sup.Run(rctx) }() // owner: stop
	stop := sync.OnceValue(func() error { // deferred and called: must be idempotent
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		return nil
	})
	if _, err := s.wait(ctx, true, 1); err != nil {
		stop()
		return nil, nil, err
	}
	return s, stop, nil
}

func expectCode(ctx context.Context, s *sink, want []byte) (scanner.Code, error) {
	select {
	case c := <-s.codes:
		if !bytes.Equal(c.Data, want) {
			return c, fmt.Errorf("read %q, want %q", c.Data, want)
		}
		return c, nil
	case <-ctx.Done():
		return scanner.Code{}, fmt.Errorf("no code read: %w", ctx.Err())
	}
}

// entry reads one scanners entry through the registered drivers, the way
// devices.yaml is read; pairs alternate key and value.
func entry(pairs ...string) scanner.Config {
	var d settings.Decoder
	e, ok := scanner.Drivers.Decode(&d, settings.Flat(pairs...), "scanner")
	if !ok || len(d.Problems()) > 0 {
		panic(fmt.Sprintf("vmguest: scanner entry %q: %+v", pairs, d.Problems()))
	}
	return e
}

func serialConfig() scanner.Config {
	return entry("name", "ser0", "driver", "serial", "port", ttyOnPort("ttyUSB", portSer), "baud", "9600")
}

func acmConfig() scanner.Config {
	return entry("name", "acm0", "driver", "serial", "port", ttyOnPort("ttyACM", ""), "baud", "115200")
}

// feedSerial plays a serial scanner on QEMU's usb-serial: the host writes the
// code and a CR into the chardev.
func (e *env) feedSerial(code []byte) (time.Time, error) {
	t0 := time.Now()
	_, err := e.ctl.Do("serial", "ser0", vmtest.B64(append(append([]byte(nil), code...), '\r')))
	return t0, err
}

// feedACM plays a CDC scanner: the gadget's tty end writes the code.
func (e *env) feedACM(code []byte) (time.Time, error) {
	gs, err := openRawTTY("/dev/ttyGS0")
	if err != nil {
		return time.Time{}, err
	}
	defer gs.Close()
	t0 := time.Now()
	_, err = gs.Write(append(append([]byte(nil), code...), '\r'))
	return t0, err
}

func readOnce(ctx context.Context, cfg scanner.Config, code []byte, feed func([]byte) (time.Time, error)) (string, error) {
	s, stop, err := supervised(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer stop()
	t0, err := feed(code)
	if err != nil {
		return "", err
	}
	c, err := expectCode(ctx, s, code)
	if err != nil {
		return "", err
	}
	if err := stop(); err != nil {
		return "", err
	}
	dev := settings.ResourceOf(cfg.Settings).Path
	if dev == "" {
		dev = settings.ResourceOf(cfg.Settings).USB.String()
	}
	return fmt.Sprintf("%s: %d-byte QR read by driver %q, fed->read %s", dev, len(c.Data), cfg.Driver,
		c.Time.Sub(t0).Round(time.Millisecond)), nil
}

func serialDriver(ctx context.Context, e *env) (string, error) {
	return readOnce(ctx, serialConfig(), e.qr, e.feedSerial)
}

func acmDriver(ctx context.Context, e *env) (string, error) {
	return readOnce(ctx, acmConfig(), e.qr, e.feedACM)
}

// replug runs a supervised scanner, reads a code, pulls the device out while
// idle, plugs it back and feeds the next code as soon as the driver has it
// open: plug->first read is what a customer would wait at worst.
func replug(ctx context.Context, e *env, cfg scanner.Config, codes [2][]byte, unplug, plug func() error, feed func([]byte) (time.Time, error)) (string, error) {
	s, stop, err := supervised(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer stop()
	if _, err := feed(codes[0]); err != nil {
		return "", err
	}
	if _, err := expectCode(ctx, s, codes[0]); err != nil {
		return "", fmt.Errorf("before unplug: %w", err)
	}
	tu := time.Now()
	if err := unplug(); err != nil {
		return "", fmt.Errorf("unplug: %w", err)
	}
	down, err := s.wait(ctx, false, 1)
	if err != nil {
		return "", err
	}
	time.Sleep(300 * time.Millisecond) // idle while unplugged
	t0 := time.Now()
	if err := plug(); err != nil {
		return "", fmt.Errorf("plug: %w", err)
	}
	// Feed once the driver reads again: an FTDI bridge purges its FIFO when
	// the port is opened, so a code sent earlier is lost on real hardware
	// too. The second code differs, so duplicate suppression cannot hide a
	// miss.
	up, err := s.wait(ctx, true, 2)
	if err != nil {
		return "", err
	}
	if _, err := feed(codes[1]); err != nil {
		return "", err
	}
	c, err := expectCode(ctx, s, codes[1])
	if err != nil {
		return "", fmt.Errorf("after replug: %w", err)
	}
	ts := time.Now()
	if err := stop(); err != nil {
		return "", err
	}
	return fmt.Sprintf("unplug->noticed %s, plug->open %s, plug->first read %s (goal < 1s), close %s",
		down.Sub(tu).Round(time.Millisecond), up.Sub(t0).Round(time.Millisecond), c.Time.Sub(t0).Round(time.Millisecond),
		time.Since(ts).Round(time.Millisecond)), nil
}

// twoQRs returns two different payment-shaped QRs.
func (e *env) twoQRs() [2][]byte {
	return [2][]byte{e.qr, bytes.Replace(e.qr, []byte("7000123456789"), []byte("7000123456790"), 1)}
}

func replugSerial(ctx context.Context, e *env) (string, error) {
	return replug(ctx, e, serialConfig(), e.twoQRs(),
		func() error { _, err := e.ctl.Do("unplug", "us0"); return err },
		func() error { _, err := e.ctl.Do("plug", "us0"); return err },
		e.feedSerial)
}

func replugACM(ctx context.Context, e *env) (string, error) {
	return replug(ctx, e, acmConfig(), e.twoQRs(), e.acm.unbind, e.acm.bind, e.feedACM)
}

// poleVFD shows screens through display/vfd on the second usb-serial port;
// the host decodes the bytes (Epson, CP866) and must see the Russian lines
// vfd.Layout promises.
func poleVFD(ctx context.Context, e *env) (string, error) {
	pole := vfd.Defaults // Epson, CP866, 9600
	pole.Port.Path = ttyOnPort("ttyUSB", portPole)
	d, err := vfd.New(pole, zap.NewNop())
	if err != nil {
		return "", err
	}
	defer d.Close()
	var seen []string
	for _, scr := range []display.Screen{
		{State: display.Paying, Amount: 12345, Lang: display.Russian},
		{State: display.Paid, Amount: 12345, Lang: display.Russian},
		{State: display.Declined, Message: "Недостаточно средств", Lang: display.Russian},
	} {
		if _, err := e.ctl.Do("pole-reset"); err != nil {
			return "", err
		}
		if err := d.Show(ctx, scr); err != nil {
			return "", fmt.Errorf("show %s: %w", scr.State, err)
		}
		for _, l := range vfd.Layout(scr) {
			l = strings.TrimSpace(l)
			if l == "" {
				continue
			}
			if _, err := e.ctl.Do("pole-expect", vmtest.B64([]byte(l)), "5000"); err != nil {
				return "", fmt.Errorf("%s: %w", scr.State, err)
			}
			seen = append(seen, l)
		}
	}
	return fmt.Sprintf("host decoded %q", seen), nil
}

// posConfig selects the HID POS gadget by serial number too: the USB
// strings must come through (karalabe/hid returns them empty without
// -DNO_ICONV in a guest without gconv modules).
func posConfig(driver string) scanner.Config {
	return entry("name", "pos0", "driver", driver, "vid", "0c2e", "pid", "10d3", "serial", "VMPOS0001",
		"mode", "pos", "report", "honeywell")
}

func kbdConfig(driver string) scanner.Config {
	// Default framing: emulated typing pauses longer than the 50 ms gap,
	// but not inside an open JSON object (see kioskScenarios).
	return entry("name", "kbd0", "driver", driver, "vid", "0627", "pid", "0001", "mode", "keyboard", "layout", "us")
}

// feedPOS plays a HID POS scanner: the gadget sends the code as Honeywell
// 64-byte reports (9 for a payment QR). A write blocks until the host's
// interrupt IN transfer takes the report.
func (e *env) feedPOS(code []byte) (time.Time, error) {
	t0 := time.Now()
	return t0, writeReports("/dev/hidg0", posReports(code), 20*time.Second)
}

// feedKeyboard plays a keyboard-wedge scanner: the host types the code and
// Enter on QEMU's usb-kbd. QEMU queues at most 16 key events and the guest
// takes one per 8-10 ms poll; a busy TCG guest polls late and the queue
// overflows (keys lost) at 10 ms per event, so 15 ms.
func (e *env) feedKeyboard(code []byte) (time.Time, error) {
	t0 := time.Now()
	_, err := e.ctl.Do("type", vmtest.B64(append(append([]byte(nil), code...), '\r')), "15")
	return t0, err
}

func hidPOS(ctx context.Context, e *env, driver string) (string, error) {
	return readOnce(ctx, posConfig(driver), e.qr, e.feedPOS)
}

// usbhidBound tells whether usbhid drives interface 0 of the device on port.
func usbhidBound(port string) bool {
	return exists("/sys/bus/usb/drivers/usbhid/"+port+":1.0") != ""
}

// waitUsbhid waits up to 5 s for usbhid to drive the keyboard again.
func waitUsbhid() error {
	_, err := waitFor(5*time.Second, func() string {
		if usbhidBound(portKbd) {
			return "yes"
		}
		return ""
	})
	return err
}

// keyboard reads a QR typed on the usb-kbd through driver, checks that
// usbhid was detached while the driver read (the scanner must not type into
// the console) and attached again once the driver closed.
func keyboard(ctx context.Context, e *env, driver string) (string, error) {
	if !usbhidBound(portKbd) {
		return "", errors.New("usbhid does not drive the keyboard before the test")
	}
	cfg := kbdConfig(driver)
	s, stop, err := supervised(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer stop()
	if usbhidBound(portKbd) {
		return "", errors.New("usbhid still bound while the driver reads: the scanner would type into the console")
	}
	t0, err := e.feedKeyboard(e.qr)
	if err != nil {
		return "", err
	}
	c, err := expectCode(ctx, s, e.qr)
	if err != nil {
		return "", err
	}
	if err := stop(); err != nil {
		return "", err
	}
	if err := waitUsbhid(); err != nil {
		return "", fmt.Errorf("usbhid not re-attached after the driver closed: %w", err)
	}
	return fmt.Sprintf("%d-byte QR typed (US, Shift) and read by driver %q in %s; usbhid detached while reading, re-attached after",
		len(c.Data), driver, c.Time.Sub(t0).Round(time.Millisecond)), nil
}

func replugHIDPOS(ctx context.Context, e *env) (string, error) {
	return replug(ctx, e, posConfig("hid"), e.twoQRs(), e.hidPOS.unbind, e.hidPOS.bind, e.feedPOS)
}

func replugKeyboard(ctx context.Context, e *env) (string, error) {
	// Typing a whole QR takes ~13 s here: short codes keep the read time
	// about the driver, not the typing.
	return replug(ctx, e, kbdConfig("usb"), [2][]byte{[]byte("4600000000017"), []byte("4600000000024")},
		func() error { _, err := e.ctl.Do("unplug", "kbd0"); return err },
		func() error { _, err := e.ctl.Do("plug", "kbd0"); return err },
		e.feedKeyboard)
}
