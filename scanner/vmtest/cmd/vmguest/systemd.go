//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kioskd/kioskd/payment/smartpay/sim"
	"github.com/kioskd/kioskd/scanner/vmtest"
)

// The systemd scenarios run in the guest booted with systemd as PID 1 on a
// Debian root file system (run.sh, rootfs.sh, init-systemd.sh): the kioskd
// Debian package is installed with dpkg, started by udev on a plug, runs a
// sale on each scanner kind under the unit's sandbox, is killed and
// restarted by the watchdog with a sale in flight, logs to the journal, and
// is purged. They run in order: each starts from what the previous left.

const (
	unit       = "kioskd.service"
	debPath    = "/opt/vmtest/kioskd.deb"
	etcKioskd  = "/etc/kioskd"
	unitSocket = "/run/kioskd/api.sock"
)

// longScenarios are the scenarios that need more than the usual bound.
var longScenarios = map[string]time.Duration{
	"systemd-watchdog": 150 * time.Second, // WatchdogSec=30s, then a restart and a recovery under TCG
}

// sdState is what one systemd scenario leaves for the next.
type sdState struct {
	installed  bool
	serialLink string   // /dev/kiosk/by-path link of the serial scanner (QEMU us0)
	poleLink   string   // ... and of the pole display (us1)
	fed        [][]byte // every QR fed to the unit's kioskd: the journal must not show their secrets
	files      []string // dpkg -L kioskd, for the purge check
}

func systemdScenarios() []scenario {
	return []scenario{
		{"systemd-boot", sdBoot},
		{"systemd-install", sdInstall},
		{"systemd-sale", sdSale},
		{"systemd-watchdog", sdWatchdog},
		{"systemd-journal", sdJournal},
		{"systemd-purge", sdPurge},
	}
}

// command runs a program and returns its trimmed combined output; a
// failure carries the output.
func command(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "SYSTEMD_PAGER=", "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err != nil {
		return s, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, s)
	}
	return s, nil
}

// unitProps reads properties of kioskd.service from systemd.
func unitProps(ctx context.Context, names ...string) (map[string]string, error) {
	args := []string{"show", unit}
	for _, n := range names {
		args = append(args, "-p", n)
	}
	out, err := command(ctx, "systemctl", args...)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m, nil
}

// journal returns kioskd.service's journal as plain messages.
func journal(ctx context.Context) string {
	out, _ := command(ctx, "journalctl", "-u", unit, "-o", "cat", "--no-pager")
	return out
}

func journalTail(n int) func() string {
	return func() string {
		out := journal(context.Background())
		l := strings.Split(out, "\n")
		if len(l) > n {
			l = l[len(l)-n:]
		}
		return "  | " + strings.Join(l, "\n  | ")
	}
}

// unitKiosk is the kiosk handle of the unit's kioskd: its control API on
// /run/kioskd/api.sock and its journal. done never fires: the scenarios
// watch the unit instead.
func unitKiosk() *kiosk {
	return &kiosk{api: apiClient(unitSocket), done: make(chan error, 1), logs: journalTail(30)}
}

// passwdEntry returns the /etc/passwd fields of user name.
func passwdEntry(name string) ([]string, error) {
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Split(l, ":"); len(f) == 7 && f[0] == name {
			return f, nil
		}
	}
	return nil, fmt.Errorf("no user %q in /etc/passwd", name)
}

