//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// udevScenario runs the project's udev rules (udev/*.rules, copied into the
// guest's /lib/udev/rules.d) under Debian's real systemd-udevd and checks
// what they promise for the gadget scanners: stable symlinks under
// /dev/kiosk/, mode 0660 and group kioskd on the nodes kioskd opens
// (hidraw, tty, and the /dev/bus/usb node libusb opens), autosuspend off,
// and the symlink back after an unplug and replug.
func udevScenario(ctx context.Context, e *env) (string, error) {
	rules, _ := filepath.Glob("/lib/udev/rules.d/*.rules")
	if len(rules) == 0 {
		return "", fmt.Errorf("no udev rules in the guest (udev/*.rules missing?)")
	}
	gid, err := groupID("kioskd")
	if err != nil {
		return "", err
	}
	pos, acm := usbDevFor(0x0c2e, 0x10d3), usbDevFor(0x0c2e, 0x0720)
	if pos == "" || acm == "" {
		return "", fmt.Errorf("gadget USB devices not found (pos %q, acm %q)", pos, acm)
	}
	// Start from what the kernel does by itself, so each check can fail.
	for _, d := range []string{pos, acm} {
		if err := os.WriteFile(filepath.Join(d, "power/control"), []byte("auto"), 0o644); err != nil {
			return "", err
		}
	}
	udevd := exec.Command("/lib/systemd/systemd-udevd")
	logf, err := os.Create("/tmp/udevd.log")
	if err != nil {
		return "", err
	}
	defer logf.Close()
	udevd.Stdout, udevd.Stderr = logf, logf
	if err := udevd.Start(); err != nil {
		return "", fmt.Errorf("systemd-udevd: %w", err)
	}
	defer func() {
		exec.Command("/bin/udevadm", "control", "--exit").Run()
		udevd.Wait()
	}()
	if _, err := waitFor(10*time.Second, func() string { return exists("/run/udev/control") }); err != nil {
		return "", fmt.Errorf("udevd control socket: %w\n%s", err, tail("/tmp/udevd.log", 10))
	}
	t0 := time.Now()
	for _, args := range [][]string{{"trigger", "--action=add"}, {"settle", "--timeout=30"}} {
		if out, err := exec.CommandContext(ctx, "/bin/udevadm", args...).CombinedOutput(); err != nil {
			return "", fmt.Errorf("udevadm %s: %w: %s", args[0], err, out)
		}
	}
	settle := time.Since(t0)

	var checks []string
	check := func(link string, wantTarget string) error {
		target, err := filepath.EvalSymlinks(link)
		if err != nil {
			return fmt.Errorf("%s: %w (have: %s)\n%s", link, err, listKiosk(), tail("/tmp/udevd.log", 10))
		}
		if wantTarget != "" && target != wantTarget {
			return fmt.Errorf("%s -> %s, want %s", link, target, wantTarget)
		}
		if err := nodeAccess(target, gid); err != nil {
			return err
		}
		checks = append(checks, strings.TrimPrefix(link, "/dev/")+"->"+filepath.Base(target))
		return nil
	}
	posLink := "/dev/kiosk/scanner-0c2e-10d3-hidraw00"
	if err := check(posLink, hidrawFor(0x0c2e, 0x10d3)); err != nil {
		return "", err
	}
	if err := check("/dev/kiosk/scanner-0c2e-0720", ttyOnPort("ttyACM", "")); err != nil {
		return "", err
	}
	for _, d := range []string{pos, acm} {
		if err := nodeAccess(usbNode(d), gid); err != nil {
			return "", fmt.Errorf("libusb node: %w", err)
		}
		pc, _ := os.ReadFile(filepath.Join(d, "power/control"))
		if strings.TrimSpace(string(pc)) != "on" {
			return "", fmt.Errorf("%s power/control = %q, want on (autosuspend off)", filepath.Base(d), strings.TrimSpace(string(pc)))
		}
	}
	// Unplug and replug the HID POS scanner: udev must remove and recreate
	// the stable name, with the same access.
	if err := e.hidPOS.unbind(); err != nil {
		return "", err
	}
	if _, err := waitFor(10*time.Second, func() string {
		if exists(posLink) == "" {
			return "gone"
		}
		return ""
	}); err != nil {
		return "", fmt.Errorf("%s left behind after unplug: %w", posLink, err)
	}
	tp := time.Now()
	if err := e.hidPOS.bind(); err != nil {
		return "", err
	}
	if _, err := waitFor(10*time.Second, func() string { return exists(posLink) }); err != nil {
		return "", fmt.Errorf("%s not back after replug: %w", posLink, err)
	}
	back := time.Since(tp)
	exec.Command("/bin/udevadm", "settle", "--timeout=10").Run()
	if err := check(posLink, hidrawFor(0x0c2e, 0x10d3)); err != nil {
		return "", fmt.Errorf("after replug: %w", err)
	}
	return fmt.Sprintf("%s; mode 0660 group kioskd on hidraw, tty and /dev/bus/usb nodes; power/control=on; trigger+settle %s; symlink back %s after replug",
		strings.Join(checks[:2], " "), settle.Round(time.Millisecond), back.Round(time.Millisecond)), nil
}

// nodeAccess checks a device node is mode 0660 and owned by group gid.
func nodeAccess(path string, gid uint32) error {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return err
	}
	if perm := st.Mode & 0o777; perm != 0o660 || st.Gid != gid {
		return fmt.Errorf("%s: mode %#o group %d, want 0660 group %d (kioskd)", path, perm, st.Gid, gid)
	}
	return nil
}

// usbNode returns /dev/bus/usb/BBB/DDD of a USB device's sysfs folder.
func usbNode(sysdir string) string {
	b, _ := os.ReadFile(filepath.Join(sysdir, "busnum"))
	d, _ := os.ReadFile(filepath.Join(sysdir, "devnum"))
	var bus, dev int
	fmt.Sscan(string(b), &bus)
	fmt.Sscan(string(d), &dev)
	return fmt.Sprintf("/dev/bus/usb/%03d/%03d", bus, dev)
}

func groupID(name string) (uint32, error) {
	b, err := os.ReadFile("/etc/group")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, ":")
		if len(f) >= 3 && f[0] == name {
			var id uint32
			_, err := fmt.Sscan(f[2], &id)
			return id, err
		}
	}
	return 0, fmt.Errorf("no group %q in /etc/group", name)
}

func listKiosk() string {
	var l []string
	filepath.Walk("/dev/kiosk", func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode()&os.ModeSymlink != 0 {
			l = append(l, p)
		}
		return nil
	})
	return strings.Join(l, " ")
}
