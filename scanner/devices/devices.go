package devices

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Kind is how the device is reached.
type Kind string

// Kinds of listed devices.
const (
	KindSerial Kind = "serial" // a tty: /dev/ttyUSB*, /dev/ttyACM*, /dev/ttyS*
	KindHID    Kind = "hid"    // a hidraw node (bound to usbhid)
	KindUSB    Kind = "usb"    // a USB device, reachable through libusb
)

// Device is one listed device, with everything `kioskd devices` prints.
type Device struct {
	Kind Kind
	// Path is the device node: /dev/ttyUSB0, /dev/hidraw0, /dev/bus/usb/001/004.
	Path string
	// ByID is the /dev/serial/by-id link to a serial port, when udev made
	// one (CH340 bridges have no serial number and get none).
	ByID string
	// SysPath is the device's directory in sysfs.
	SysPath string

	// USB identity; zero for a device not on USB (a built-in ttyS).
	VID, PID     uint16
	Manufacturer string
	Product      string
	Serial       string
	Interface    int    // USB interface number; -1 when not known
	Bus          string // USB bus and port path, e.g. "1-1.4"
	KernelDriver string // driver bound to the interface: usbhid, ftdi_sio, cdc_acm…

	// Guesses.
	Role   Role   // scanner, serial bridge, pole display, or unknown
	Mode   string // keyboard, pos, cdc, serial; "" when unknown
	Vendor string // vendor name from the known IDs
	Model  string // model name from the known IDs
	Note   string // advice, e.g. that keyboard mode is slow
}

// ID returns "vvvv:pppp", or "" for a device without USB identity.
func (d Device) ID() string {
	if d.VID == 0 && d.PID == 0 {
		return ""
	}
	return fmt.Sprintf("%04x:%04x", d.VID, d.PID)
}

// List reads sysfsRoot (normally "/sys") and returns the serial ports, hidraw
// devices and USB devices (hubs left out), sorted by kind and path. Device
// nodes are looked up in the "dev" directory beside sysfsRoot ("/dev" for
// "/sys"). A class directory that does not exist (no USB on this machine)
// is not an error.
func List(sysfsRoot string) ([]Device, error) {
	l := lister{sys: filepath.Clean(sysfsRoot), dev: filepath.Join(filepath.Dir(filepath.Clean(sysfsRoot)), "dev")}
	// Class entries are symlinks into devices/: compare resolved paths.
	if real, err := filepath.EvalSymlinks(l.sys); err == nil {
		l.sys = real
	}
	var out []Device
	for _, f := range []func() ([]Device, error){l.serial, l.hidraw, l.usb} {
		ds, err := f()
		if err != nil {
			return nil, err
		}
		out = append(out, ds...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return kindOrder(out[i].Kind) < kindOrder(out[j].Kind)
		}
		return natLess(out[i].Path, out[j].Path)
	})
	return out, nil
}

func kindOrder(k Kind) int {
	switch k {
	case KindSerial:
		return 0
	case KindHID:
		return 1
	}
	return 2
}

// natLess orders ttyUSB2 before ttyUSB10.
func natLess(a, b string) bool {
	ta, na := splitNum(a)
	tb, nb := splitNum(b)
	if ta != tb {
		return a < b
	}
	return na < nb
}

func splitNum(s string) (string, int) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	n, _ := strconv.Atoi(s[i:])
	return s[:i], n
}

type lister struct{ sys, dev string }

