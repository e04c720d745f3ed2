package serial_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// device is a fake serial scanner: the master side of a real pty, whose
// slave is reached through a symlink the way udev names a scanner.
type device struct {
	master *os.File
	slave  *os.File // kept open by the test so the pty lives until unplug
	links  []string // symlinks made by link, removed again by unplug
}

func newDevice(t testing.TB) *device {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		t.Fatalf("pty: %v", err)
	}
	// Raw from the start: bytes written before the driver applies its own
	// termios must not be cooked (ICRNL would turn CR into LF).
	tio, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	if err := unix.IoctlSetTermios(int(s.Fd()), unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	d := &device{master: m, slave: s}
	t.Cleanup(d.unplug)
	return d
}

// link points path at the device, atomically, as udev re-points a symlink.
func (d *device) link(t testing.TB, path string) {
	t.Helper()
	tmp := path + ".new"
	os.Remove(tmp)
	if err := os.Symlink(d.slave.Name(), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	d.links = append(d.links, path)
}

func (d *device) write(t testing.TB, s string) {
	t.Helper()
	if _, err := d.master.Write([]byte(s)); err != nil {
		t.Fatalf("write to pty: %v", err)
	}
}

// unplug removes the device's links, as udev does, and closes both sides:
// the driver's reads fail with EIO and the /dev/pts node goes away once the
// driver closes its descriptors. The links go first because a link left
// pointing at a freed /dev/pts/N would, once another process (a test running
// in parallel) is given pty N, make the reopening driver read that pty and
// steal its bytes: root ignores the driver's TIOCEXCL.
func (d *device) unplug() {
	for _, l := range d.links {
		if target, err := os.Readlink(l); err == nil && target == d.slave.Name() {
			os.Remove(l)
		}
	}
	d.master.Close()
	d.slave.Close()
}

func linkPath(t testing.TB) string { return filepath.Join(t.TempDir(), "scanner0") }

// plugged returns a new device and the stable path that leads to it.
func plugged(t testing.TB) (*device, string) {
	t.Helper()
	dev, path := newDevice(t), linkPath(t)
	dev.link(t, path)
	return dev, path
}
