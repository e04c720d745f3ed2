package udevrules

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kioskd/kioskd/cmd/kioskd/internal/config"
)

var update = flag.Bool("update", false, "rewrite testdata/rules.golden")

func TestGenerateGolden(t *testing.T) {
	cfg, err := config.Load("testdata/devices.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Generate(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if errs := lint(got); len(errs) > 0 {
		t.Errorf("generated rules do not lint:\n%s", strings.Join(errs, "\n"))
	}
	golden := filepath.Join("testdata", "rules.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("rules differ from %s (run go test -update after checking the change):\n%s", golden, got)
	}
}

func TestGenerateRefusesUnsafeSerial(t *testing.T) {
	src, err := os.ReadFile("testdata/devices.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("d.yaml", bytes.Replace(src, []byte(`"19282B4F21"`), []byte(`'19"28'`), 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(cfg, Options{}); err == nil || !strings.Contains(err.Error(), `scanners[3] side`) {
		t.Errorf("err = %v, want a refusal naming scanners[3]", err)
	}
}

func TestGenerateForTheExample(t *testing.T) {
	cfg, err := config.Load("../../../../devices.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Generate(cfg, Options{Group: "kiosk", Service: "kiosk-agent.service"})
	if err != nil {
		t.Fatal(err)
	}
	if errs := lint(got); len(errs) > 0 {
		t.Errorf("rules for the example do not lint:\n%s", strings.Join(errs, "\n"))
	}
	for _, want := range []string{`SYMLINK+="kiosk/front"`, `SYMLINK+="kiosk/pole"`, `GROUP="kiosk"`,
		`ENV{SYSTEMD_WANTS}+="kiosk-agent.service"`, `ENV{LIBINPUT_IGNORE_DEVICE}="1"`} {
		if !bytes.Contains(got, []byte(want)) {
			t.Errorf("rules lack %s:\n%s", want, got)
		}
	}
}

// TestStaticRules lints the shipped generic rules, and checks that they keep
// the promises the install docs make.
func TestStaticRules(t *testing.T) {
	data, err := os.ReadFile("../../../../udev/99-kioskd.rules")
	if err != nil {
		t.Fatal(err)
	}
	if errs := lint(data); len(errs) > 0 {
		t.Errorf("udev/99-kioskd.rules:\n%s", strings.Join(errs, "\n"))
	}
	for _, want := range []string{`MODE="0660", GROUP="kioskd"`, `ENV{ID_MM_DEVICE_IGNORE}="1"`,
		`ATTR{power/control}="on"`, `ENV{ID_INPUT_KEYBOARD}=""`, `ENV{LIBINPUT_IGNORE_DEVICE}="1"`,
		`TAG+="systemd", ENV{SYSTEMD_WANTS}+="kioskd.service"`, `SYMLINK+="kiosk/`} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("static rules lack %s", want)
		}
	}
	// Every vendor of HARDWARE.md's table is covered.
	for _, vid := range []string{"0c2e", "05e0", "05f9", "080c", "1eab", "067e", "0db5", "065a",
		"0403", "1a86", "067b", "10c4", "1504"} {
		if !bytes.Contains(data, []byte(`ATTRS{idVendor}=="`+vid+`"`)) {
			t.Errorf("static rules do not cover vendor %s", vid)
		}
	}
}

// TestUdevadmVerify runs the real udev checker when this udev has it
// (systemd 253 and later); Debian 12's udevadm 252 does not.
func TestUdevadmVerify(t *testing.T) {
	path, err := exec.LookPath("udevadm")
	if err != nil {
		t.Skip("no udevadm")
	}
	if out, err := exec.Command(path, "verify", "--help").CombinedOutput(); err != nil {
		t.Skipf("udevadm has no verify: %s", bytes.TrimSpace(out))
	}
	cfg, err := config.Load("testdata/devices.yaml")
	if err != nil {
		t.Fatal(err)
	}
	gen, err := Generate(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	genPath := filepath.Join(t.TempDir(), "99-generated.rules")
	if err := os.WriteFile(genPath, gen, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"../../../../udev/99-kioskd.rules", genPath} {
		if out, err := exec.Command(path, "verify", "--no-style", f).CombinedOutput(); err != nil {
			t.Errorf("udevadm verify %s: %v\n%s", f, err, out)
		}
	}
}

// TestLintFindsMistakes makes sure the linter used above can fail.
func TestLintFindsMistakes(t *testing.T) {
	cases := map[string]string{
		`SUBSYSTEM=="tty", MODE=="0660"`:                   "operator == not allowed",
		`SUBSYSTEM=="tty", COLOUR="red"`:                   "unknown key",
		`SUBSYSTEM=="tty", GOTO="nowhere"`:                 `GOTO "nowhere" has no LABEL after it`,
		`SUBSYSTEM=="tty", SYMLINK+="kiosk/$env{X"`:        "bad substitution",
		`SUBSYSTEM=="tty", MODE="rw"`:                      "is not octal",
		`SUBSYSTEM=="tty", GROUP="kioskd",`:                "trailing comma",
		`SUBSYSTEM=="tty" GROUP="kioskd"`:                  "want a comma",
		`SUBSYSTEM=="tty", GROUP="kioskd`:                  "unterminated value",
		`ATTRS=="x", GROUP="kioskd"`:                       "needs {attribute}",
		`SUBSYSTEM=="tty", ATTRS{idVendor}=="0c2e"`:        "only matches and does nothing",
		`SUBSYSTEM=="tty", IMPORT{nonsense}="usb_id"`:      "unknown import type",
		`SUBSYSTEM=="tty", GOTO="end"` + "\nLABEL=\"end\"": "",
	}
	for rule, want := range cases {
		errs := strings.Join(lint([]byte(rule+"\n")), "\n")
		if want == "" && errs != "" || !strings.Contains(errs, want) {
			t.Errorf("lint(%s) = %q, want %q", rule, errs, want)
		}
	}
}
