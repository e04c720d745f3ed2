package devices

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// fakeSys builds a sysfs tree the way the kernel lays it out (class entries
// are symlinks into devices/, device links point up to the parent) and a dev
// directory beside it.
type fakeSys struct {
	t    *testing.T
	root string // contains sys/ and dev/
}

func (f fakeSys) sys(p string) string { return filepath.Join(f.root, "sys", p) }

func (f fakeSys) write(p string, kv map[string]string) {
	f.t.Helper()
	dir := f.sys(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.t.Fatal(err)
	}
	for k, v := range kv {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v+"\n"), 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f fakeSys) link(at, target string) {
	f.t.Helper()
	at = filepath.Join(f.root, at)
	if err := os.MkdirAll(filepath.Dir(at), 0o755); err != nil {
		f.t.Fatal(err)
	}
	rel, err := filepath.Rel(filepath.Dir(at), filepath.Join(f.root, target))
	if err != nil {
		f.t.Fatal(err)
	}
	if err := os.Symlink(rel, at); err != nil {
		f.t.Fatal(err)
	}
}

const hub = "devices/pci0000:00/0000:00:14.0/usb1"

func (f fakeSys) usbDevice(port, vid, pid, mfr, product, serial string, devnum string) string {
	p := hub + "/" + port
	kv := map[string]string{"idVendor": vid, "idProduct": pid, "busnum": "1", "devnum": devnum, "bDeviceClass": "00"}
	if mfr != "" {
		kv["manufacturer"] = mfr
	}
	if product != "" {
		kv["product"] = product
	}
	if serial != "" {
		kv["serial"] = serial
	}
	f.write(p, kv)
	f.link("sys/bus/usb/devices/"+port, "sys/"+p)
	return p
}

func (f fakeSys) usbInterface(dev, name, class, sub, proto, driver string) string {
	p := dev + "/" + name
	num := name[strings.LastIndexByte(name, '.')+1:]
	f.write(p, map[string]string{"bInterfaceNumber": "0" + num, "bInterfaceClass": class, "bInterfaceSubClass": sub, "bInterfaceProtocol": proto})
	f.link("sys/bus/usb/devices/"+name, "sys/"+p)
	if driver != "" {
		f.write("bus/usb/drivers/"+driver, nil)
		f.link("sys/"+p+"/driver", "sys/bus/usb/drivers/"+driver)
	}
	return p
}

func (f fakeSys) tty(parent, name string, viaPort bool) {
	devDir := parent
	if viaPort { // usb-serial: interface/ttyUSB0/tty/ttyUSB0
		devDir = parent + "/" + name
		f.write(devDir, nil)
	}
	cls := devDir + "/tty/" + name
	f.write(cls, map[string]string{"dev": "188:0"})
	f.link("sys/"+cls+"/device", "sys/"+devDir)
	f.link("sys/class/tty/"+name, "sys/"+cls)
}

func (f fakeSys) hidraw(ifc, hidName, node string, desc []byte, uevent string) {
	hid := ifc + "/" + hidName
	f.write(hid, map[string]string{"uevent": uevent})
	if err := os.WriteFile(f.sys(hid+"/report_descriptor"), desc, 0o644); err != nil {
		f.t.Fatal(err)
	}
	cls := hid + "/hidraw/" + node
	f.write(cls, map[string]string{"dev": "244:0"})
	f.link("sys/"+cls+"/device", "sys/"+hid)
	f.link("sys/class/hidraw/"+node, "sys/"+cls)
}

var (
	posDescriptor = []byte{0x05, 0x8c, 0x09, 0x02, 0xa1, 0x01, 0x09, 0x12, 0xa1, 0x02, 0x85, 0x02, 0x15, 0x00, 0x26, 0xff, 0x00, 0x75, 0x08, 0x95, 0x3f, 0x09, 0xfe, 0x81, 0x02, 0xc0, 0xc0}
	kbdDescriptor = []byte{0x05, 0x01, 0x09, 0x06, 0xa1, 0x01, 0x05, 0x07, 0x19, 0xe0, 0x29, 0xe7, 0x15, 0x00, 0x25, 0x01, 0x75, 0x01, 0x95, 0x08, 0x81, 0x02, 0xc0}
)

