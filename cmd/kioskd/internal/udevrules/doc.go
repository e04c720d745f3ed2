// Package udevrules writes udev rules for exactly the devices a
// devices.yaml configures; `kioskd udev-rules -config F` prints them. The
// rules give the service group access to the nodes kioskd opens, create
// the /dev/kiosk/<name> links that devices.yaml points at, keep
// ModemManager off the ports, switch USB autosuspend off, stop
// keyboard-mode scanners from acting as a keyboard for the desktop, and
// start the service when a device is plugged in.
//
// udev/99-kioskd.rules in the repository is the generic counterpart for
// every known model; both are checked by the same rules-file linter in the
// tests.
package udevrules