// procUID returns the real uid of a process.
func procUID(pid string) (string, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "Uid:" {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("no Uid in /proc/%s/status", pid)
}

// byPathLink returns the /dev/kiosk/by-path link udev made for dev.
func byPathLink(dev string) string {
	m, _ := filepath.Glob("/dev/kiosk/by-path/*")
	for _, l := range m {
		if t, err := filepath.EvalSymlinks(l); err == nil && t == dev {
			return l
		}
	}
	return ""
}

func sdBoot(ctx context.Context, e *env) (string, error) {
	comm, err := os.ReadFile("/proc/1/comm")
	if err != nil || strings.TrimSpace(string(comm)) != "systemd" {
		return "", fmt.Errorf("PID 1 is %q, not systemd (%v)", strings.TrimSpace(string(comm)), err)
	}
	// running, or degraded with the failed units named.
	state, _ := command(ctx, "systemctl", "is-system-running", "--wait")
	info := "PID 1 systemd, system " + state
	switch state {
	case "running":
	case "degraded":
		failed, _ := command(ctx, "systemctl", "--failed", "--no-legend", "--plain")
		info += " (failed: " + strings.Join(strings.Fields(failed), " ") + ")"
	default:
		return "", fmt.Errorf("system state %q", state)
	}
	if t, err := command(ctx, "systemd-analyze", "time"); err == nil {
		info += "; " + strings.SplitN(t, "\n", 2)[0]
	}
	if b, err := command(ctx, "systemd-analyze", "blame", "--no-pager"); err == nil {
		l := strings.Split(b, "\n")
		info += "; slowest: " + strings.Join(strings.Fields(strings.Join(l[:min(3, len(l))], ", ")), " ")
	}
	return info, nil
}

func sdInstall(ctx context.Context, e *env) (string, error) {
	if _, err := command(ctx, "dpkg", "-i", debPath); err != nil {
		return "", fmt.Errorf("dpkg -i: %w", err)
	}
	e.sd.installed = true
	command(ctx, "udevadm", "settle", "--timeout=30")
	version, err := command(ctx, "dpkg-query", "-W", "-f=${Version}", "kioskd")
	if err != nil {
		return "", err
	}
	if out, err := command(ctx, "kioskd", "version"); err != nil || out != "kioskd "+version {
		return "", fmt.Errorf("kioskd version says %q, the package is %s (%v)", out, version, err)
	}
	if en, _ := command(ctx, "systemctl", "is-enabled", unit); en != "enabled" {
		return "", fmt.Errorf("%s is %q after install, want enabled", unit, en)
	}
	// Enabled but not started on the example, and not failed; a start (as
	// udev's on a plug) is skipped by ExecCondition with its message.
	if _, err := command(ctx, "systemctl", "start", unit); err != nil {
		return "", err
	}
	p, err := unitProps(ctx, "ActiveState", "Result")
	if err != nil {
		return "", err
	}
	if p["ActiveState"] != "inactive" || p["Result"] != "exec-condition" {
		return "", fmt.Errorf("on the example config: ActiveState=%s Result=%s, want inactive and exec-condition\n%s",
			p["ActiveState"], p["Result"], journalTail(10)())
	}
	if !strings.Contains(journal(ctx), "is the packaged example") {
		return "", fmt.Errorf("the journal does not say why kioskd did not start\n%s", journalTail(10)())
	}
	// The user from sysusers.d, the directories from tmpfiles.d, the conffile.
	pw, err := passwdEntry("kioskd")
	if err != nil {
		return "", err
	}
	if !strings.HasSuffix(pw[6], "nologin") {
		return "", fmt.Errorf("user kioskd has shell %s", pw[6])
	}
	gid, err := groupID("kioskd")
	if err != nil {
		return "", err
	}
	var st syscall.Stat_t
	if err := syscall.Stat(etcKioskd, &st); err != nil || st.Mode&0o777 != 0o750 || st.Uid != 0 || st.Gid != gid {
		return "", fmt.Errorf("%s: mode %#o owner %d:%d, want 0750 root:kioskd (%v)", etcKioskd, st.Mode&0o777, st.Uid, st.Gid, err)
	}
	if cf, _ := command(ctx, "dpkg-query", "-W", "-f=${Conffiles}", "kioskd"); !strings.Contains(cf, etcKioskd+"/devices.yaml") {
		return "", fmt.Errorf("devices.yaml is not a conffile: %q", cf)
	}
	// The postinst reloaded udev and re-ran the rules for what was plugged in.
	ser, pole := ttyOnPort("ttyUSB", portSer), ttyOnPort("ttyUSB", portPole)
	if err := nodeAccess(ser, gid); err != nil {
		return "", fmt.Errorf("after install: %w", err)
	}
	e.sd.serialLink, e.sd.poleLink = byPathLink(ser), byPathLink(pole)
	if e.sd.serialLink == "" || e.sd.poleLink == "" {
		return "", fmt.Errorf("no /dev/kiosk/by-path links for %s and %s (have: %s)", ser, pole, listKiosk())
	}
	files, err := command(ctx, "dpkg", "-L", "kioskd")
	if err != nil {
		return "", err
	}
	e.sd.files = strings.Split(files, "\n")
	return fmt.Sprintf("dpkg -i %s: enabled, inactive (Result=exec-condition on the example, message in the journal); user kioskd (nologin), %s 0750 root:kioskd, devices.yaml a conffile; %s group kioskd 0660",
		version, etcKioskd, strings.TrimPrefix(e.sd.serialLink, "/dev/")), nil
}

// configure writes the kiosk's real configuration and the service's
// certificates, as a field engineer would.
func (e *env) configure() error {
	for src, dst := range map[string]string{sim.CAFile: "service-ca.pem", "kassa.crt": "client.pem", "kassa.key": "client.key"} {
		b, err := os.ReadFile(filepath.Join(simDir, src))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(etcKioskd, dst), b, 0o600); err != nil {
			return err
		}
	}
	cfg := fmt.Sprintf(`kassa:
  id: %s
  fixed_amount: %d
  handover: auto
service:
  url: https://%s
  ca: /etc/kioskd/service-ca.pem
  cert: /etc/kioskd/client.pem
  key: /etc/kioskd/client.key
scanners:
  - name: scan
    driver: serial
    port: %s
    baud: 9600
  - name: pos
    driver: hid
    vid: "0c2e"
    pid: "10d3"
    serial: VMPOS0001
    mode: pos
    report: honeywell
displays:
  - name: pole
    driver: vfd
    port: %s
    baud: 9600
    command_set: epson
    codepage: cp866
log:
  level: info
  format: json
metrics:
  enabled: true
`, sim.KassaID(1), amount, simAPI, e.sd.serialLink, e.sd.poleLink)
	if err := os.WriteFile(filepath.Join(etcKioskd, "devices.yaml"), []byte(cfg), 0o640); err != nil {
		return err
	}
	gid, err := groupID("kioskd")
	if err != nil {
		return err
	}
	pw, err := passwdEntry("kioskd")
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(pw[2])
	for _, f := range []string{"devices.yaml", "service-ca.pem", "client.pem"} {
		p := filepath.Join(etcKioskd, f)
		if err := os.Chown(p, 0, int(gid)); err != nil {
			return err
		}
		if err := os.Chmod(p, 0o640); err != nil {
			return err
		}
	}
	// The key: the service user's alone (the agent refuses it otherwise).
	return os.Chown(filepath.Join(etcKioskd, "client.key"), uid, int(gid))
}

