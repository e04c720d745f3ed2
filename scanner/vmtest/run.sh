#!/usr/bin/env bash
# bash scanner/vmtest/run.sh: build the guest, pack the initramfs, boot QEMU, run every
# scenario, print the summary; exits non-zero on any failure.
# Two boots of one kernel and initramfs: the busybox guest (/init: drivers,
# the agent, udev rules) and the systemd guest (/init-systemd: the Debian
# package under systemd as PID 1, on a cached Debian image, rootfs.sh).
# Environment: KIOSKD_VM_ONLY=a,b runs only those scenarios (the systemd
# guest boots when a name starts with "systemd-"); KIOSKD_VM_SYSTEMD=0 leaves
# the systemd guest out; KIOSKD_VM_DEB uses that kioskd .deb instead of
# building one; KIOSKD_VM_DEBUG=1 logs the drivers on the guest console;
# KIOSKD_VM_KERNEL_PKG pins the kernel package.
# Then power cuts (cmd/powercut: the busybox guest again, its journal on a
# disk that loses what was not flushed), as many as fit in
# KIOSKD_POWERCUT_DURATION (3m); `run.sh powercut` runs only them,
# KIOSKD_VM_POWERCUT=0 leaves them out (as does a KIOSKD_VM_ONLY without
# "powercut"); KIOSKD_POWERCUT_N=300 makes a long run of that many cuts,
# KIOSKD_POWERCUT_SEED=S repeats a run, KIOSKD_POWERCUT_ARGS adds flags
# (-cut SEED replays one cut, -kind commit, -probe measures what a killed
# QEMU loses, -v).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export PATH=/usr/local/go/bin:$PATH
# shellcheck source=lib.sh
source "$here/lib.sh"
# shellcheck source=rootfs.sh
source "$here/rootfs.sh"

# Which guests boot: both, unless KIOSKD_VM_ONLY names only one's scenarios.
boot_busybox=1 boot_systemd=${KIOSKD_VM_SYSTEMD:-1}
if [ -n "${KIOSKD_VM_ONLY:-}" ]; then
	boot_busybox=0
	sd=0
	for s in ${KIOSKD_VM_ONLY//,/ }; do
		case $s in systemd-*) sd=1 ;; *) boot_busybox=1 ;; esac
	done
	[ "$sd" = 1 ] || boot_systemd=0
fi
boot_powercut=${KIOSKD_VM_POWERCUT:-1}
if [ -n "${KIOSKD_VM_ONLY:-}" ] && [[ ",$KIOSKD_VM_ONLY," != *,powercut,* ]]; then
	boot_powercut=0
fi
if [ "${1:-}" = powercut ]; then
	boot_busybox=0 boot_systemd=0 boot_powercut=1
fi

t0=$(date +%s)
vm_install_deps
kdir=$(vm_kernel)
kver=$(ls "$kdir/root/lib/modules" | head -n1)
cache=$(vm_cache_dir)
work=$(mktemp -d /tmp/kioskd-vm.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=""
if [ "$boot_systemd" = 1 ]; then
	rootfs=$(vm_rootfs)
fi

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
	CGO_ENABLED=0 go build -o "$bin/powerguest" ./scanner/vmtest/cmd/powerguest
	go build -o "$work/powercut" ./scanner/vmtest/cmd/powercut
	for c in kioskd smartpay-sim; do
		if [ -f "cmd/$c/main.go" ]; then
			go build -o "$bin/$c" "./cmd/$c" || vm_log "cmd/$c does not build; its scenarios will fail"
		fi
	done
)
if [ "$boot_systemd" = 1 ]; then
	deb=${KIOSKD_VM_DEB:-}
	if [ -z "$deb" ]; then
		vm_log "building the kioskd package"
		deb=$(KIOSKD_DIST="$work/dist" bash "$repo/.ci/package" amd64)
	fi
	cp "$deb" "$work/kioskd.deb"
fi

vm_log "packing initramfs"
root="$work/root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,etc,proc,sys,dev,tmp,run,var}
cp /bin/busybox "$root/bin/busybox"
for a in $("$root/bin/busybox" --list); do
	# A link named busybox would replace the binary itself.
	[ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"
done
cp "$here/init.sh" "$root/init"
cp "$here/init-systemd.sh" "$root/init-systemd"
chmod 755 "$root/init" "$root/init-systemd"
[ -f "$work/kioskd.deb" ] && cp "$work/kioskd.deb" "$root/kioskd.deb"
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
mods="virtio_pci virtio_blk crc32c_generic ext4 xhci-pci usbhid hid-generic ftdi_sio cdc-acm evdev uhid configfs libcomposite dummy_hcd usb_f_hid usb_f_acm usb_f_serial"
mods="$mods virtio_net" # the power-cut guest reaches the simulator on the host
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
# The power-cut guest boots once per cut: its archive leaves out what only
# the other guests use and stays uncompressed (gunzip is slow under TCG).
(cd "$root" && find . ! -name vmguest ! -name smartpay-sim ! -name kioskd.deb -print0 |
	cpio --null -o -H newc 2>/dev/null) >"$work/initrd-powercut.cpio"
vm_log "initramfs $(du -h "$work/initrd.gz" | cut -f1), prepared in $(($(date +%s) - t0)) s; booting"

# Guest flags travel on the kernel command line, '+' for spaces.
gargs=""
[ -n "${KIOSKD_VM_ONLY:-}" ] && gargs="-only+${KIOSKD_VM_ONLY}"
[ -n "${KIOSKD_VM_DEBUG:-}" ] && gargs="${gargs:+$gargs+}-debug"
args=""
[ -n "$gargs" ] && args="vmtest.args=$gargs"
rc=0
if [ "$boot_busybox" = 1 ]; then
	t1=$(date +%s)
	set +e
	"$bin/vmhost" -kernel "$kdir/vmlinux" -initrd "$work/initrd.gz" -dir "$work" -append "$args"
	rc=$?
	set -e
	vm_log "busybox guest $(($(date +%s) - t1)) s"
fi
if [ "$boot_systemd" = 1 ]; then
	t1=$(date +%s)
	mkdir -p "$work/sd"
	set +e
	"$bin/vmhost" -kernel "$kdir/vmlinux" -initrd "$work/initrd.gz" -drive "$rootfs" -dir "$work/sd" \
		-append "rdinit=/init-systemd $args"
	sdrc=$?
	set -e
	vm_log "systemd guest $(($(date +%s) - t1)) s"
	[ "$rc" != 0 ] || rc=$sdrc
fi
if [ "$boot_powercut" = 1 ]; then
	t1=$(date +%s)
	pc=(-kernel "$kdir/vmlinux" -initrd "$work/initrd-powercut.cpio" -seed "${KIOSKD_POWERCUT_SEED:-0}")
	if [ -n "${KIOSKD_POWERCUT_N:-}" ]; then pc+=(-n "$KIOSKD_POWERCUT_N"); else pc+=(-duration "${KIOSKD_POWERCUT_DURATION:-3m}"); fi
	# shellcheck disable=SC2206
	pc+=(${KIOSKD_POWERCUT_ARGS:-})
	set +e
	"$work/powercut" "${pc[@]}"
	prc=$?
	set -e
	vm_log "power cuts $(($(date +%s) - t1)) s"
	[ "$rc" != 0 ] || rc=$prc
fi
vm_log "whole run $(($(date +%s) - t0)) s"
exit $rc
