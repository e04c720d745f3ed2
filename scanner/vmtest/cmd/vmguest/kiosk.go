//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kioskd/kioskd/payment/smartpay/sim"
	"github.com/kioskd/kioskd/scanner/vmtest"
)

// The kiosk scenarios run the real agent: smartpay-sim and kioskd on
// loopback inside the guest, a fixed price with automatic hand-over, and a
// fresh QR from `smartpay-sim qr` fed through the device. A sale passes when
// the simulator has the purchase in status success with the kassa's
// confirmation.

const (
	simDir   = "/tmp/sim"
	simAPI   = "127.0.0.1:8443"
	simAdmin = "127.0.0.1:8444"
	amount   = 10000 // kopecks
)

func kioskScenarios() []scenario {
	serial := func() string {
		return fmt.Sprintf("driver: serial\n    port: %s\n    baud: 9600", ttyOnPort("ttyUSB", portSer))
	}
	acm := func() string {
		return fmt.Sprintf("driver: serial\n    port: %s\n    baud: 115200", ttyOnPort("ttyACM", ""))
	}
	pos := func(d string) func() string {
		return func() string {
			return "driver: " + d + "\n    vid: \"0c2e\"\n    pid: \"10d3\"\n    serial: VMPOS0001\n    mode: pos\n    report: honeywell"
		}
	}
	// QEMU's usb-kbd sends one key event per 8-10 ms interrupt poll, and a
	// busy TCG guest stretches that: a character with a Shift change can
	// take over 50 ms, the default frame gap. Default framing copes: inside
	// an open JSON object the gap is a second (scanner/frame).
	kbd := func(d string) func() string {
		return func() string {
			return "driver: " + d + "\n    vid: \"0627\"\n    pid: \"0001\"\n    mode: keyboard\n    layout: us"
		}
	}
	return []scenario{
		{"kiosk-serial", func(ctx context.Context, e *env) (string, error) {
			return e.kioskSale(ctx, "serial", serial, e.feedSerial)
		}},
		{"kiosk-acm", func(ctx context.Context, e *env) (string, error) { return e.kioskSale(ctx, "acm", acm, e.feedACM) }},
		{"kiosk-hidpos-hid", func(ctx context.Context, e *env) (string, error) {
			return e.kioskSale(ctx, "hidpos-hid", pos("hid"), e.feedPOS)
		}},
		{"kiosk-hidpos-usb", func(ctx context.Context, e *env) (string, error) {
			return e.kioskSale(ctx, "hidpos-usb", pos("usb"), e.feedPOS)
		}},
		{"kiosk-keyboard-hid", func(ctx context.Context, e *env) (string, error) {
			return e.kioskSale(ctx, "keyboard-hid", kbd("hid"), e.feedKeyboard)
		}},
		{"kiosk-keyboard-usb", func(ctx context.Context, e *env) (string, error) {
			return e.kioskSale(ctx, "keyboard-usb", kbd("usb"), e.feedKeyboard)
		}},
		{"kiosk-replug-serial", func(ctx context.Context, e *env) (string, error) {
			return e.kioskReplug(ctx, "replug-serial", serial, e.feedSerial, e.qmpUnplug("us0"), e.qmpPlug("us0"))
		}},
		{"kiosk-replug-acm", func(ctx context.Context, e *env) (string, error) {
			return e.kioskReplug(ctx, "replug-acm", acm, e.feedACM, e.acm.unbind, e.acm.bind)
		}},
		{"kiosk-replug-hidpos", func(ctx context.Context, e *env) (string, error) {
			return e.kioskReplug(ctx, "replug-hidpos", pos("hid"), e.feedPOS, e.hidPOS.unbind, e.hidPOS.bind)
		}},
		{"kiosk-replug-keyboard", func(ctx context.Context, e *env) (string, error) {
			return e.kioskReplug(ctx, "replug-keyboard", kbd("usb"), e.feedKeyboard, e.qmpUnplug("kbd0"), e.qmpPlug("kbd0"))
		}},
		{"kiosk-crash-keyboard", func(ctx context.Context, e *env) (string, error) {
			return e.kioskCrash(ctx, kbd("usb"))
		}},
		// Last: udevd stays out of every other scenario's way.
		{"udev-rules", udevScenario},
	}
}

func (e *env) qmpUnplug(id string) func() error {
	return func() error { _, err := e.ctl.Do("unplug", id); return err }
}