// waitActive waits until the unit is active (for Type=notify: READY=1 was
// sent) and returns its main PID.
func waitActive(ctx context.Context, notPID string) (string, error) {
	for {
		p, err := unitProps(ctx, "ActiveState", "MainPID")
		if err == nil && p["ActiveState"] == "active" && p["MainPID"] != "0" && p["MainPID"] != notPID {
			return p["MainPID"], nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%s not active (%v, %v): %w\n%s", unit, p, err, ctx.Err(), journalTail(20)())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// record remembers what was fed, for the journal check.
func (e *env) record(feed func([]byte) (time.Time, error)) func([]byte) (time.Time, error) {
	return func(qr []byte) (time.Time, error) {
		e.sd.fed = append(e.sd.fed, append([]byte(nil), qr...))
		return feed(qr)
	}
}

func sdSale(ctx context.Context, e *env) (string, error) {
	if !e.sd.installed {
		return "", errors.New("the package is not installed (systemd-install failed)")
	}
	if err := e.startSim(ctx); err != nil {
		return "", err
	}
	// Both scanners out, then the configuration in place: nothing starts
	// kioskd until udev sees the serial scanner plugged in.
	if _, err := e.ctl.Do("unplug", "us0"); err != nil {
		return "", err
	}
	if err := e.hidPOS.unbind(); err != nil {
		return "", err
	}
	if err := e.configure(); err != nil {
		return "", fmt.Errorf("configure: %w", err)
	}
	command(ctx, "udevadm", "settle", "--timeout=30")
	if p, _ := unitProps(ctx, "ActiveState"); p["ActiveState"] != "inactive" {
		return "", fmt.Errorf("%s is %s before the plug, want inactive", unit, p["ActiveState"])
	}
	t0 := time.Now()
	if _, err := e.ctl.Do("plug", "us0"); err != nil {
		return "", err
	}
	actx, cancel := context.WithTimeout(ctx, 45*time.Second)
	pid, err := waitActive(actx, "")
	cancel()
	if err != nil {
		return "", fmt.Errorf("plugging the scanner did not start kioskd: %w", err)
	}
	started := time.Since(t0)
	// The sandbox as the running process sees it.
	pw, _ := passwdEntry("kioskd")
	if uid, err := procUID(pid); err != nil || uid != pw[2] {
		return "", fmt.Errorf("kioskd (pid %s) runs as uid %s, want kioskd's %s (%v)", pid, uid, pw[2], err)
	}
	if err := rootReadOnly(pid); err != nil {
		return "", err
	}
	p, err := unitProps(ctx, "User", "DevicePolicy", "ProtectSystem", "NoNewPrivileges", "WatchdogUSec")
	if err != nil {
		return "", err
	}
	if p["User"] != "kioskd" || p["DevicePolicy"] != "closed" || p["ProtectSystem"] != "strict" || p["NoNewPrivileges"] != "yes" {
		return "", fmt.Errorf("unit sandbox: %v", p)
	}
	if err := e.hidPOS.bind(); err != nil {
		return "", err
	}
	k := unitKiosk()
	for _, name := range []string{"scan", "pos"} {
		if _, err := k.waitScannerNamed(ctx, name, true); err != nil {
			return "", err
		}
	}
	var figures []string
	for _, s := range []struct {
		name string
		feed func([]byte) (time.Time, error)
	}{{"serial", e.feedSerial}, {"HID POS", e.feedPOS}} {
		if _, err := e.ctl.Do("pole-reset"); err != nil {
			return "", err
		}
		_, s2c, err := e.sale(ctx, k, e.record(s.feed))
		if err != nil {
			return "", fmt.Errorf("%s sale: %w", s.name, err)
		}
		if _, err := e.ctl.Do("pole-expect", vmtest.B64([]byte("Оплачено")), "5000"); err != nil {
			return "", fmt.Errorf("%s sale: pole display: %w", s.name, err)
		}
		figures = append(figures, fmt.Sprintf("%s sale paid+confirmed (scan-to-commit %s)", s.name, s2c.Round(10*time.Microsecond)))
	}
	return fmt.Sprintf("plug -> udev -> %s active (READY=1) in %s; runs as kioskd, / read-only, DevicePolicy=closed; %s; pole showed \"Оплачено\"",
		unit, started.Round(time.Millisecond), strings.Join(figures, ", ")), nil
}

// rootReadOnly checks that / is mounted read-only in the process's mount
// namespace (ProtectSystem=strict).
func rootReadOnly(pid string) error {
	f, err := os.Open("/proc/" + pid + "/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options ...
		fl := strings.Fields(sc.Text())
		if len(fl) > 5 && fl[4] == "/" {
			if !strings.Contains(","+fl[5]+",", ",ro,") {
				return fmt.Errorf("kioskd's / is mounted %s, want ro (ProtectSystem=strict)", fl[5])
			}
			return nil
		}
	}
	return errors.New("no / in kioskd's mountinfo")
}

func sdWatchdog(ctx context.Context, e *env) (string, error) {
	p, err := unitProps(ctx, "MainPID", "NRestarts", "WatchdogUSec", "ActiveState")
	if err != nil {
		return "", err
	}
	if p["ActiveState"] != "active" {
		return "", fmt.Errorf("%s is %s, want active (systemd-sale failed?)", unit, p["ActiveState"])
	}
	pid, restarts := p["MainPID"], p["NRestarts"]
	wd, err := time.ParseDuration(p["WatchdogUSec"])
	if err != nil || wd == 0 {
		return "", fmt.Errorf("WatchdogUSec=%q: the unit has no watchdog", p["WatchdogUSec"])
	}
	k := unitKiosk()
	if _, err := k.waitScanner(ctx, true); err != nil {
		return "", err
	}
	// A sale: freeze kioskd the moment the service has the commit, before
	// the payment can end.
	qr, err := newQR()
	if err != nil {
		return "", err
	}
	before, err := simState()
	if err != nil {
		return "", err
	}
	if _, err := e.record(e.feedSerial)(qr); err != nil {
		return "", err
	}
	var inFlight sim.Purchase
	var stopped time.Time
	for stopped.IsZero() {
		if st, err := simState(); err == nil {
			for _, pu := range st.Purchases {
				if _, old := before.Purchase(pu.ID); !old {
					n, _ := strconv.Atoi(pid)
					if err := syscall.Kill(n, syscall.SIGSTOP); err != nil {
						return "", fmt.Errorf("kill -STOP %s: %w", pid, err)
					}
					stopped, inFlight = time.Now(), pu
					break
				}
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("the sale never reached the service: %w\n%s", ctx.Err(), k.log())
		case <-time.After(5 * time.Millisecond):
		}
	}
	if inFlight.Confirmed {
		return "", fmt.Errorf("purchase %s was already confirmed when kioskd was stopped: no sale in flight", inFlight.ID)
	}
	// systemd kills it when WATCHDOG=1 stops coming, and restarts it.
	var gone time.Duration
	for gone == 0 {
		if _, err := os.Stat("/proc/" + pid); err != nil {
			gone = time.Since(stopped)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("kioskd (pid %s) still there %s after SIGSTOP: %w", pid, time.Since(stopped).Round(time.Second), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if gone > wd+5*time.Second {
		return "", fmt.Errorf("kioskd killed %s after SIGSTOP, WatchdogSec is %s", gone.Round(time.Millisecond), wd)
	}
	newPID, err := waitActive(ctx, pid)
	if err != nil {
		return "", err
	}
	back := time.Since(stopped)
	p, err = unitProps(ctx, "NRestarts")
	if err != nil {
		return "", err
	}
	if r0, _ := strconv.Atoi(restarts); p["NRestarts"] != strconv.Itoa(r0+1) {
		return "", fmt.Errorf("NRestarts %s -> %s, want one restart", restarts, p["NRestarts"])
	}
	if !strings.Contains(journal(ctx), "Watchdog timeout") {
		return "", fmt.Errorf("no watchdog timeout in the journal\n%s", journalTail(20)())
	}
	// The new kioskd finds the sale open in its journal and finishes it:
	// without a recorded hand-over it cancels (nobody pays for goods not
	// given), and the service sees the cancel.
	var end sim.Purchase
	if _, err := waitFor(30*time.Second, func() string {
		st, err := simState()
		if err != nil {
			return ""
		}
		pu, _ := st.Purchase(inFlight.ID)
		if pu.Status == "cancelled" || pu.Reversed || pu.Confirmed {
			end = pu
			return "done"
		}
		return ""
	}); err != nil {
		st, _ := simState()
		pu, _ := st.Purchase(inFlight.ID)
		return "", fmt.Errorf("the sale in flight was not finished after the restart (status %s): %w\n%s", pu.Status, err, k.log())
	}
	if end.Confirmed && !end.Reversed {
		return "", fmt.Errorf("purchase %s confirmed after a restart without a recorded hand-over", end.ID)
	}
	outcome := string(end.Status)
	if end.Reversed {
		outcome += ", reversed"
	}
	return fmt.Sprintf("SIGSTOP with purchase %s %s: killed by the watchdog %s later (WatchdogSec=%s), pid %s -> %s ready %s after the stop; the sale in flight recovered: %s at the service",
		inFlight.ID, inFlight.Status, gone.Round(time.Millisecond), wd, pid, newPID, back.Round(time.Millisecond), outcome), nil
}

func sdJournal(ctx context.Context, e *env) (string, error) {
	out, err := command(ctx, "journalctl", "-u", unit, "-o", "json", "--no-pager")
	if err != nil {
		return "", err
	}
	pw, err := passwdEntry("kioskd")
	if err != nil {
		return "", err
	}
	var entries, structured, asKioskd int
	fields := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		var ent map[string]any
		if json.Unmarshal([]byte(l), &ent) != nil {
			continue
		}
		entries++
		if ent["SYSLOG_IDENTIFIER"] != "kioskd" {
			continue
		}
		if ent["_UID"] == pw[2] {
			asKioskd++
		}
		msg, _ := ent["MESSAGE"].(string)
		var rec map[string]any
		if json.Unmarshal([]byte(msg), &rec) != nil {
			continue
		}
		if rec["level"] == nil || rec["msg"] == nil || rec["ts"] == nil {
			continue
		}
		structured++
		for k := range rec {
			fields[k] = true
		}
	}
	if structured == 0 || asKioskd == 0 {
		return "", fmt.Errorf("%d journal entries, %d structured from kioskd, %d as user kioskd", entries, structured, asKioskd)
	}
	for _, want := range []string{"kassa_purchase_id"} {
		if !fields[want] {
			return "", fmt.Errorf("no entry carries %q (fields seen: %v)", want, keys(fields))
		}
	}
	// No secret anywhere in the journal: the QRs' encrypted and sign parts,
	// the client key.
	secrets := 0
	for _, qr := range e.sd.fed {
		var q struct{ Encrypted, Sign string }
		if err := json.Unmarshal(qr, &q); err != nil || q.Encrypted == "" || q.Sign == "" {
			return "", fmt.Errorf("fed QR without encrypted/sign: %v", err)
		}
		for _, s := range []string{q.Encrypted, q.Sign, q.Encrypted[:24], q.Sign[:24]} {
			if strings.Contains(out, s) {
				return "", fmt.Errorf("the journal shows a QR secret (%.8s…)", s)
			}
			secrets++
		}
	}
	key, err := os.ReadFile(filepath.Join(etcKioskd, "client.key"))
	if err != nil {
		return "", err
	}
	for _, l := range bytes.Split(key, []byte("\n")) {
		if len(l) >= 32 && !bytes.HasPrefix(l, []byte("-----")) {
			if strings.Contains(out, string(l)) {
				return "", errors.New("the journal shows the client key")
			}
			secrets++
		}
	}
	if len(e.sd.fed) == 0 {
		return "", errors.New("no QR was fed before this scenario (systemd-sale failed?)")
	}
	return fmt.Sprintf("%d entries, %d structured JSON from kioskd (as user kioskd: %d; fields %s); none of %d secret strings (QR encrypted/sign of %d sales, client key) present",
		entries, structured, asKioskd, strings.Join(keys(fields), ","), secrets, len(e.sd.fed)), nil
}

func keys(m map[string]bool) []string {
	var l []string
	for k := range m {
		l = append(l, k)
	}
	sort.Strings(l)
	return l
}

func sdPurge(ctx context.Context, e *env) (string, error) {
	if !e.sd.installed {
		return "", errors.New("the package is not installed (systemd-install failed)")
	}
	// dpkg --purge is what apt-get purge runs; apt itself only adds
	// resolving, which takes a minute under TCG.
	if _, err := command(ctx, "dpkg", "--purge", "kioskd"); err != nil {
		return "", err
	}
	// dpkg-query fails on a package it no longer knows.
	if st, err := command(ctx, "dpkg-query", "-W", "-f=${Status}", "kioskd"); err == nil && !strings.Contains(st, "not-installed") {
		return "", fmt.Errorf("dpkg still has kioskd: %q", st)
	}
	var left []string
	for _, f := range append(e.sd.files, etcKioskd, "/var/lib/kioskd", "/run/kioskd",
		"/etc/systemd/system/multi-user.target.wants/"+unit, "/etc/systemd/system/"+unit) {
		fi, err := os.Stat(f) // /lib and the like are links to directories
		if err != nil || f == "/." || f == "" {
			continue
		}
		// Directories the package shares with others stay.
		if fi.IsDir() && !strings.Contains(f, "kioskd") {
			continue
		}
		left = append(left, f)
	}
	if len(left) > 0 {
		return "", fmt.Errorf("left after purge: %s", strings.Join(left, " "))
	}
	if p, _ := unitProps(ctx, "LoadState", "ActiveState"); p["LoadState"] != "not-found" {
		return "", fmt.Errorf("%s after purge: %v", unit, p)
	}
	pw, err := passwdEntry("kioskd")
	if err != nil {
		return "", fmt.Errorf("the user went too: %w", err)
	}
	if procs := procsOf(pw[2]); len(procs) > 0 {
		return "", fmt.Errorf("processes of user kioskd still running: %v", procs)
	}
	return fmt.Sprintf("dpkg --purge: %d package paths, /etc/kioskd (config, certificates, key), /var/lib/kioskd (journal) and the unit's enablement gone, unit not-found, no kioskd process; user kioskd (uid %s) kept, as Debian keeps system users",
		len(e.sd.files), pw[2]), nil
}

// procsOf lists the pids of processes whose real uid is uid.
func procsOf(uid string) []string {
	var l []string
	m, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range m {
		if u, err := procUID(filepath.Base(p)); err == nil && u == uid {
			l = append(l, filepath.Base(p))
		}
	}
	return l
}
