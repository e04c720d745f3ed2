package config

import (
	"strings"
	"testing"

	"github.com/kioskd/kioskd/scanner/devices"
)

// TestDevicesSnippetsParse checks that what `kioskd devices` prints for a
// device can be pasted into devices.yaml as it is.
func TestDevicesSnippetsParse(t *testing.T) {
	head := "kassa:\n  id: k1\nservice:\n  url: https://x\n  ca: ca.pem\n  cert: c.pem\n  key: c.key\n"
	for _, d := range []devices.Device{
		{Kind: devices.KindSerial, Path: "/dev/ttyACM0", ByID: "/dev/serial/by-id/usb-Honeywell_Imaging-if00",
			VID: 0x0c2e, PID: 0x0720, Serial: "17013B2E0A", Role: devices.RoleScanner, Mode: devices.ModeCDC, Interface: -1},
		{Kind: devices.KindHID, Path: "/dev/hidraw0", VID: 0x0c2e, PID: 0x10d3, Interface: 0,
			Role: devices.RoleScanner, Mode: devices.ModePOS},
		{Kind: devices.KindUSB, Path: "/dev/bus/usb/001/004", Bus: "1-1.4", VID: 0x1eab, PID: 0x1d03, Interface: -1,
			Role: devices.RoleScanner, Mode: devices.ModeKeyboard},
		{Kind: devices.KindSerial, Path: "/dev/ttyUSB0", VID: 0x1a86, PID: 0x7523, Interface: -1, Role: devices.RoleBridge,
			Mode: devices.ModeSerial},
	} {
		snippet := devices.Snippet(d)
		src := head + snippet
		if !strings.Contains(snippet, "scanners:") {
			t.Fatalf("snippet for %s has no scanner:\n%s", d.Path, snippet)
		}
		if _, err := Parse("d.yaml", []byte(src)); err != nil {
			t.Errorf("snippet for %s does not parse:\n%s\n%v", d.Path, snippet, err)
		}
		// A bridge's commented display entry parses too, once uncommented
		// and used instead of the scanner entry.
		if d.Role == devices.RoleBridge {
			var lines []string
			for _, l := range strings.Split(snippet, "\n") {
				if rest, ok := strings.CutPrefix(l, "# "); ok && (strings.HasPrefix(rest, "displays:") || strings.HasPrefix(rest, "  ")) {
					lines = append(lines, rest)
				}
			}
			other := "scanners:\n  - name: s\n    driver: serial\n    port: /dev/ttyS9\n"
			if _, err := Parse("d.yaml", []byte(head+other+strings.Join(lines, "\n"))); err != nil || len(lines) < 3 {
				t.Errorf("display snippet for %s does not parse:\n%s\n%v", d.Path, strings.Join(lines, "\n"), err)
			}
		}
	}
}