func (e *env) qmpPlug(id string) func() error {
	return func() error { _, err := e.ctl.Do("plug", id); return err }
}

// startSim starts smartpay-sim once for all kiosk scenarios; it runs until
// the guest powers off.
func (e *env) startSim(ctx context.Context) error {
	if e.sim != nil {
		return nil
	}
	if _, err := os.Stat("/bin/smartpay-sim"); err != nil {
		return fmt.Errorf("smartpay-sim is not in the guest (did cmd/smartpay-sim build?): %w", err)
	}
	logf, err := os.Create("/tmp/smartpay-sim.log")
	if err != nil {
		return err
	}
	cmd := exec.Command("/bin/smartpay-sim", "serve", "-listen", simAPI, "-admin", simAdmin, "-dir", simDir,
		"-success-delay", "300ms")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	e.sim = cmd
	if _, err := waitFor(30*time.Second, func() string {
		if _, err := simState(); err == nil {
			return "up"
		}
		return ""
	}); err != nil {
		return fmt.Errorf("smartpay-sim admin API: %w\n%s", err, tail("/tmp/smartpay-sim.log", 20))
	}
	return nil
}

// simState reads GET /sim/state from the simulator's admin API.
func simState() (sim.State, error) {
	var st sim.State
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + simAdmin + "/sim/state")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("/sim/state: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func newQR() ([]byte, error) {
	out, err := exec.Command("/bin/smartpay-sim", "qr", "-dir", simDir).Output()
	if err != nil {
		return nil, fmt.Errorf("smartpay-sim qr: %w", err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "{") {
			return []byte(strings.TrimSpace(l)), nil
		}
	}
	return nil, fmt.Errorf("smartpay-sim qr printed no payload: %q", out)
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	l := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return "  | " + strings.Join(l, "\n  | ")
}

// kiosk is one running kioskd.
type kiosk struct {
	dir  string
	cmd  *exec.Cmd
	api  *http.Client
	done chan error
	logs func() string // the log's tail when not dir/kioskd.log (the unit's journal)
}

// startReading starts kioskd and waits until it reads its scanner.
func (e *env) startReading(ctx context.Context, name, scannerYAML string) (*kiosk, error) {
	k, err := e.startKiosk(ctx, name, scannerYAML)
	if err != nil {
		return nil, err
	}
	if _, err := k.waitScanner(ctx, true); err != nil {
		k.stop()
		return nil, err
	}
	return k, nil
}

func (e *env) startKiosk(ctx context.Context, name, scannerYAML string) (*kiosk, error) {
	return e.launchKiosk(ctx, name, fmt.Sprintf("  fixed_amount: %d\n  handover: auto\n", amount), scannerYAML, "")
}

// launchKiosk starts kioskd with the kassa's lines after its id, one
// scanner, the pole display and the sections in extra.
func (e *env) launchKiosk(ctx context.Context, name, kassa, scannerYAML, extra string) (*kiosk, error) {
	if err := e.startSim(ctx); err != nil {
		return nil, err
	}
	if _, err := os.Stat("/bin/kioskd"); err != nil {
		return nil, fmt.Errorf("kioskd is not in the guest (did cmd/kioskd build?): %w", err)
	}
	level := "info"
	if debug {
		level = "debug"
	}
	dir := filepath.Join("/tmp/kiosk", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`kassa:
  id: %s
%sservice:
  url: https://%s
  ca: %s/ca.crt
  cert: %s/kassa.crt
  key: %s/kassa.key
journal: %s/journal.db
api:
  socket: %s/api.sock
scanners:
  - name: scan
    %s
displays:
  - name: pole
    driver: vfd
    port: %s
    baud: 9600
    command_set: epson
    codepage: cp866
log:
  level: %s
  format: console
metrics:
  enabled: true
%s`, sim.KassaID(1), kassa, simAPI, simDir, simDir, simDir, dir, dir, scannerYAML, ttyOnPort("ttyUSB", portPole), level, extra)
	conf := filepath.Join(dir, "devices.yaml")
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "kioskd.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("/bin/kioskd", "run", "-config", conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	k := &kiosk{dir: dir, cmd: cmd, done: make(chan error, 1)}
	go func() { k.done <- cmd.Wait(); logf.Close() }() // ends when kioskd exits
	k.api = apiClient(filepath.Join(dir, "api.sock"))
	return k, nil
}

// apiClient talks HTTP to kioskd's control API on a unix socket.
func apiClient(sock string) *http.Client {
	return &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
}

