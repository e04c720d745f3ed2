package settings

import (
	"fmt"
	"strconv"
)

// LinkDir is where `kioskd udev-rules` links a device configured by its USB
// identity: /dev/kiosk/<name>.
const LinkDir = "/dev/kiosk/"

// USB identifies a USB device: vendor and product id, optionally its serial
// number and one of its interfaces.
type USB struct {
	VID, PID  uint16
	Serial    string // empty matches any
	Interface int    // -1 matches any
}

// Fields declares vid, pid and serial; a driver that picks an interface
// adds its own "interface" key.
func (u *USB) Fields() []Field {
	return []Field{Hex16("vid", &u.VID), Hex16("pid", &u.PID), String("serial", &u.Serial)}
}

// Validate reports a vid without a pid or the other way round and, with
// required, an entry that has neither.
func (u *USB) Validate(sec *Section, required bool) {
	vid, pid := sec.Has("vid"), sec.Has("pid")
	switch {
	case required && !vid && !pid:
		sec.Errorf("vid", "driver %s needs vid and pid, e.g. vid: \"0c2e\", pid: \"10d3\"", sec.Driver)
	case vid && !pid:
		sec.Errorf("pid", "vid and pid go together; give both or neither")
	case pid && !vid:
		sec.Errorf("vid", "vid and pid go together; give both or neither")
	}
}

// Given reports whether a USB identity was configured.
func (u USB) Given() bool { return u.VID != 0 || u.PID != 0 }

// String returns "vvvv:pppp", with the serial number and the interface when
// they are set: how logs, errors and checks name the device.
func (u USB) String() string {
	s := fmt.Sprintf("%04x:%04x", u.VID, u.PID)
	if u.Serial != "" {
		s += " serial " + strconv.Quote(u.Serial)
	}
	if u.Interface >= 0 {
		s += " interface " + strconv.Itoa(u.Interface)
	}
	return s
}

// Port is a serial device: the path of its tty and, optionally, the USB
// identity of the adapter behind it, from which `kioskd udev-rules` makes
// the link /dev/kiosk/<name> that Path then defaults to.
type Port struct {
	Path string
	USB  USB
}

// Fields declares port, vid, pid and serial.
func (p *Port) Fields() []Field {
	return append([]Field{DevicePath("port", &p.Path)}, p.USB.Fields()...)
}

// Check completes Path from the USB identity and the entry's name, or
// reports that neither was given.
func (p *Port) Check(sec *Section) {
	p.USB.Interface = -1 // a tty is one interface already
	p.USB.Validate(sec, false)
	if p.Path == "" && sec.Has("vid") && sec.Has("pid") && sec.Name != "" {
		p.Path = LinkDir + sec.Name
	}
	if p.Path == "" && !sec.Failed("port") {
		sec.Errorf("port", "required for driver %s (e.g. /dev/serial/by-id/… or %spole), or give vid and pid", sec.Driver, LinkDir)
	}
}

// Opens describes the tty for the tools (see Resource).
func (p Port) Opens() Resource { return Resource{Kind: TTY, Path: p.Path, USB: p.USB} }

// ResourceKind is the kind of thing an entry opens.
type ResourceKind int

// Kinds of Resource. The names are the udev subsystems of the device nodes.
const (
	None      ResourceKind = iota // opens nothing of the machine's (a log, a terminal)
	TTY                           // a serial port
	HIDRaw                        // a hidraw node
	USBDevice                     // a USB device through libusb (/dev/bus/usb)
	Listen                        // a TCP address it listens on
)

var resourceNames = [...]string{"none", "tty", "hidraw", "usb", "listen"}

// String returns "tty", "hidraw", "usb", "listen" or "none".
func (k ResourceKind) String() string { return NameOf(resourceNames[:], k) }

// Resource is what one entry opens, described for the tools that prepare
// and check the machine (`kioskd udev-rules`, `kioskd check`) and for the
// check that no two entries claim the same port, device or address.
type Resource struct {
	Kind     ResourceKind
	Path     string // TTY: the configured port
	USB      USB    // the USB device behind it, when configured
	Addr     string // Listen: host:port
	Mode     string // how the device is read, for descriptions ("pos", "keyboard"); may be empty
	Keyboard bool   // the kernel sees a keyboard: keep it from the desktop and the console
}

// Opens is implemented by settings whose entry opens a device node or an
// address. Settings without it open nothing the tools need to know about.
type Opens interface {
	Opens() Resource
}

// ResourceOf returns what v opens, or a Resource of kind None.
func ResourceOf(v any) Resource {
	if o, ok := v.(Opens); ok {
		return o.Opens()
	}
	return Resource{}
}