// entries lists a class directory; a missing directory is empty.
func (l lister) entries(dir string) ([]os.DirEntry, error) {
	es, err := os.ReadDir(filepath.Join(l.sys, dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("devices: %w", err)
	}
	return es, nil
}

func (l lister) serial() ([]Device, error) {
	es, err := l.entries("class/tty")
	if err != nil {
		return nil, err
	}
	byID := l.byID()
	var out []Device
	for _, e := range es {
		name := e.Name()
		if !strings.HasPrefix(name, "ttyUSB") && !strings.HasPrefix(name, "ttyACM") && !strings.HasPrefix(name, "ttyS") {
			continue
		}
		cls := filepath.Join(l.sys, "class/tty", name)
		dev, err := filepath.EvalSymlinks(filepath.Join(cls, "device"))
		if err != nil {
			continue // no device behind it: a virtual tty
		}
		// The 8250 driver registers ports that are not there: type 0.
		if t, err := readTrim(filepath.Join(cls, "type")); err == nil && t == "0" {
			continue
		}
		d := Device{Kind: KindSerial, Path: filepath.Join(l.dev, name), ByID: byID[name], Interface: -1}
		d.SysPath, _ = filepath.EvalSymlinks(cls)
		l.fillUSB(&d, dev)
		guess(&d, nil)
		out = append(out, d)
	}
	return out, nil
}

// byID maps tty names to their /dev/serial/by-id links.
func (l lister) byID() map[string]string {
	m := map[string]string{}
	dir := filepath.Join(l.dev, "serial/by-id")
	es, err := os.ReadDir(dir)
	if err != nil {
		return m
	}
	for _, e := range es {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		m[filepath.Base(target)] = filepath.Join(dir, e.Name())
	}
	return m
}

func (l lister) hidraw() ([]Device, error) {
	es, err := l.entries("class/hidraw")
	if err != nil {
		return nil, err
	}
	var out []Device
	for _, e := range es {
		cls := filepath.Join(l.sys, "class/hidraw", e.Name())
		hid, err := filepath.EvalSymlinks(filepath.Join(cls, "device"))
		if err != nil {
			continue
		}
		d := Device{Kind: KindHID, Path: filepath.Join(l.dev, e.Name()), Interface: -1}
		d.SysPath, _ = filepath.EvalSymlinks(cls)
		l.fillUSB(&d, hid)
		if d.VID == 0 && d.PID == 0 {
			d.VID, d.PID, d.Product, d.Serial = hidUevent(hid)
		}
		desc, _ := os.ReadFile(filepath.Join(hid, "report_descriptor"))
		guess(&d, desc)
		out = append(out, d)
	}
	return out, nil
}

func (l lister) usb() ([]Device, error) {
	es, err := l.entries("bus/usb/devices")
	if err != nil {
		return nil, err
	}
	var out []Device
	for _, e := range es {
		if strings.Contains(e.Name(), ":") {
			continue // an interface, not a device
		}
		dir, err := filepath.EvalSymlinks(filepath.Join(l.sys, "bus/usb/devices", e.Name()))
		if err != nil {
			continue
		}
		if c, _ := readTrim(filepath.Join(dir, "bDeviceClass")); c == "09" {
			continue // hubs, including the root hubs
		}
		d := Device{Kind: KindUSB, SysPath: dir, Interface: -1}
		if !l.fillUSB(&d, dir) {
			continue
		}
		bus, _ := readTrim(filepath.Join(dir, "busnum"))
		num, _ := readTrim(filepath.Join(dir, "devnum"))
		b, errB := strconv.Atoi(bus)
		n, errN := strconv.Atoi(num)
		if errB == nil && errN == nil {
			d.Path = filepath.Join(l.dev, fmt.Sprintf("bus/usb/%03d/%03d", b, n))
		}
		// Describe the device by its first interface that says something.
		var desc []byte
		ifs, _ := filepath.Glob(filepath.Join(dir, e.Name()+":*"))
		sort.Strings(ifs)
		for _, ifc := range ifs {
			mode := interfaceMode(ifc)
			if mode == "" {
				continue
			}
			d.Interface = atoiHex(readTrimOr(filepath.Join(ifc, "bInterfaceNumber")))
			d.KernelDriver = driverOf(ifc)
			if mode == ModeKeyboard || mode == "hid" {
				desc = hidDescriptor(ifc)
			}
			break
		}
		guess(&d, desc)
		if d.Mode == "" || d.Mode == "hid" {
			if m := usbModeFromInterfaces(ifs); m != "" {
				d.Mode = m
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// fillUSB walks up from a sysfs device directory to the USB interface and
// device above it and copies their attributes; false when there is none.
func (l lister) fillUSB(d *Device, dir string) bool {
	for p := dir; p != "/" && p != "." && strings.HasPrefix(p, l.sys); p = filepath.Dir(p) {
		if d.Interface < 0 {
			if n, err := readTrim(filepath.Join(p, "bInterfaceNumber")); err == nil {
				d.Interface = atoiHex(n)
				d.KernelDriver = driverOf(p)
				if d.Kind == KindSerial && d.Mode == "" {
					d.Mode = interfaceMode(p)
				}
			}
		}
		v, err := readTrim(filepath.Join(p, "idVendor"))
		if err != nil {
			continue
		}
		pr, _ := readTrim(filepath.Join(p, "idProduct"))
		d.VID, d.PID = uint16(atoiHex(v)), uint16(atoiHex(pr))
		d.Manufacturer, _ = readTrim(filepath.Join(p, "manufacturer"))
		d.Product, _ = readTrim(filepath.Join(p, "product"))
		d.Serial, _ = readTrim(filepath.Join(p, "serial"))
		d.Bus = filepath.Base(p)
		return true
	}
	return false
}

// interfaceMode reads what a USB interface's class says about the mode.
func interfaceMode(ifc string) string {
	class, _ := readTrim(filepath.Join(ifc, "bInterfaceClass"))
	sub, _ := readTrim(filepath.Join(ifc, "bInterfaceSubClass"))
	proto, _ := readTrim(filepath.Join(ifc, "bInterfaceProtocol"))
	switch {
	case class == "03" && sub == "01" && proto == "01":
		return ModeKeyboard
	case class == "03":
		return "hid"
	case class == "02" || class == "0a":
		return ModeCDC
	case class == "ff" && driverOf(ifc) != "":
		return ModeSerial // vendor class with a usb-serial driver bound
	}
	return ""
}

func usbModeFromInterfaces(ifs []string) string {
	for _, ifc := range ifs {
		switch m := interfaceMode(ifc); m {
		case ModeKeyboard, ModeCDC, ModeSerial:
			return m
		}
	}
	return ""
}

// hidDescriptor finds the report descriptor of the HID device under a USB
// interface (present while usbhid is bound).
func hidDescriptor(ifc string) []byte {
	ms, _ := filepath.Glob(filepath.Join(ifc, "*:*:*.*", "report_descriptor"))
	for _, m := range ms {
		if b, err := os.ReadFile(m); err == nil {
			return b
		}
	}
	return nil
}

// hidUevent reads HID_ID, HID_NAME and HID_UNIQ of a HID device (for a HID
// device not on USB, e.g. uhid or Bluetooth).
func hidUevent(dir string) (vid, pid uint16, name, uniq string) {
	b, err := os.ReadFile(filepath.Join(dir, "uevent"))
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "HID_ID": // bus:vendor:product, 4 and 8 hex digits
			parts := strings.Split(v, ":")
			if len(parts) == 3 {
				vid, pid = uint16(atoiHex(parts[1])), uint16(atoiHex(parts[2]))
			}
		case "HID_NAME":
			name = v
		case "HID_UNIQ":
			uniq = v
		}
	}
	return
}

// usagePage returns the first Usage Page item of a HID report descriptor:
// 0x8C for a HID POS scanner, 0x01 (Generic Desktop) for a keyboard.
func usagePage(desc []byte) (uint16, bool) {
	for i := 0; i < len(desc); {
		b := desc[i]
		if b == 0xFE { // long item: 0xFE, size, tag, data
			if i+1 >= len(desc) {
				break
			}
			i += 3 + int(desc[i+1])
			continue
		}
		size := int(b & 0x03)
		if size == 3 {
			size = 4
		}
		if b&0xFC == 0x04 && i+size < len(desc) && size > 0 { // global Usage Page
			v := uint16(desc[i+1])
			if size > 1 {
				v |= uint16(desc[i+2]) << 8
			}
			return v, true
		}
		i += 1 + size
	}
	return 0, false
}

// guess fills Role, Mode, Vendor, Model and Note.
func guess(d *Device, desc []byte) {
	k, ok := lookup(d.VID, d.PID)
	if ok {
		d.Role, d.Vendor, d.Model = k.role, k.vendor, k.model
		if d.Mode == "" || d.Mode == "hid" {
			if k.mode != "" {
				d.Mode = k.mode
			}
		}
	}
	// What the device says about itself beats the table.
	if page, ok := usagePage(desc); ok {
		switch page {
		case 0x8C:
			d.Mode = ModePOS
			d.Role = RoleScanner
		case 0x01:
			if d.Mode == "" || d.Mode == "hid" || d.Mode == ModePOS {
				d.Mode = ModeKeyboard
			}
		}
	}
	if d.Kind == KindSerial {
		switch {
		case strings.Contains(d.Path, "ttyACM"):
			d.Mode = ModeCDC
		case d.Mode != ModeCDC:
			d.Mode = ModeSerial
		}
		if d.Role == RoleUnknown && strings.Contains(d.Path, "ttyUSB") {
			d.Role = RoleBridge
		}
	}
	if d.Mode == "hid" {
		d.Mode = ""
	}
	switch {
	case d.Role == RoleScanner && d.Mode == ModeKeyboard:
		d.Note = SlowNote
	case d.Role == RoleBridge:
		d.Note = "a USB-serial bridge: a serial scanner or a pole display; the baud rate matters"
	case d.Role == RoleScanner && d.Mode == ModeCDC:
		d.Note = "CDC-ACM: the baud rate is ignored"
	}
}

func readTrim(p string) (string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func readTrimOr(p string) string {
	s, _ := readTrim(p)
	return s
}

func atoiHex(s string) int {
	n, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		return -1
	}
	return int(n)
}

func driverOf(dir string) string {
	t, err := os.Readlink(filepath.Join(dir, "driver"))
	if err != nil {
		return ""
	}
	return filepath.Base(t)
}
