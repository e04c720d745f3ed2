// Package serialtest stands a real pseudo-terminal in for a serial device
// (a scanner, a pole display, an MDB adapter). The test, simulator or demo
// holds the master end; the driver under test opens the slave, usually
// through a symlink the way udev names a device, and runs its real code
// path: open, termios, reads, hang-ups.
//
// It backs the serial scanner's and the pole display's tests, the vending
// machine simulator (vmcsim) and the demo's virtual scanner, so it imports
// no testing package: a test opens a Pty and closes it in its cleanup.
package serialtest