func buildTree(t *testing.T) string {
	f := fakeSys{t: t, root: t.TempDir()}
	f.write(hub, map[string]string{"idVendor": "1d6b", "idProduct": "0002", "bDeviceClass": "09", "busnum": "1", "devnum": "1"})
	f.link("sys/bus/usb/devices/usb1", "sys/"+hub)

	// FTDI bridge with a serial number: ttyUSB0 and a by-id link.
	d := f.usbDevice("1-1", "0403", "6001", "FTDI", "FT232R USB UART", "A50285BI", "2")
	f.tty(f.usbInterface(d, "1-1:1.0", "ff", "ff", "ff", "ftdi_sio"), "ttyUSB0", true)
	f.link("dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0", "dev/ttyUSB0")

	// Honeywell CM4680SR in HID POS mode, bound to usbhid.
	d = f.usbDevice("1-2", "0c2e", "10d3", "Honeywell", "CM4680SR", "21134B0123", "3")
	f.hidraw(f.usbInterface(d, "1-2:1.0", "03", "00", "00", "usbhid"), "0003:0C2E:10D3.0001", "hidraw0", posDescriptor,
		"HID_ID=0003:00000C2E:000010D3\nHID_NAME=Honeywell CM4680SR")

	// Newland keyboard-mode scanner.
	d = f.usbDevice("1-3", "1eab", "1d03", "Newland", "FM430", "", "4")
	f.hidraw(f.usbInterface(d, "1-3:1.0", "03", "01", "01", "usbhid"), "0003:1EAB:1D03.0002", "hidraw1", kbdDescriptor, "")

	// Newland in CDC mode: ttyACM0.
	d = f.usbDevice("1-4", "1eab", "1d06", "Newland", "FM430", "NL0001", "5")
	f.tty(f.usbInterface(d, "1-4:1.0", "02", "02", "01", "cdc_acm"), "ttyACM0", false)
	f.usbInterface(d, "1-4:1.1", "0a", "00", "00", "cdc_acm")

	// CH340 bridge: no serial number, so no by-id link.
	d = f.usbDevice("1-5", "1a86", "7523", "", "USB Serial", "", "6")
	f.tty(f.usbInterface(d, "1-5:1.0", "ff", "01", "02", "ch341"), "ttyUSB1", true)

	// Honeywell keyboard scanner with usbhid detached (kioskd holds it).
	d = f.usbDevice("1-6", "0c2e", "0204", "Honeywell", "", "", "7")
	f.usbInterface(d, "1-6:1.0", "03", "01", "01", "")

	// An unknown mouse.
	d = f.usbDevice("1-7", "046d", "c077", "Logitech", "USB Optical Mouse", "", "8")
	f.usbInterface(d, "1-7:1.0", "03", "01", "02", "usbhid")

	// Built-in UARTs: one real (type 4), one the 8250 driver made up (type 0);
	// a virtual console without a device.
	f.write("devices/pnp0/00:01/tty/ttyS0", map[string]string{"type": "4"})
	f.link("sys/devices/pnp0/00:01/tty/ttyS0/device", "sys/devices/pnp0/00:01")
	f.link("sys/class/tty/ttyS0", "sys/devices/pnp0/00:01/tty/ttyS0")
	f.write("devices/platform/serial8250/tty/ttyS1", map[string]string{"type": "0"})
	f.link("sys/devices/platform/serial8250/tty/ttyS1/device", "sys/devices/platform/serial8250")
	f.link("sys/class/tty/ttyS1", "sys/devices/platform/serial8250/tty/ttyS1")
	f.write("devices/virtual/tty/tty0", nil)
	f.link("sys/class/tty/tty0", "sys/devices/virtual/tty/tty0")
	return f.root
}