// stop sends SIGTERM and waits for a clean exit.
func (k *kiosk) stop() error {
	if k.cmd.ProcessState != nil {
		return nil
	}
	k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-k.done:
		k.done <- err // a second stop sees the same result
		if err != nil {
			return fmt.Errorf("kioskd exit: %w\n%s", err, k.log())
		}
		return nil
	case <-time.After(15 * time.Second):
		k.cmd.Process.Kill()
		<-k.done
		return fmt.Errorf("kioskd did not stop within 15s of SIGTERM\n%s", k.log())
	}
}

func (k *kiosk) log() string {
	if k.logs != nil {
		return k.logs()
	}
	n := 25
	if debug {
		n = 400
	}
	return tail(filepath.Join(k.dir, "kioskd.log"), n)
}

// metrics scrapes /metrics on the API socket into name{labels} -> value.
func (k *kiosk) metrics() (map[string]float64, error) {
	resp, err := k.api.Get("http://kioskd/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s", resp.Status)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#") {
			continue
		}
		if i := strings.LastIndexByte(l, ' '); i > 0 {
			if v, err := strconv.ParseFloat(l[i+1:], 64); err == nil {
				m[l[:i]] = v
			}
		}
	}
	return m, sc.Err()
}

// waitScanner waits until kioskd reports the scanner up (or down) and
// returns when it saw it; polled every 5 ms.
func (k *kiosk) waitScanner(ctx context.Context, up bool) (time.Time, error) {
	return k.waitScannerNamed(ctx, "scan", up)
}

