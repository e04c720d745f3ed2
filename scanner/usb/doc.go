// Package usb is the "usb" scanner driver: USB scanners read straight from
// their interrupt IN endpoint with github.com/google/gousb (libusb), in HID
// POS or keyboard mode, decoded by scanner/hidreport. It serves scanners the
// kernel grabs as a keyboard: claiming the interface with kernel-driver
// auto-detach unbinds usbhid, so the scanner stops typing into the console,
// and releasing it binds usbhid again.
//
// Order matters, and a crash while the interface is claimed leaves usbhid
// unbound (VMTEST.md), so the driver is strict about it: open context →
// device → configuration → claim; close in reverse, after the read loop has
// stopped: Close cancels the submitted transfers (gousb really cancels them)
// and waits for Read before releasing the interface.
//
// Reading keeps a stream of transfers submitted by one goroutine that Read
// owns, stamps each report on arrival and never cancels a transfer for
// timing (see Scanner.Read); between codes nothing in the driver wakes up.
//
// The package needs cgo and libusb-1.0 (libusb-1.0-0-dev and pkg-config to
// build). In a binary that also links scanner/hid, gousb uses karalabe/hid's
// bundled libusb.
package usb
