// Package vmtest is the host side of the kioskd QEMU test bed: it proves the
// scanner and display drivers (and the whole agent) against the real Linux USB
// stack — xhci, usbhid, ftdi_sio, cdc-acm and configfs gadgets on dummy_hcd —
// inside a TCG guest booted from the Debian kernel.
//
// The pieces:
//   - run.sh builds the guest binaries, packs the initramfs and starts
//     cmd/vmhost; `bash scanner/vmtest/run.sh` is the one command (.ci/test
//     runs it after the unit tests);
//   - cmd/vmhost boots QEMU and plays the devices QEMU emulates: it writes
//     scanner bytes into usb-serial chardev sockets, types on the usb-kbd
//     through QMP, unplugs and plugs devices, and decodes what the guest sends
//     to the pole display;
//   - cmd/vmguest runs inside the guest as the test program: it builds the
//     gadgets, runs the scenarios, prints one "VM <scenario>: PASS|FAIL" line
//     each and leaves through isa-debug-exit with the number of failures.
//
// The power-cut bed is the other half: cmd/powercut (host) and
// cmd/powerguest (guest) run kioskd with its journal on ext4 on a virtual
// disk this package serves over NBD with a volatile write cache (Disk),
// cut the power at seeded moments (PlanCut: timed, at a commit or another
// call reaching the simulator, at a disk flush), boot again on the same
// disk and check every sale against the simulator. A raw -drive file would
// not do: a killed QEMU loses nothing it wrote to one, in any cache mode
// (powercut -probe shows it).
//
// Guest and host talk over the guest's second serial port (ttyS1) with one
// request line and one answer line at a time; this package holds that
// protocol, the QMP client and the US keyboard and Epson/CP866 codecs, so
// they are tested on the host without a VM.
package vmtest
