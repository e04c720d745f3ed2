#!/usr/bin/env bash
# The systemd guest's root file system: a minimal Debian of the host's release
# (debootstrap, minbase + systemd and udev), made once into an ext4 image in
# the cache. Sourced by run.sh after lib.sh.
#
# Why a debootstrap image rather than the host's own /usr shared over 9p (as
# virtme-ng does): under TCG every file systemd and dpkg read over 9p is a
# round trip through QEMU's main loop, while an ext4 image on virtio-blk is
# read at memory speed from the host's page cache; the image holds only what
# the package needs (its Depends are checked by a real dpkg against a real
# Debian, not against whatever the CI host has installed); and it boots the
# same way on a developer's machine and on a fresh CI one.

# rootfs_recipe names what is in the image: a change rebuilds it.
rootfs_recipe="minbase systemd udev init-system-helpers apt; v1"

# vm_rootfs prints the path of the cached image, building it when missing.
vm_rootfs() {
	local cache suite mirror key img tree
	cache=$(vm_cache_dir)
	suite=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-bookworm}")
	key=$(printf '%s %s' "$suite" "$rootfs_recipe" | md5sum | cut -c1-8)
	img="$cache/rootfs-$suite-$key.img"
	if [ -f "$img" ] && [ -f "$img.complete" ]; then
		printf '%s\n' "$img"
		return 0
	fi
	if [ "$(id -u)" != 0 ]; then
		vm_log "building the systemd guest's root file system needs root (debootstrap)"
		return 1
	fi
	command -v debootstrap >/dev/null || {
		vm_log "installing debootstrap"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
	}
	# The mirror the host's apt uses, else Debian's.
	mirror=$(sed -n 's/^URIs: *\([^ ]*debian\)\/* *$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n1)
	[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
	[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
	vm_log "building the systemd guest root file system ($suite from $mirror, once)"
	rm -f "$img" "$img.complete"
	tree=$(mktemp -d "$cache/rootfs.XXXXXX")
	if ! debootstrap --variant=minbase --include=systemd,udev,init-system-helpers \
		"$suite" "$tree" "$mirror" >"$cache/debootstrap.log" 2>&1; then
		tail -n 20 "$cache/debootstrap.log" >&2
		rm -rf "$tree"
		return 1
	fi
	# What a test boot does not need: downloaded packages, package lists,
	# documentation.
	rm -rf "$tree"/var/cache/apt/archives/*.deb "$tree"/var/cache/apt/*.bin "$tree"/var/lib/apt/lists/* \
		"$tree"/usr/share/doc/* "$tree"/usr/share/man/* "$tree"/usr/share/locale/* "$tree"/usr/share/info/*
	echo kiosk >"$tree/etc/hostname"
	printf '127.0.0.1 localhost\n127.0.1.1 kiosk\n' >"$tree/etc/hosts"
	# Nothing on the consoles (ttyS0 carries the verdicts, ttyS1 the control
	# channel), and no timers that wake up during a test.
	local u
	for u in getty@tty1.service serial-getty@ttyS0.service serial-getty@ttyS1.service console-getty.service \
		apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer fstrim.timer \
		e2scrub_reap.service systemd-pstore.service; do
		ln -sf /dev/null "$tree/etc/systemd/system/$u"
	done
	# 768 MiB of sparse image: the tree is ~150 MiB, the rest is room for
	# the package, the journal and logs (writes go to a QEMU snapshot).
	if ! mkfs.ext4 -q -F -L kioskd-root -d "$tree" "$img" 768M >/dev/null; then
		rm -rf "$tree" "$img"
		return 1
	fi
	rm -rf "$tree"
	touch "$img.complete"
	printf '%s\n' "$img"
}
