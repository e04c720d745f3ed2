package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCmd runs the command line in-process and returns its output and error.
func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), args, nil, &out, &out)
	return out.String(), err
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// kioskd check and kioskd run refuse a bad devices.yaml with one line per
// problem, naming the line and the field, before anything is opened.
func TestBadConfigIsNamedByLine(t *testing.T) {
	bad := writeFile(t, "devices.yaml", `kassa:
  id: k1
  fixed_amount: lots
service:
  url: https://127.0.0.1:1
  ca: ca.crt
  cert: kassa.crt
  key: kassa.key
scanners:
  - name: front
    driver: serial
    port: /dev/ttyUSB0
    speed: 9600
`)
	for _, cmd := range []string{"check", "run"} {
		out, err := runCmd(t, cmd, "-config", bad)
		if err == nil {
			t.Fatalf("kioskd %s accepted a bad file:\n%s", cmd, out)
		}
		msg := out + err.Error()
		for _, want := range []string{"devices.yaml:3: kassa.fixed_amount", "devices.yaml:13: scanners[0].speed"} {
			if !strings.Contains(msg, want) {
				t.Errorf("kioskd %s: no %q in:\n%s", cmd, want, msg)
			}
		}
	}
}

func TestCheckMissingFile(t *testing.T) {
	out, err := runCmd(t, "check", "-config", filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(out+err.Error(), "nope.yaml") {
		t.Fatalf("check of a missing file: err %v, output:\n%s", err, out)
	}
}

// The example devices.yaml passes validation offline and yields udev rules
// with the kiosk's links, modes and group.
func TestExampleConfigAndUdevRules(t *testing.T) {
	out, err := runCmd(t, "udev-rules", "-config", "../../devices.yaml")
	if err != nil {
		t.Fatalf("udev-rules: %v\n%s", err, out)
	}
	for _, want := range []string{`SYMLINK+="kiosk/`, `MODE="0660"`, `GROUP="kioskd"`, `ATTR{power/control}="on"`} {
		if !strings.Contains(out, want) {
			t.Errorf("udev rules lack %s:\n%s", want, out)
		}
	}
}

func TestDevicesOnAnEmptyMachine(t *testing.T) {
	out, err := runCmd(t, "devices", "-sysfs", t.TempDir())
	if err != nil || !strings.Contains(out, "no serial, HID or USB devices found") {
		t.Fatalf("devices: err %v, output:\n%s", err, out)
	}
}

func TestUsageAndVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		if out, err := runCmd(t, arg); err != nil || out != "kioskd "+version+"\n" {
			t.Fatalf("%s: %v %q", arg, err, out)
		}
	}
	if _, err := runCmd(t, "frobnicate"); !errors.Is(err, errUsage) {
		t.Fatalf("unknown command: %v, want a usage error", err)
	}
	if _, err := runCmd(t); !errors.Is(err, errUsage) {
		t.Fatalf("no command: %v, want a usage error", err)
	}
}
