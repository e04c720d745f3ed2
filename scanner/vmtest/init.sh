#!/bin/sh
# /init of the kioskd test guest: mount, load the USB stack, run vmguest.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /tmp /run /var/tmp
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
ip link set lo up
# The power-cut guest has its own program and modules (no USB stack).
grep -q 'vmtest.powercut=' /proc/cmdline && exec /bin/powerguest
# Host controller and class drivers first, so the QEMU devices get bus 1.
for m in xhci-pci usbhid hid-generic ftdi_sio cdc-acm evdev uhid configfs libcomposite usb_f_hid usb_f_acm; do
	modprobe $m || echo "init: modprobe $m failed"
done
modprobe dummy_hcd num=2 || echo "init: modprobe dummy_hcd failed"
mount -t configfs none /sys/kernel/config
args=$(sed -n 's/.*vmtest\.args=\([^ ]*\).*/\1/p' /proc/cmdline | tr '+' ' ')
/bin/vmguest $args
rc=$?
# vmguest exits QEMU itself; this is the fallback if it could not.
printf "\\$(printf %o $rc)" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
poweroff -f
