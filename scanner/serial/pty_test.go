package serial_test

import (
	"path/filepath"
	"testing"

	"github.com/kioskd/kioskd/scanner/serial/serialtest"
)

// device is a fake serial scanner: a real pty whose slave is reached
// through a symlink, the way udev names a scanner.
type device struct{ *serialtest.Pty }

func newDevice(t testing.TB) *device { return &device{serialtest.New(t, "")} }

// link points path at the device, atomically, as udev re-points a symlink.
func (d *device) link(t testing.TB, path string) {
	t.Helper()
	if err := d.Link(path); err != nil {
		t.Fatal(err)
	}
}

func (d *device) write(t testing.TB, s string) {
	t.Helper()
	if _, err := d.Master.Write([]byte(s)); err != nil {
		t.Fatalf("write to pty: %v", err)
	}
}

// unplug removes the device's links and closes both ends: the driver's
// reads fail with EIO (serialtest.Pty.Close).
func (d *device) unplug() { d.Close() }

func linkPath(t testing.TB) string { return filepath.Join(t.TempDir(), "scanner0") }

// plugged returns a new device and the stable path that leads to it.
func plugged(t testing.TB) (*device, string) {
	t.Helper()
	path := linkPath(t)
	return &device{serialtest.New(t, path)}, path
}