func TestList(t *testing.T) {
	ds, dev := listTree(t)
	type want struct {
		kind     Kind
		path     string
		id       string
		role     Role
		mode     string
		iface    int
		serial   string
		byID     bool
		slowNote bool
	}
	wants := []want{
		{KindSerial, "ttyACM0", "1eab:1d06", RoleScanner, ModeCDC, 0, "NL0001", false, false},
		{KindSerial, "ttyS0", "", RoleUnknown, ModeSerial, -1, "", false, false},
		{KindSerial, "ttyUSB0", "0403:6001", RoleBridge, ModeSerial, 0, "A50285BI", true, false},
		{KindSerial, "ttyUSB1", "1a86:7523", RoleBridge, ModeSerial, 0, "", false, false},
		{KindHID, "hidraw0", "0c2e:10d3", RoleScanner, ModePOS, 0, "21134B0123", false, false},
		{KindHID, "hidraw1", "1eab:1d03", RoleScanner, ModeKeyboard, 0, "", false, true},
		{KindUSB, "bus/usb/001/002", "0403:6001", RoleBridge, ModeSerial, 0, "A50285BI", false, false},
		{KindUSB, "bus/usb/001/003", "0c2e:10d3", RoleScanner, ModePOS, 0, "21134B0123", false, false},
		{KindUSB, "bus/usb/001/004", "1eab:1d03", RoleScanner, ModeKeyboard, 0, "", false, true},
		{KindUSB, "bus/usb/001/005", "1eab:1d06", RoleScanner, ModeCDC, 0, "NL0001", false, false},
		{KindUSB, "bus/usb/001/006", "1a86:7523", RoleBridge, ModeSerial, 0, "", false, false},
		{KindUSB, "bus/usb/001/007", "0c2e:0204", RoleScanner, ModeKeyboard, 0, "", false, true},
		{KindUSB, "bus/usb/001/008", "046d:c077", RoleUnknown, "", 0, "", false, false},
	}
	if len(ds) != len(wants) {
		for _, d := range ds {
			t.Logf("%s %s %s", d.Kind, d.Path, d.ID())
		}
		t.Fatalf("%d devices, want %d", len(ds), len(wants))
	}
	for i, w := range wants {
		d := ds[i]
		if d.Kind != w.kind || d.Path != filepath.Join(dev, w.path) || d.ID() != w.id || d.Role != w.role ||
			d.Mode != w.mode || d.Interface != w.iface || d.Serial != w.serial || (d.ByID != "") != w.byID ||
			(d.Note == SlowNote) != w.slowNote {
			t.Errorf("device %d:\n got %+v\nwant %+v", i, d, w)
		}
	}
	if ds[2].ByID != filepath.Join(dev, "serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0") {
		t.Errorf("by-id %q", ds[2].ByID)
	}
	if got := ds[4].String(); got != "hid "+filepath.Join(dev, "hidraw0")+" 0c2e:10d3: Honeywell CM4680SR: scanner, pos mode" {
		t.Errorf("String: %q", got)
	}
	if ds[4].KernelDriver != "usbhid" || ds[4].Model != "CM4680SR" || ds[4].Bus != "1-2" {
		t.Errorf("hidraw0: %+v", ds[4])
	}
	if ds[0].KernelDriver != "cdc_acm" || ds[0].Product != "FM430" {
		t.Errorf("ttyACM0: %+v", ds[0])
	}
}

// listTree lists the devices of buildTree's machine and returns them with
// its /dev.
func listTree(t *testing.T) ([]Device, string) {
	t.Helper()
	root := buildTree(t)
	ds, err := List(filepath.Join(root, "sys"))
	if err != nil {
		t.Fatal(err)
	}
	return ds, filepath.Join(root, "dev")
}

func TestListWithoutUSB(t *testing.T) {
	ds, err := List(filepath.Join(t.TempDir(), "sys"))
	if err != nil || len(ds) != 0 {
		t.Fatalf("%v %v", ds, err)
	}
}

// snippetConfig is the part of devices.yaml a snippet fills.
type snippetConfig struct {
	Scanners []struct {
		Name      string `yaml:"name"`
		Driver    string `yaml:"driver"`
		Port      string `yaml:"port"`
		Baud      int    `yaml:"baud"`
		Framing   string `yaml:"framing"`
		VID       string `yaml:"vid"`
		PID       string `yaml:"pid"`
		Serial    string `yaml:"serial"`
		Interface *int   `yaml:"interface"`
		Mode      string `yaml:"mode"`
		Layout    string `yaml:"layout"`
	} `yaml:"scanners"`
	Displays []struct {
		Driver string `yaml:"driver"`
		Port   string `yaml:"port"`
	} `yaml:"displays"`
}

