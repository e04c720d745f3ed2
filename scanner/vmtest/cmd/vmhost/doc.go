// Command vmhost boots the kioskd test guest under QEMU and plays the host
// side of its devices: the usb-serial scanner and pole display (chardev
// sockets), the usb-kbd keyboard-wedge scanner (QMP input events) and
// unplug/replug (QMP device_del/device_add). It answers the guest's requests
// on the control channel (ttyS1), echoes the guest console, and exits
// non-zero unless every scenario printed PASS and the guest exited cleanly.
//
//	vmhost -kernel vmlinux -initrd initrd.gz -dir /tmp/run
package main
