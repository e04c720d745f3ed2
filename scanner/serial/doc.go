// Package serial is the scanner driver for serial and USB-CDC scanners
// (/dev/ttyACM*, /dev/ttyUSB*, by udev symlink or /dev/serial/by-id), built
// on github.com/tarm/serial. It registers itself as driver "serial".
//
// tarm/serial opens and configures the port and does the reading and
// writing, but its Close does not unblock a pending Read and its only timeout
// is termios VTIME (100 ms steps). So the driver opens the tty a second time,
// non-blocking, and waits on that descriptor in Go's netpoller until input,
// an error or a hang-up is there; only then does it read through tarm/serial,
// which returns at once. An idle port therefore costs no wake-ups besides a
// node check once a second, a gap-ended frame ends exactly Settings.Frame.Gap after
// its last byte, and cancelling the context or closing the port ends Read at
// once. The second descriptor also sets TIOCEXCL, so another process opening
// the port gets EBUSY (scanner.ErrBusy).
//
// An unplug shows as EIO/ENXIO from read, as reads that return nothing at
// once (a hung-up tty), or as a device node that is gone or points to another
// device (udev re-pointed the symlink): Read then fails with an error
// wrapping scanner.ErrDisconnected and the Supervisor reopens the path.
//
// Host commands (Settings.Host) give the Port the optional
// scanner.Beeper and scanner.Enabler abilities for Honeywell, Datalogic and
// Zebra SSI scanners.
package serial
