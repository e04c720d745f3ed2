package scanner_test

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"testing"

	"github.com/kioskd/kioskd/scanner"
)

func TestOpenErrorClassifies(t *testing.T) {
	cases := []struct {
		errno syscall.Errno
		kind  error
		hint  string
	}{
		{syscall.ENOENT, scanner.ErrNotFound, "kioskd devices"},
		{syscall.ENODEV, scanner.ErrNotFound, "kioskd devices"},
		{syscall.ENXIO, scanner.ErrNotFound, "kioskd devices"},
		{syscall.EACCES, scanner.ErrPermission, "dialout group or install the udev rules"},
		{syscall.EPERM, scanner.ErrPermission, "dialout group"},
		{syscall.EBUSY, scanner.ErrBusy, "ModemManager"},
	}
	for _, c := range cases {
		cause := &fs.PathError{Op: "open", Path: "/dev/ttyACM0", Err: c.errno}
		err := fmt.Errorf("wrapped: %w", scanner.NewOpenError("serial", "/dev/ttyACM0", cause))
		if !errors.Is(err, c.kind) {
			t.Errorf("%v: errors.Is(%v) = false", c.errno, c.kind)
		}
		if !errors.Is(err, c.errno) {
			t.Errorf("%v: cause lost", c.errno)
		}
		var oe *scanner.OpenError
		if !errors.As(err, &oe) || oe.Driver != "serial" || oe.Device != "/dev/ttyACM0" {
			t.Errorf("%v: errors.As OpenError: %+v", c.errno, oe)
		}
		if !strings.Contains(err.Error(), c.hint) || !strings.Contains(err.Error(), "/dev/ttyACM0") {
			t.Errorf("%v: message %q lacks device or hint %q", c.errno, err, c.hint)
		}
		// Each layer adds what it knows: the path is not repeated.
		if want := "wrapped: scanner/serial: open /dev/ttyACM0: " + c.errno.Error() + ": "; strings.Count(err.Error(), "/dev/ttyACM0") != 1 || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%v: message %q, want it to start %q and name the path once", c.errno, err, want)
		}
		for _, other := range []error{scanner.ErrNotFound, scanner.ErrPermission, scanner.ErrBusy} {
			if other != c.kind && errors.Is(err, other) {
				t.Errorf("%v: also matches %v", c.errno, other)
			}
		}
	}
	// libusb devices are not helped by the dialout group: only udev rules.
	usbErr := scanner.NewOpenError("usb", "0c2e:10d3", syscall.EACCES)
	if msg := usbErr.Error(); strings.Contains(msg, "dialout") || !strings.Contains(msg, "/dev/bus/usb") {
		t.Errorf("usb permission message %q: want the udev rules for /dev/bus/usb, not dialout", msg)
	}
	err := scanner.NewOpenError("serial", "x", syscall.EIO)
	if scanner.Classify(err) != nil || errors.Is(err, scanner.ErrNotFound) || !errors.Is(err, syscall.EIO) {
		t.Errorf("EIO classified: %v", err)
	}
	if scanner.NewOpenError("serial", "x", nil) != nil {
		t.Error("NewOpenError(nil) != nil")
	}
}
