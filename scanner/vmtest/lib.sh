#!/usr/bin/env bash
# Shared helpers of the VM test bed: host packages, the cached guest kernel.
# Sourced by run.sh; every step is idempotent so a second run only boots.

vm_log() { printf 'vmtest: %s\n' "$*" >&2; }

# vm_cache_dir prints the cache folder (kernel, initramfs staging); never in the repo.
vm_cache_dir() {
	local d
	if [ -n "${XDG_CACHE_HOME:-}" ]; then
		d="$XDG_CACHE_HOME/kioskd-vm"
	elif mkdir -p /var/cache/kioskd-vm 2>/dev/null && [ -w /var/cache/kioskd-vm ]; then
		d=/var/cache/kioskd-vm
	else
		d="$HOME/.cache/kioskd-vm"
	fi
	mkdir -p "$d"
	printf '%s\n' "$d"
}

# vm_install_deps installs the host packages the test bed needs, skipping
# those already present (apt-get only runs when something is missing).
vm_install_deps() {
	local pkgs="qemu-system-x86 busybox-static cpio xz-utils socat libusb-1.0-0-dev pkg-config gcc udev e2fsprogs"
	local missing="" p
	for p in $pkgs; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" != 0 ]; then
		vm_log "missing packages:$missing (run as root or install them)"
		return 1
	fi
	vm_log "installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# vm_kernel fetches the Debian amd64 kernel package once, unpacks it and the
# raw vmlinux into the cache, and prints the kernel folder. The cloud kernel
# has no USB support, so it must be the full one.
vm_kernel() {
	local cache pkg dir deb off
	cache=$(vm_cache_dir)
	pkg=${KIOSKD_VM_KERNEL_PKG:-}
	if [ -z "$pkg" ]; then
		pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: \(linux-image-[0-9][^ ]*-amd64\).*/\1/p' | head -n1)
	fi
	if [ -z "$pkg" ]; then
		# No apt metadata (fresh container): reuse any cached kernel, else update.
		dir=$(ls -d "$cache"/linux-image-*-amd64 2>/dev/null | tail -n1)
		if [ -n "$dir" ] && [ -f "$dir/vmlinux" ]; then printf '%s\n' "$dir"; return 0; fi
		apt-get update -qq
		pkg=$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: \(linux-image-[0-9][^ ]*-amd64\).*/\1/p' | head -n1)
	fi
	[ -n "$pkg" ] || { vm_log "cannot find the linux-image package name"; return 1; }
	dir="$cache/$pkg"
	if [ -f "$dir/vmlinux" ] && [ -f "$dir/.complete" ]; then
		printf '%s\n' "$dir"
		return 0
	fi
	vm_log "fetching $pkg (once)"
	rm -rf "$dir" "$cache/dl"
	mkdir -p "$dir" "$cache/dl"
	if ! (cd "$cache/dl" && apt-get download "$pkg" >/dev/null 2>&1); then
		# Stale lists give 404s: refresh and retry once.
		apt-get update -qq
		(cd "$cache/dl" && apt-get download "$pkg" >/dev/null)
	fi
	deb=$(ls "$cache"/dl/*.deb | head -n1)
	dpkg -x "$deb" "$dir/root"
	rm -rf "$cache/dl"
	local vmlinuz
	vmlinuz=$(ls "$dir"/root/boot/vmlinuz-* | head -n1)
	# vmlinuz is a bzImage: the xz stream starts at the first xz magic.
	off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$vmlinuz" | head -n1 | cut -d: -f1)
	[ -n "$off" ] || { vm_log "no xz stream in $vmlinuz"; return 1; }
	# xz exits 1 on the trailing data after the stream; the output is complete.
	tail -c +$((off + 1)) "$vmlinuz" | xz -dc >"$dir/vmlinux" 2>/dev/null || true
	[ -s "$dir/vmlinux" ] || { vm_log "vmlinux unpack failed"; return 1; }
	touch "$dir/.complete"
	printf '%s\n' "$dir"
}
