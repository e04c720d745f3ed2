// Command vmguest is the test program inside the kioskd QEMU guest (started
// by the initramfs's /init). It builds USB gadgets on dummy_hcd (a Honeywell
// HID POS scanner and a CDC-ACM scanner), waits for the kernel's drivers to
// bind every device, runs the scenarios in order, prints one
// "VM <scenario>: PASS|FAIL <details>" line each, and leaves through QEMU's
// isa-debug-exit port with the number of failed scenarios as exit code.
// Devices that QEMU emulates (usb-serial, usb-kbd) are driven by vmhost on
// request over the control channel on ttyS1.
package main
