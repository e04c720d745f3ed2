// Package devices lists the serial ports, HID devices and USB devices
// attached to the machine, from sysfs, with a guess of what each one is (a
// scanner in keyboard, HID POS, CDC or serial mode; a USB-serial bridge that
// may drive a pole display) and a ready devices.yaml snippet. It backs the
// `kioskd devices` command.
//
// It only reads files: the sysfs root is a parameter, so the listing is
// tested on a fake tree, and nothing is opened or claimed, so listing is safe
// while the agent runs.
package devices
