package devices

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kioskd/kioskd/display/vfd"
	"github.com/kioskd/kioskd/scanner/frame"
	"github.com/kioskd/kioskd/scanner/hidreport"
	"github.com/kioskd/kioskd/scanner/serial"
)

// Listing is what `kioskd devices` prints for d: the summary line (String)
// and a devices.yaml snippet, whose comments carry the guesses and advice.
func Listing(d Device) string {
	snippet := strings.ReplaceAll(strings.TrimRight(Snippet(d), "\n"), "\n", "\n    ")
	return d.String() + "\n  devices.yaml:\n    " + snippet + "\n"
}

// Snippet returns a devices.yaml fragment that uses d: a scanners entry, or
// for a USB-serial bridge or pole display a displays entry as well (as
// comments: which one it is cannot be told from sysfs). Comments carry the
// guesses and the advice.
func Snippet(d Device) string {
	var b strings.Builder
	if head := describe(d); head != "" {
		fmt.Fprintf(&b, "# %s\n", head)
	}
	if d.Note != "" {
		fmt.Fprintf(&b, "# %s\n", d.Note)
	}
	if d.Kind == KindUSB && (d.Mode == ModeSerial || d.Mode == ModeCDC) {
		// libusb would have to speak the bridge's or CDC's protocol:
		// the kernel's tty is the way to it.
		b.WriteString("# a serial device: configure its tty (ttyUSB*/ttyACM*) with driver: serial\n")
		return b.String()
	}
	if d.Role == RoleUnknown && d.Kind != KindSerial {
		b.WriteString("# not a known scanner; if it is one:\n")
	}
	if d.Role == RoleDisplay {
		writeDisplay(&b, d, "")
		return b.String()
	}
	writeScanner(&b, d)
	if d.Role == RoleBridge {
		b.WriteString("# or, for a pole display on this bridge:\n")
		writeDisplay(&b, d, "# ")
	}
	return b.String()
}

func describe(d Device) string {
	var parts []string
	if id := d.ID(); id != "" {
		parts = append(parts, id)
	}
	name := strings.TrimSpace(strings.Join(nonEmpty(d.Vendor, d.Model), " "))
	if name == "" {
		name = strings.TrimSpace(strings.Join(nonEmpty(d.Manufacturer, d.Product), " "))
	}
	if name != "" {
		parts = append(parts, name)
	}
	switch {
	case d.Role != RoleUnknown && d.Mode != "":
		parts = append(parts, string(d.Role)+", "+d.Mode+" mode")
	case d.Role != RoleUnknown:
		parts = append(parts, string(d.Role))
	case d.Mode != "":
		// Unbranded scanners have unknown IDs: a keyboard could be one.
		parts = append(parts, d.Mode+" mode")
	}
	return strings.Join(parts, ": ")
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// port is the most stable path for a serial port.
func port(d Device) string {
	if d.ByID != "" {
		return d.ByID
	}
	return d.Path
}

func writeScanner(b *strings.Builder, d Device) {
	b.WriteString("scanners:\n")
	fmt.Fprintf(b, "  - name: %s\n", name(d, "scanner"))
	switch d.Kind {
	case KindSerial:
		b.WriteString("    driver: serial\n")
		fmt.Fprintf(b, "    port: %s\n", quote(port(d)))
		if d.Mode == ModeCDC {
			b.WriteString("    baud: 115200     # ignored by CDC-ACM\n")
		} else {
			fmt.Fprintf(b, "    baud: %d       # the scanner's setting: 9600 and 115200 are common\n", serial.Defaults.Baud)
		}
		fmt.Fprintf(b, "    framing: %s\n", frame.Auto)
		writeUSBIdentity(b, d, false)
	default:
		fmt.Fprintf(b, "    driver: %s\n", d.Kind)
		writeUSBIdentity(b, d, true)
		mode := hidreport.POSMode
		switch d.Mode {
		case ModeKeyboard:
			mode = hidreport.KeyboardMode
		case ModePOS:
		default:
			fmt.Fprintf(b, "    # the mode could not be told: %s or %s\n", hidreport.POSMode, hidreport.KeyboardMode)
		}
		fmt.Fprintf(b, "    mode: %s\n", mode)
		if mode == hidreport.KeyboardMode {
			fmt.Fprintf(b, "    layout: %s       # the layout the scanner types in: %s\n", hidreport.Defaults.Layout,
				strings.Join(hidreport.LayoutNames(), ", "))
			fmt.Fprintf(b, "    framing: %s\n", frame.Auto)
		}
	}
}

func writeUSBIdentity(b *strings.Builder, d Device, withInterface bool) {
	if d.ID() == "" {
		return
	}
	fmt.Fprintf(b, "    vid: \"%04x\"\n", d.VID)
	fmt.Fprintf(b, "    pid: \"%04x\"\n", d.PID)
	if d.Serial != "" {
		fmt.Fprintf(b, "    serial: %s\n", quote(d.Serial))
	}
	if withInterface && d.Interface >= 0 {
		fmt.Fprintf(b, "    interface: %d\n", d.Interface)
	}
}

func writeDisplay(b *strings.Builder, d Device, prefix string) {
	lines := []string{
		"displays:",
		"  - name: " + name(d, "pole"),
		"    driver: vfd",
		"    port: " + quote(port(d)),
		fmt.Sprintf("    baud: %d", vfd.Defaults.Baud),
		fmt.Sprintf("    command_set: %s   # what the display speaks: %s", vfd.DefaultCommandSet, strings.Join(vfd.CommandSets(), ", ")),
	}
	if d.ID() != "" {
		lines = append(lines, fmt.Sprintf("    vid: \"%04x\"", d.VID), fmt.Sprintf("    pid: \"%04x\"", d.PID))
		if d.Serial != "" {
			lines = append(lines, "    serial: "+quote(d.Serial))
		}
	}
	for _, l := range lines {
		b.WriteString(prefix + l + "\n")
	}
}

// name derives a devices.yaml name from the node: scanner-ttyUSB0.
func name(d Device, role string) string {
	base := d.Path
	if i := strings.LastIndexByte(base, '/'); i >= 0 {
		base = base[i+1:]
	}
	if d.Kind == KindUSB && d.Bus != "" {
		base = "usb" + d.Bus
	}
	base = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, base)
	if base == "" {
		return role
	}
	return role + "-" + base
}

// quote returns s as a YAML scalar, double-quoted when plain style could
// change its meaning. Go's escapes are a subset of YAML's.
func quote(s string) string {
	plain := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+", r)) {
			plain = false
		}
	}
	if plain && s[0] == '/' {
		return s
	}
	return strconv.Quote(s)
}

// String is a one-line summary for listings: kind, node, USB id, name, role
// and mode, e.g. "hid /dev/hidraw0 0c2e:10d3 Honeywell CM4680SR: scanner, pos mode".
func (d Device) String() string {
	parts := []string{string(d.Kind), d.Path}
	if d.ByID != "" {
		parts = append(parts, "("+d.ByID+")")
	}
	if h := describe(d); h != "" {
		parts = append(parts, h)
	}
	return strings.Join(parts, " ")
}
