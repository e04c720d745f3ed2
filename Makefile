# kioskd make targets. The whole suite (unit tests, then test-vm) is .ci/test; CI runs .ci/run.

.PHONY: test-vm

# test-vm boots a QEMU guest with the Debian kernel and proves the scanner and
# display drivers (and the agent) against the real Linux USB drivers. It
# installs what it needs on Debian 12 (as root), caches the kernel under
# $XDG_CACHE_HOME/kioskd-vm or /var/cache/kioskd-vm, prints one verdict line
# per scenario and a summary, and fails on any failed scenario.
# KIOSKD_VM_ONLY=raw-serial,kiosk-serial runs a subset (the devices check always
# runs); KIOSKD_VM_DEBUG=1 logs the drivers and kioskd at debug level.
test-vm:
	bash scanner/vmtest/run.sh
