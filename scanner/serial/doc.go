// Package serial is the scanner driver for serial and USB-CDC scanners
// (/dev/ttyACM*, /dev/ttyUSB*, by udev symlink or /dev/serial/by-id), built
// on github.com/tarm/serial. It registers itself as driver "serial".
//
// tarm/serial's Close does not unblock a pending Read, so the port is read in
// a loop with a short read timeout (100 ms, the termios VTIME minimum) that
// checks the context, the frame's gap deadline and whether the device is
// still there. A read returns as soon as a byte arrives, so the timeout adds
// no latency to a scan; an idle port wakes ten times a second and does not
// busy-poll. A gap-ended frame is noticed at the next wake-up, so gap framing
// ends up to 100 ms after Config.Gap; suffix and JSON framing are immediate.
//
// An unplug shows as EIO/ENXIO from read, as reads that return nothing at
// once (a hung-up tty), or as a device node that is gone or points to another
// device (udev re-pointed the symlink): Read then fails with an error
// wrapping scanner.ErrDisconnected and the Supervisor reopens the path.
//
// Host commands (Config.HostCommands) give the Port the optional
// scanner.Beeper and scanner.Enabler abilities for Honeywell, Datalogic and
// Zebra SSI scanners.
package serial