func (k *kiosk) waitScannerNamed(ctx context.Context, name string, up bool) (time.Time, error) {
	want := 0.0
	if up {
		want = 1
	}
	for {
		m, err := k.metrics()
		if v, ok := m[`kioskd_scanner_up{scanner="`+name+`"}`]; err == nil && ok && v == want {
			return time.Now(), nil
		}
		select {
		case err := <-k.done:
			k.done <- err
			return time.Time{}, fmt.Errorf("kioskd exited: %v\n%s", err, k.log())
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("scanner %s never up=%v (metrics: %v): %w\n%s", name, up, err, ctx.Err(), k.log())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// sale feeds a fresh QR and waits for the simulator to hold it as a
// purchase paid and confirmed by the kassa. It returns the time the
// purchase was first seen committed, and kioskd's own scan-to-commit figure
// for this sale (from its histogram).
func (e *env) sale(ctx context.Context, k *kiosk, feed func([]byte) (time.Time, error)) (committed time.Time, scanToCommit time.Duration, err error) {
	qr, err := newQR()
	if err != nil {
		return
	}
	before, err := simState()
	if err != nil {
		return
	}
	old := map[string]bool{}
	for _, p := range before.Purchases {
		old[p.ID] = true
	}
	m0, err := k.metrics()
	if err != nil {
		return
	}
	if _, err = feed(qr); err != nil {
		return
	}
	for {
		st, serr := simState()
		if serr == nil {
			for _, p := range st.Purchases {
				if old[p.ID] {
					continue
				}
				if committed.IsZero() {
					committed = time.Now()
				}
				if p.Status == "success" && p.Confirmed && p.Amount == amount {
					m1, err := k.metrics()
					if err != nil {
						return committed, 0, err
					}
					n := m1["kioskd_scan_to_commit_seconds_count"] - m0["kioskd_scan_to_commit_seconds_count"]
					sum := m1["kioskd_scan_to_commit_seconds_sum"] - m0["kioskd_scan_to_commit_seconds_sum"]
					if n != 1 {
						return committed, 0, fmt.Errorf("kioskd counted %v scan-to-commit observations for one sale", n)
					}
					return committed, time.Duration(sum * float64(time.Second)), nil
				}
				if p.Status == "failed" || p.Status == "cancelled" || p.Status == "expired" {
					return committed, 0, fmt.Errorf("purchase %s ended %s (%s)\n%s", p.ID, p.Status, p.Message, k.log())
				}
			}
		}
		select {
		case err := <-k.done:
			k.done <- err
			return committed, 0, fmt.Errorf("kioskd exited during the sale: %v\n%s", err, k.log())
		case <-ctx.Done():
			return committed, 0, fmt.Errorf("no paid, confirmed purchase in /sim/state: %w\n%s", ctx.Err(), k.log())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (e *env) kioskSale(ctx context.Context, name string, scannerYAML func() string, feed func([]byte) (time.Time, error)) (string, error) {
	k, err := e.startReading(ctx, name, scannerYAML())
	if err != nil {
		return "", err
	}
	defer k.stop()
	keyboard := strings.HasPrefix(name, "keyboard")
	if keyboard && usbhidBound(portKbd) {
		return "", errors.New("usbhid still drives the keyboard while kioskd reads it")
	}
	if _, err := e.ctl.Do("pole-reset"); err != nil {
		return "", err
	}
	_, s2c, err := e.sale(ctx, k, feed)
	if err != nil {
		return "", err
	}
	// The customer saw it: the pole display showed the paid screen.
	if _, err := e.ctl.Do("pole-expect", vmtest.B64([]byte("Оплачено")), "5000"); err != nil {
		return "", fmt.Errorf("pole display: %w", err)
	}
	if err := k.stop(); err != nil {
		return "", err
	}
	extra := ""
	if keyboard {
		if err := waitUsbhid(); err != nil {
			return "", fmt.Errorf("usbhid not re-attached after kioskd stopped: %w", err)
		}
		extra = "; usbhid re-attached after kioskd stopped"
	}
	return fmt.Sprintf("sale paid+confirmed in the simulator, pole showed \"Оплачено\"; scan-to-commit %s (kioskd metric)%s",
		s2c.Round(10*time.Microsecond), extra), nil
}

// kioskReplug pulls the scanner out while kioskd idles, plugs it back and
// makes a sale as soon as kioskd reads it again.
func (e *env) kioskReplug(ctx context.Context, name string, scannerYAML func() string, feed func([]byte) (time.Time, error), unplug, plug func() error) (string, error) {
	k, err := e.startReading(ctx, name, scannerYAML())
	if err != nil {
		return "", err
	}
	defer k.stop()
	time.Sleep(300 * time.Millisecond) // idle
	if err := unplug(); err != nil {
		return "", fmt.Errorf("unplug: %w", err)
	}
	if _, err := k.waitScanner(ctx, false); err != nil {
		return "", err
	}
	time.Sleep(300 * time.Millisecond)
	t0 := time.Now()
	if err := plug(); err != nil {
		return "", fmt.Errorf("plug: %w", err)
	}
	up, err := k.waitScanner(ctx, true)
	if err != nil {
		return "", err
	}
	tFeed := time.Now()
	committed, s2c, err := e.sale(ctx, k, feed)
	if err != nil {
		return "", err
	}
	if err := k.stop(); err != nil {
		return "", err
	}
	return fmt.Sprintf("plug->kioskd reading %s (goal < 1s), fed->committed %s, plug->committed %s, scan-to-commit %s; sale paid+confirmed",
		up.Sub(t0).Round(time.Millisecond), committed.Sub(tFeed).Round(time.Millisecond),
		committed.Sub(t0).Round(time.Millisecond), s2c.Round(10*time.Microsecond)), nil
}

// kioskCrash kills kioskd (SIGKILL) while it holds the keyboard-mode scanner
// with usbhid detached, then starts it again and stops it cleanly: the
// keyboard must end up driven by usbhid again (VMTEST.md: a crash leaves it
// unbound unless the driver re-attaches it).
func (e *env) kioskCrash(ctx context.Context, scannerYAML func() string) (string, error) {
	k, err := e.startReading(ctx, "crash-keyboard", scannerYAML())
	if err != nil {
		return "", err
	}
	defer k.stop()
	k.cmd.Process.Kill()
	<-k.done
	k.done <- errors.New("killed")
	afterKill := usbhidBound(portKbd)
	k2, err := e.startReading(ctx, "crash-keyboard", scannerYAML())
	if err != nil {
		return "", err
	}
	defer k2.stop()
	if _, _, err := e.sale(ctx, k2, e.feedKeyboard); err != nil {
		return "", fmt.Errorf("sale after the restart: %w", err)
	}
	if err := k2.stop(); err != nil {
		return "", err
	}
	if err := waitUsbhid(); err != nil {
		// Leave the keyboard usable for whatever runs next.
		os.WriteFile("/sys/bus/usb/drivers/usbhid/bind", []byte(portKbd+":1.0"), 0o200)
		return "", fmt.Errorf("usbhid not bound after kill -9, restart and a clean stop (bound right after the kill: %v)", afterKill)
	}
	return fmt.Sprintf("usbhid bound right after kill -9: %v; sale after restart paid; usbhid bound after the clean stop", afterKill), nil
}
