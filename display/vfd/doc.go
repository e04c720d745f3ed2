// Package vfd drives 2x20 customer pole displays (VFD or LCD) on a serial
// port: Epson ESC/POS customer-display commands (the default), CD5220, AEDEX
// and Logic Controls. Text is laid out for 20 columns (Layout), encoded in a
// configurable code page (CP866 by default, so Cyrillic works) and written as
// one full frame per Show, so a lost or garbled update is repaired by the
// next one.
//
// Renderer turns screens into bytes on any io.Writer (tests compare them with
// golden files). Display adds the serial port: it opens the port on the first
// Show, closes it on a write error (the display was unplugged) and opens it
// again on a later Show, with a growing delay while opening keeps failing.
package vfd
