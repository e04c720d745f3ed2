// Package scanner also owns what every driver shares:
//
//   - typed errors (ErrNotFound, ErrPermission, ErrBusy, ErrClosed,
//     ErrDisconnected and *OpenError) so callers and the health report can
//     branch on why a device is not being read, with the fix in the message;
//   - a registry of drivers by name (Drivers, NewOpener): each driver
//     declares its devices.yaml keys, defaults and rules on its own Settings
//     type (see scanner/settings), so an entry is checked when the file is
//     read, before any device is opened; its Settings hand out an Opener,
//     not an open handle, so the Supervisor can reopen at will;
//   - optional abilities found by type assertion (Beeper, Enabler) rather
//     than a fat Scanner interface;
//   - one Supervisor that opens, reads, reopens with backoff, reports every
//     scanner's status and drops duplicate reads, calling the Handler directly
//     from the reading goroutine so that no scan ever waits in a queue; a
//     kernel hotplug event (netlink uevent) cuts a down scanner's backoff
//     short, so a replugged one is read again as soon as its node exists.
//
// Drivers live in sub-packages and register themselves in init with
// settings.Register(scanner.Drivers, …): scanner/serial ("serial"),
// scanner/hid ("hid"), scanner/usb ("usb").
// Byte-stream framing shared by the drivers is in scanner/frame; fakes for
// other packages' tests are in scanner/scannertest; the settings schema and
// registry shape that scanners share with displays, vending and fiscal
// drivers is scanner/settings.
package scanner
