#!/usr/bin/env bash
# bash scanner/vmtest/run.sh: build the guest, pack the initramfs, boot QEMU, run every
# scenario, print the summary; exits non-zero on any failure.
# Environment: KIOSKD_VM_ONLY=a,b runs only those scenarios; KIOSKD_VM_DEBUG=1
# logs the drivers on the guest console;
# KIOSKD_VM_KERNEL_PKG pins the kernel package.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export PATH=/usr/local/go/bin:$PATH
# shellcheck source=lib.sh
source "$here/lib.sh"

t0=$(date +%s)
vm_install_deps
kdir=$(vm_kernel)
kver=$(ls "$kdir/root/lib/modules" | head -n1)
cache=$(vm_cache_dir)
work=$(mktemp -d /tmp/kioskd-vm.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Guest binaries: dynamic cgo builds (gousb needs libusb; karalabe/hid
# bundles its own); the loader and libraries are copied in below.
# -DNO_ICONV: glibc iconv needs gconv modules the guest does not have, and
# without them karalabe/hid returns empty USB strings.
vm_log "building guest binaries"
bin="$work/bin"
mkdir -p "$bin"
(
	cd "$repo"
	export CGO_ENABLED=1 CGO_CFLAGS="-O2 -g -DNO_ICONV"
	go build -o "$bin/vmguest" ./scanner/vmtest/cmd/vmguest
	go build -o "$bin/vmhost" ./scanner/vmtest/cmd/vmhost
	for c in kioskd smartpay-sim; do
		if [ -f "cmd/$c/main.go" ]; then
			go build -o "$bin/$c" "./cmd/$c" || vm_log "cmd/$c does not build; its scenarios will fail"
		fi
	done
)

vm_log "packing initramfs"
root="$work/root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,etc,proc,sys,dev,tmp,run,var}
cp /bin/busybox "$root/bin/busybox"
for a in $("$root/bin/busybox" --list); do
	# A link named busybox would replace the binary itself.
	[ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"
done
cp "$here/init.sh" "$root/init"
chmod 755 "$root/init"
for b in "$bin"/*; do
	[ "$(basename "$b")" = vmhost ] || cp "$b" "$root/bin/"
done

# Shared libraries of everything we run in the guest (loader included).
copy_libs() {
	local f lib
	for f in "$@"; do
		for lib in $(ldd "$f" 2>/dev/null | grep -o '/[^ ]*' | sort -u); do
			[ -e "$root$lib" ] && continue
			mkdir -p "$root$(dirname "$lib")"
			cp -L "$lib" "$root$lib"
		done
	done
}
copy_libs "$root"/bin/vmguest "$root"/bin/kioskd "$root"/bin/smartpay-sim

# systemd-udevd and udevadm for the udev scenario, plus the project's rules.
if [ -x /lib/systemd/systemd-udevd ]; then
	mkdir -p "$root/lib/systemd" "$root/etc/udev/rules.d" "$root/lib/udev/rules.d"
	cp /lib/systemd/systemd-udevd "$root/lib/systemd/"
	cp "$(command -v udevadm)" "$root/bin/udevadm"
	copy_libs "$root/lib/systemd/systemd-udevd" "$root/bin/udevadm"
	for r in "$repo"/udev/*.rules; do
		[ -f "$r" ] && cp "$r" "$root/lib/udev/rules.d/"
	done
	echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
	printf 'root:x:0:\nkioskd:x:990:\ndialout:x:20:\n' >"$root/etc/group"
fi

# Kernel modules and their dependencies, from the package's own tree.
mods="xhci-pci usbhid hid-generic ftdi_sio cdc-acm evdev uhid configfs libcomposite dummy_hcd usb_f_hid usb_f_acm usb_f_serial"
kmods="$kdir/root/lib/modules/$kver"
[ -f "$kmods/modules.dep" ] || busybox depmod -b "$kdir/root" "$kver"
need=""
for m in $mods; do
	line=$(grep -E "/${m//[-_]/[-_]}\.ko(\.[a-z]+)?:" "$kmods/modules.dep" | head -n1)
	[ -n "$line" ] || { vm_log "module $m not in $kver"; exit 1; }
	need="$need ${line//:/}"
done
for p in $(printf '%s\n' $need | sort -u); do
	mkdir -p "$root/lib/modules/$kver/$(dirname "$p")"
	cp "$kmods/$p" "$root/lib/modules/$kver/$p"
done
cp "$kmods"/modules.builtin* "$kmods/modules.order" "$root/lib/modules/$kver/" 2>/dev/null || true
busybox depmod -b "$root" "$kver"

(cd "$root" && find . -print0 | cpio --null -o -H newc 2>/dev/null | gzip -1) >"$work/initrd.gz"
vm_log "initramfs $(du -h "$work/initrd.gz" | cut -f1), prepared in $(($(date +%s) - t0)) s; booting"

# Guest flags travel on the kernel command line, '+' for spaces.
gargs=""
[ -n "${KIOSKD_VM_ONLY:-}" ] && gargs="-only+${KIOSKD_VM_ONLY}"
[ -n "${KIOSKD_VM_DEBUG:-}" ] && gargs="${gargs:+$gargs+}-debug"
args=""
[ -n "$gargs" ] && args="vmtest.args=$gargs"
set +e
"$bin/vmhost" -kernel "$kdir/vmlinux" -initrd "$work/initrd.gz" -dir "$work" -append "$args"
rc=$?
set -e
vm_log "whole run $(($(date +%s) - t0)) s"
exit $rc
