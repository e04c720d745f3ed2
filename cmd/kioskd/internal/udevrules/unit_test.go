package udevrules

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const unitPath = "../../../../udev/kioskd.service"

// TestSystemdUnit checks the promises of the unit file and, where
// systemd-analyze exists, has systemd parse it (with ExecStart pointed at
// /bin/true, since the binary is not installed here).
func TestSystemdUnit(t *testing.T) {
	data, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Type=notify", "WatchdogSec=", "Restart=on-failure", "RestartSec=",
		"User=kioskd", "Group=kioskd", "StateDirectory=kioskd", "RuntimeDirectory=kioskd",
		"ProtectSystem=strict", "PrivateTmp=yes", "NoNewPrivileges=yes", "ProtectHome=yes", "DevicePolicy=closed",
		"DeviceAllow=char-ttyUSB rw", "DeviceAllow=char-ttyACM rw", "DeviceAllow=char-hidraw rw",
		"DeviceAllow=char-usb_device rw", "DeviceAllow=/dev/bus/usb rw",
		"ExecStart=/usr/bin/kioskd run -config /etc/kioskd/devices.yaml", "ExecCondition="} {
		if !bytes.Contains(data, []byte("\n"+want)) {
			t.Errorf("unit lacks %q", want)
		}
	}
	if bytes.Contains(data, []byte("\nPrivateDevices=yes")) {
		t.Error("PrivateDevices=yes would hide the scanners")
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("no systemd-analyze")
	}
	unit := filepath.Join(t.TempDir(), "kioskd.service")
	if err := os.WriteFile(unit, bytes.ReplaceAll(data, []byte("/usr/bin/kioskd"), []byte("/bin/true")), 0o644); err != nil {
		t.Fatal(err)
	}
	// --man=no: kioskd(1) comes with the package, not with this checkout.
	out, err := exec.Command(analyze, "verify", "--man=no", unit).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestSysusers has systemd-sysusers read the snippet without writing.
func TestSysusers(t *testing.T) {
	sysusers, err := exec.LookPath("systemd-sysusers")
	if err != nil {
		t.Skip("no systemd-sysusers")
	}
	root := t.TempDir() // an empty root: the user is "created" there, on paper
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	snippet, err := os.Open("../../../../udev/kioskd.sysusers")
	if err != nil {
		t.Fatal(err)
	}
	defer snippet.Close()
	cmd := exec.Command(sysusers, "--dry-run", "--root", root, "-") // "-": read the snippet from stdin
	cmd.Stdin = snippet
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Creating user 'kioskd'") {
		t.Errorf("systemd-sysusers: %v\n%s", err, out)
	}
}

// TestTmpfiles checks the tmpfiles snippet's lines have the six fields
// tmpfiles.d(5) wants and name the directories the unit and docs rely on.
func TestTmpfiles(t *testing.T) {
	data, err := os.ReadFile("../../../../udev/kioskd.tmpfiles")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Fields(l)
		if len(f) != 6 || f[0] != "d" {
			t.Errorf("line %q: want 6 fields of a d entry", l)
			continue
		}
		dirs = append(dirs, f[1])
	}
	if strings.Join(dirs, " ") != "/etc/kioskd /var/lib/kioskd" {
		t.Errorf("dirs = %q", dirs)
	}
}
