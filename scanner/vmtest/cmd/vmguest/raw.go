//go:build linux

package main

import (
	"bytes"
	"context"

	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/kioskd/kioskd/scanner/vmtest"
)

// The raw scenarios prove the test bed itself: each device carries a QR
// through the real kernel driver to a plain read, with no kioskd code in the
// path. The driver scenarios then repeat the path through scanner drivers.

const (
	portKbd  = "1-1" // QEMU usb-kbd
	portSer  = "1-2" // QEMU usb-serial: the serial scanner
	portPole = "1-3" // QEMU usb-serial: the pole display
)

func scenarios() []scenario {
	return append([]scenario{
		{"devices", devicesScenario},
		{"raw-serial", rawSerial},
		{"raw-hidpos", rawHIDPOS},
		{"raw-acm", rawACM},
		{"raw-keyboard", rawKeyboard},
		{"raw-pole", rawPole},
		{"raw-replug-serial", rawReplugSerial},
	}, slices.Concat(driverScenarios(), vendingScenarios(), kioskScenarios())...)
}

func devicesScenario(ctx context.Context, e *env) (string, error) {
	t0 := time.Now()
	var got []string
	for _, c := range []struct {
		what string
		f    func() string
	}{
		{"serial scanner ttyUSB", func() string { return ttyOnPort("ttyUSB", portSer) }},
		{"pole display ttyUSB", func() string { return ttyOnPort("ttyUSB", portPole) }},
		{"usb-kbd hidraw", func() string { return hidrawFor(0x0627, 0x0001) }},
		{"HID POS gadget hidraw", func() string { return hidrawFor(0x0c2e, 0x10d3) }},
		{"ACM gadget ttyACM", func() string { return ttyOnPort("ttyACM", "") }},
		{"gadget /dev/hidg0", func() string { return exists("/dev/hidg0") }},
		{"gadget /dev/ttyGS0", func() string { return exists("/dev/ttyGS0") }},
	} {
		dev, err := waitFor(15*time.Second, c.f)
		if err != nil {
			return "", fmt.Errorf("%s: %w", c.what, err)
		}
		got = append(got, dev)
	}
	return fmt.Sprintf("%s all present after %s", strings.Join(got, " "), time.Since(t0).Round(time.Millisecond)), nil
}

func exists(p string) string {
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// readUntil reads f until the stream contains the whole of want or d passes.
func readUntil(f *os.File, want []byte, d time.Duration) ([]byte, error) {
	var got []byte
	buf := make([]byte, 4096)
	deadline := time.Now().Add(d)
	for !bytes.Contains(got, want) {
		f.SetReadDeadline(deadline)
		n, err := f.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return got, fmt.Errorf("read %s after %d bytes: %w", f.Name(), len(got), err)
		}
	}
	return got, nil
}