func TestSnippets(t *testing.T) {
	ds, _ := listTree(t)
	for _, d := range ds {
		s := Snippet(d)
		var c snippetConfig
		if err := yaml.UnmarshalWithOptions([]byte(s), &c, yaml.Strict()); err != nil {
			t.Fatalf("%s: %v\n%s", d.Path, err, s)
		}
		if d.Role == RoleDisplay {
			continue
		}
		if d.Kind == KindUSB && (d.Mode == ModeSerial || d.Mode == ModeCDC) {
			if len(c.Scanners) != 0 || !strings.Contains(s, "driver: serial") {
				t.Errorf("%s: USB view of a serial device:\n%s", d.Path, s)
			}
			continue
		}
		if len(c.Scanners) != 1 {
			t.Fatalf("%s: %d scanners\n%s", d.Path, len(c.Scanners), s)
		}
		sc := c.Scanners[0]
		if sc.Driver != string(d.Kind) {
			t.Errorf("%s: driver %q", d.Path, sc.Driver)
		}
		if d.ID() != "" && sc.VID+":"+sc.PID != d.ID() {
			t.Errorf("%s: vid/pid %q %q", d.Path, sc.VID, sc.PID)
		}
		if sc.Serial != d.Serial {
			t.Errorf("%s: serial %q", d.Path, sc.Serial)
		}
		if d.Kind == KindSerial && sc.Port != port(d) {
			t.Errorf("%s: port %q", d.Path, sc.Port)
		}
		if d.Kind != KindSerial && (sc.Mode != "pos" && sc.Mode != "keyboard") {
			t.Errorf("%s: mode %q", d.Path, sc.Mode)
		}
		if d.Mode == ModeKeyboard && (sc.Layout != "us" || !strings.Contains(s, "slow")) {
			t.Errorf("%s: keyboard snippet\n%s", d.Path, s)
		}
		if d.Role == RoleBridge && !strings.Contains(s, "# displays:") {
			t.Errorf("%s: bridge without display alternative\n%s", d.Path, s)
		}
	}

	want := `# 0c2e:10d3: Honeywell CM4680SR: scanner, pos mode
scanners:
  - name: scanner-hidraw0
    driver: hid
    vid: "0c2e"
    pid: "10d3"
    serial: "21134B0123"
    interface: 0
    mode: pos
`
	if got := Snippet(ds[4]); got != want {
		t.Errorf("HID POS snippet:\n%s\nwant:\n%s", got, want)
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/dev/ttyUSB0":          "/dev/ttyUSB0",
		"/dev/serial/by-id/a:b": `"/dev/serial/by-id/a:b"`,
		"0123":                  `"0123"`,
		"a\"b\x01":              `"a\"b\x01"`,
		"":                      `""`,
	} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestUsagePage(t *testing.T) {
	for _, tc := range []struct {
		desc []byte
		page uint16
		ok   bool
	}{
		{posDescriptor, 0x8c, true},
		{kbdDescriptor, 0x01, true},
		{[]byte{0x06, 0x8c, 0x00, 0x09, 0x02}, 0x8c, true}, // two-byte usage page
		{[]byte{0x09, 0x02, 0x05}, 0, false},               // truncated
		{[]byte{0xfe, 0x02, 0x10, 1, 2, 0x05, 0x8c}, 0x8c, true},
		{nil, 0, false},
	} {
		page, ok := usagePage(tc.desc)
		if page != tc.page || ok != tc.ok {
			t.Errorf("% x: %x %v", tc.desc, page, ok)
		}
	}
}

// TestListing: what `kioskd devices` prints names every device's role and
// mode in plain words, also when the role is not known.
func TestListing(t *testing.T) {
	ds, dev := listTree(t)
	for _, d := range ds {
		l := Listing(d)
		first, _, _ := strings.Cut(l, "\n")
		if first != d.String() || strings.Contains(l, "role ,") || strings.Contains(l, ", mode") {
			t.Errorf("%s:\n%s", d.Path, l)
		}
	}
	if got := strings.SplitN(Listing(ds[1]), "\n", 2)[0]; got != "serial "+filepath.Join(dev, "ttyS0")+" serial mode" {
		t.Errorf("unknown role: %q", got)
	}
	want := "serial " + filepath.Join(dev, "ttyUSB0") + " (" + ds[2].ByID + ") 0403:6001: FTDI FT232 USB-serial: serial bridge, serial mode\n" +
		"  devices.yaml:\n    # 0403:6001: FTDI FT232 USB-serial: serial bridge, serial mode\n    # a USB-serial bridge"
	if got := Listing(ds[2]); !strings.HasPrefix(got, want) {
		t.Errorf("bridge:\n%s\nwant it to start:\n%s", got, want)
	}
}
