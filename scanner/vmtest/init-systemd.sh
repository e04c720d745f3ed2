#!/bin/sh
# /init-systemd of the test initramfs (kernel argument rdinit=/init-systemd):
# load the USB stack as /init does, mount the cached Debian root file system
# (virtio disk, a throw-away snapshot), put the test programs and the
# package in it, and hand over to systemd as PID 1. vmtest.service then runs
# vmguest's systemd scenarios.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() {
	echo "VM systemd-boot: FAIL init-systemd: $*"
	printf '\001' | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
	poweroff -f
}
# The disk first; the USB stack in the order /init uses, so bus numbers match.
for m in virtio_pci virtio_blk crc32c_generic ext4 xhci-pci usbhid hid-generic ftdi_sio cdc-acm evdev uhid configfs libcomposite usb_f_hid usb_f_acm; do
	modprobe $m || echo "init-systemd: modprobe $m failed"
done
modprobe dummy_hcd num=2 || echo "init-systemd: modprobe dummy_hcd failed"
i=0
while [ ! -b /dev/vda ]; do
	i=$((i + 1))
	[ $i -gt 100 ] && fail "no /dev/vda (is the root image attached?)"
	sleep 0.1
done
mkdir -p /newroot
mount -t ext4 /dev/vda /newroot || fail "cannot mount /dev/vda"

# The scenarios' programs: vmguest and the simulator. kioskd itself comes
# only from the package.
mkdir -p /newroot/opt/vmtest
cp /bin/vmguest /newroot/opt/vmtest/
# kiosk.go runs the simulator as /bin/smartpay-sim (usr-merged: /usr/bin).
cp /bin/smartpay-sim /newroot/usr/bin/smartpay-sim
cp /kioskd.deb /newroot/opt/vmtest/
args=$(sed -n 's/.*vmtest\.args=\([^ ]*\).*/\1/p' /proc/cmdline | tr '+' ' ')
cat >/newroot/etc/systemd/system/vmtest.service <<EOF
[Unit]
Description=kioskd VM test scenarios
After=systemd-udevd.service systemd-udev-trigger.service local-fs.target

[Service]
Type=exec
ExecStart=/opt/vmtest/vmguest -suite systemd $args
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
TTYReset=no
TTYVHangup=no

[Install]
WantedBy=multi-user.target
EOF
mkdir -p /newroot/etc/systemd/system/multi-user.target.wants
ln -sf ../vmtest.service /newroot/etc/systemd/system/multi-user.target.wants/vmtest.service

umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /lib/systemd/systemd