func openRawTTY(dev string) (*os.File, error) {
	f, err := os.OpenFile(dev, os.O_RDWR|unixNoctty, 0)
	if err != nil {
		return nil, err
	}
	if err := makeRaw(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func rawSerial(ctx context.Context, e *env) (string, error) {
	f, err := openRawTTY(ttyOnPort("ttyUSB", portSer))
	if err != nil {
		return "", err
	}
	defer f.Close()
	want := append(append([]byte(nil), e.qr...), '\r')
	if _, err := e.ctl.Do("serial", "ser0", vmtest.B64(want)); err != nil {
		return "", err
	}
	got, err := readUntil(f, want, 10*time.Second)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d bytes host->ftdi_sio->%s", len(got), f.Name()), nil
}

func rawHIDPOS(ctx context.Context, e *env) (string, error) {
	f, err := os.Open(hidrawFor(0x0c2e, 0x10d3))
	if err != nil {
		return "", err
	}
	defer f.Close()
	reps := posReports(e.qr)
	errc := make(chan error, 1)
	go func() { errc <- writeReports("/dev/hidg0", reps, 10*time.Second) }() // ends by its write deadline
	var data []byte
	buf := make([]byte, 64)
	for i := 0; ; i++ {
		f.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := f.Read(buf)
		if err != nil {
			return "", fmt.Errorf("hidraw report %d: %w", i, err)
		}
		if n != 64 || buf[0] != 0x02 {
			return "", fmt.Errorf("hidraw report %d: %d bytes, id %#x", i, n, buf[0])
		}
		data = append(data, buf[5:5+int(buf[1])]...)
		if buf[63]&1 == 0 {
			break
		}
	}
	if err := <-errc; err != nil {
		return "", err
	}
	if !bytes.Equal(data, e.qr) {
		return "", fmt.Errorf("joined reports differ: %q", data)
	}
	return fmt.Sprintf("%d reports, %d bytes via usbhid hidraw", len(reps), len(data)), nil
}

func rawACM(ctx context.Context, e *env) (string, error) {
	acm, err := openRawTTY(ttyOnPort("ttyACM", ""))
	if err != nil {
		return "", err
	}
	defer acm.Close()
	gs, err := openRawTTY("/dev/ttyGS0")
	if err != nil {
		return "", err
	}
	defer gs.Close()
	want := append(append([]byte(nil), e.qr...), '\r')
	if _, err := gs.Write(want); err != nil {
		return "", err
	}
	got, err := readUntil(acm, want, 10*time.Second)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d bytes gadget->cdc_acm->%s", len(got), acm.Name()), nil
}

// usKeys maps boot-keyboard usage codes to US characters: unshifted, shifted.
var usKeys = map[byte][2]byte{
	0x28: {'\r', '\r'}, 0x2c: {' ', ' '}, 0x2d: {'-', '_'}, 0x2e: {'=', '+'}, 0x2f: {'[', '{'},
	0x30: {']', '}'}, 0x33: {';', ':'}, 0x34: {'\'', '"'}, 0x36: {',', '<'}, 0x37: {'.', '>'}, 0x38: {'/', '?'},
}

func usChar(code byte, shift bool) (byte, bool) {
	s := 0
	if shift {
		s = 1
	}
	switch {
	case code >= 0x04 && code <= 0x1d:
		c := 'a' + code - 0x04
		if shift {
			c -= 'a' - 'A'
		}
		return c, true
	case code >= 0x1e && code <= 0x26:
		return "123456789"[code-0x1e], !shift
	case code == 0x27:
		return '0', !shift
	}
	k, ok := usKeys[code]
	return k[s], ok
}

func rawKeyboard(ctx context.Context, e *env) (string, error) {
	f, err := os.Open(hidrawFor(0x0627, 0x0001))
	if err != nil {
		return "", err
	}
	defer f.Close()
	want := append(append([]byte(nil), e.qr...), '\r')
	type res struct {
		took string
		err  error
	}
	done := make(chan res, 1)
	go func() { // ends when the host has typed the text
		took, err := e.ctl.Do("type", vmtest.B64(want), "15") // pacing: see feedKeyboard
		done <- res{took, err}
	}()
	var got []byte
	prev := map[byte]bool{}
	buf := make([]byte, 8)
	for !bytes.HasSuffix(got, []byte{'\r'}) {
		f.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := f.Read(buf)
		if err != nil {
			return "", fmt.Errorf("after %q: %w", got, err)
		}
		if n != 8 {
			continue
		}
		shift := buf[0]&0x22 != 0
		now := map[byte]bool{}
		for _, k := range buf[2:8] {
			if k == 0 {
				continue
			}
			now[k] = true
			if !prev[k] {
				c, ok := usChar(k, shift)
				if !ok {
					return "", fmt.Errorf("key %#x shift %v is not in the test's table", k, shift)
				}
				got = append(got, c)
			}
		}
		prev = now
	}
	r := <-done
	if r.err != nil {
		return "", r.err
	}
	if !bytes.Equal(got, want) {
		return "", fmt.Errorf("typed text differs:\n got %q\nwant %q", got, want)
	}
	return fmt.Sprintf("%d chars typed via QMP in %s, read on usbhid hidraw", len(got), r.took), nil
}

func rawPole(ctx context.Context, e *env) (string, error) {
	f, err := openRawTTY(ttyOnPort("ttyUSB", portPole))
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := e.ctl.Do("pole-reset"); err != nil {
		return "", err
	}
	// "Оплачено" in CP866 after ESC @, clear and cursor to line 1.
	b := []byte{0x1b, 0x40, 0x0c, 0x1f, 0x24, 1, 1, 0x8e, 0xaf, 0xab, 0xa0, 0xe7, 0xa5, 0xad, 0xae}
	if _, err := f.Write(b); err != nil {
		return "", err
	}
	ans, err := e.ctl.Do("pole-expect", vmtest.B64([]byte("Оплачено")), "5000")
	if err != nil {
		return "", err
	}
	lines, _ := vmtest.UnB64(ans)
	return fmt.Sprintf("host decoded %q", lines), nil
}

// rawReplugSerial unplugs QEMU's usb-serial through QMP, plugs it back and
// carries a code through the new tty: the harness's own replug path.
func rawReplugSerial(ctx context.Context, e *env) (string, error) {
	if _, err := e.ctl.Do("unplug", "us0"); err != nil {
		return "", err
	}
	if _, err := waitFor(10*time.Second, func() string {
		if ttyOnPort("ttyUSB", portSer) == "" {
			return "gone"
		}
		return ""
	}); err != nil {
		return "", fmt.Errorf("tty still there after device_del: %w", err)
	}
	t0 := time.Now()
	if _, err := e.ctl.Do("plug", "us0"); err != nil {
		return "", err
	}
	dev, err := waitFor(10*time.Second, func() string { return ttyOnPort("ttyUSB", portSer) })
	if err != nil {
		return "", fmt.Errorf("tty after device_add: %w", err)
	}
	tNode := time.Since(t0)
	f, err := openRawTTY(dev)
	if err != nil {
		return "", err
	}
	defer f.Close()
	want := append(append([]byte(nil), e.qr...), '\r')
	if _, err := e.ctl.Do("serial", "ser0", vmtest.B64(want)); err != nil {
		return "", err
	}
	if _, err := readUntil(f, want, 10*time.Second); err != nil {
		return "", err
	}
	return fmt.Sprintf("device_add->%s %s, code read after replug", dev, tNode.Round(time.Millisecond)), nil
}
