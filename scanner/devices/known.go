package devices

import "fmt"

// Role is what a device probably is for the kiosk.
type Role string

// Roles a device can be guessed to have.
const (
	RoleScanner Role = "scanner"
	RoleBridge  Role = "serial bridge" // a scanner or a pole display behind a USB-serial chip
	RoleDisplay Role = "pole display"
	RoleUnknown Role = ""
)

// Modes a scanner can be guessed to be in. pos and keyboard are the modes
// of devices.yaml's hid and usb drivers (hidreport.Mode); a cdc or serial
// scanner is read as a tty.
const (
	ModeKeyboard = "keyboard" // boot keyboard ("wedge")
	ModePOS      = "pos"      // HID POS, usage page 0x8C
	ModeCDC      = "cdc"      // USB CDC-ACM virtual COM port
	ModeSerial   = "serial"   // RS-232 or a USB-serial bridge
)

// SlowNote is shown for keyboard-mode scanners.
const SlowNote = "keyboard mode is slow (1–19 ms per character: a 400-byte QR takes 0.8–16 s); " +
	"switch the scanner to HID POS or serial/CDC mode, which deliver it in milliseconds"

type known struct {
	vendor, model string
	role          Role
	mode          string // "" when the PID does not tell
}

// vendors are the scanner makers of HARDWARE.md's table.
var vendors = map[uint16]string{
	0x0c2e: "Honeywell/Metrologic",
	0x05e0: "Symbol/Zebra",
	0x05f9: "Datalogic (PSC)",
	0x080c: "Datalogic",
	0x1eab: "Newland",
	0x067e: "Intermec",
	0x0db5: "Access-IS",
	0x065a: "Opticon",
}

// products are the VID:PID pairs HARDWARE.md names. Modes per PID are partly
// unconfirmed there; the interface class and report descriptor, when sysfs
// has them, override these guesses.
var products = map[[2]uint16]known{
	{0x0c2e, 0x0204}: {"Honeywell", "", RoleScanner, ModeKeyboard},
	{0x0c2e, 0x0700}: {"Honeywell", "", RoleScanner, ModeSerial},
	{0x0c2e, 0x0720}: {"Honeywell", "", RoleScanner, ModeSerial},
	{0x0c2e, 0x0b81}: {"Honeywell", "Voyager 1400g", RoleScanner, ""},
	{0x0c2e, 0x10d3}: {"Honeywell", "CM4680SR", RoleScanner, ModePOS},
	{0x05e0, 0x1200}: {"Symbol/Zebra", "", RoleScanner, ModeKeyboard},
	{0x05e0, 0x1300}: {"Symbol/Zebra", "IBM hand-held", RoleScanner, ModePOS},
	{0x05e0, 0x1701}: {"Symbol/Zebra", "", RoleScanner, ModeCDC},
	{0x05e0, 0x1900}: {"Symbol/Zebra", "SNAPI", RoleScanner, ""},
	{0x05e0, 0x0600}: {"Symbol/Zebra", "COM emulation", RoleScanner, ModeCDC},
	{0x05f9, 0x2206}: {"Datalogic", "", RoleScanner, ModeKeyboard},
	{0x05f9, 0x4204}: {"Datalogic", "RS-232 emulation", RoleScanner, ModeCDC},
	{0x067e, 0x0801}: {"Intermec", "", RoleScanner, ModeKeyboard},
	{0x067e, 0x0803}: {"Intermec", "COM", RoleScanner, ModeCDC},
	{0x0db5, 0x013a}: {"Access-IS", "", RoleScanner, ModeKeyboard},
	{0x0db5, 0x0139}: {"Access-IS", "", RoleScanner, ModeCDC},
	{0x0db5, 0x013b}: {"Access-IS", "", RoleScanner, ModePOS},
	{0x065a, 0x0001}: {"Opticon", "", RoleScanner, ModeKeyboard},
	{0x065a, 0x0009}: {"Opticon", "", RoleScanner, ModeSerial},

	{0x0403, 0x6001}: {"FTDI", "FT232 USB-serial", RoleBridge, ModeSerial},
	{0x1a86, 0x7523}: {"QinHeng", "CH340 USB-serial", RoleBridge, ModeSerial},
	{0x1a86, 0x5523}: {"QinHeng", "CH341 USB-serial", RoleBridge, ModeSerial},
	{0x067b, 0x2303}: {"Prolific", "PL2303 USB-serial", RoleBridge, ModeSerial},
	{0x10c4, 0xea60}: {"Silicon Labs", "CP210x USB-serial", RoleBridge, ModeSerial},
	{0x1504, 0x0011}: {"Bixolon", "BCD-1100 (FTDI)", RoleDisplay, ModeSerial},
}

// lookup guesses from the IDs alone.
func lookup(vid, pid uint16) (known, bool) {
	if k, ok := products[[2]uint16{vid, pid}]; ok {
		return k, true
	}
	if vid == 0x1eab { // Newland: the low byte of the PID is the mode
		k := known{vendor: "Newland", model: fmt.Sprintf("base %02x", pid>>8), role: RoleScanner}
		switch pid & 0xff {
		case 0x03:
			k.mode = ModeKeyboard
		case 0x06:
			k.mode = ModeCDC
		case 0x10:
			k.mode = ModePOS
		}
		return k, true
	}
	if v, ok := vendors[vid]; ok {
		return known{vendor: v, role: RoleScanner}, true
	}
	return known{}, false
}
