// Package hid is the "hid" scanner driver: USB scanners read through
// github.com/karalabe/hid (hidapi on its bundled libusb), in HID POS mode
// (usage page 0x8C reports, joined across reports) or keyboard mode (boot
// keyboard reports decoded with a per-device layout). Decoding lives in
// scanner/hidreport; this package finds, opens, reads and closes devices.
//
// Facts that shape it (HARDWARE.md, VMTEST.md):
//   - On Linux karalabe/hid goes through libusb: permissions come from
//     /dev/bus/usb (udev rules), not /dev/hidraw*, and the usage page is
//     reported as 0, so devices are selected by VID/PID, serial number and
//     interface number only.
//   - Opening detaches usbhid (the scanner stops typing into the console)
//     and Close re-attaches it, so the read loop is stopped before Close.
//   - Every full 64-byte report from some devices is followed by a
//     zero-length packet, which reads as 0 bytes like a timeout: skipped.
//   - Without cgo the library is a stub whose Enumerate finds nothing: the
//     driver refuses to start instead. Build with CGO_ENABLED=1; for a
//     minimal system without glibc's gconv modules add
//     CGO_CFLAGS="-O2 -g -DNO_ICONV" so serial numbers are not empty.
package hid
