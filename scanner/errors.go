package scanner

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
)

// Sentinel errors a caller can test with errors.Is. Drivers wrap them (usually
// in an *OpenError) so the message also names the device and the fix.
var (
	// ErrNotFound means the device is not there: unplugged, wrong path or
	// wrong VID/PID.
	ErrNotFound = errors.New("device not found")
	// ErrPermission means the service user may not open the device.
	ErrPermission = errors.New("permission denied")
	// ErrBusy means another process holds the device.
	ErrBusy = errors.New("device busy")
	// ErrClosed means the scanner was closed by us.
	ErrClosed = errors.New("scanner closed")
	// ErrDisconnected means an open device went away (unplugged, hung up):
	// the Supervisor reopens it.
	ErrDisconnected = errors.New("device disconnected")
	// ErrConfig means scanners were set up wrongly in code (an entry
	// without settings, a name used twice); devices.yaml's problems are
	// found when it is decoded.
	ErrConfig = errors.New("invalid scanner configuration")
)

// Fixes shown to the field engineer with each kind of open failure.
const (
	hintNotFound   = "check the cable and the path or VID:PID in devices.yaml; `kioskd devices` lists what is attached"
	hintPermission = "add the service user to the dialout group or install the udev rules"
	// hid and usb open /dev/bus/usb through libusb: only the udev rules help.
	hintPermissionUSB = "install the udev rules (`kioskd udev-rules`): libusb needs group access to /dev/bus/usb"
	hintBusy          = "another process holds the device (ModemManager, brltty, a second kioskd?)"
)

// OpenError reports a device that could not be opened. Kind is one of the
// sentinels (ErrNotFound, ErrPermission, ErrBusy) or nil when the cause is
// not classified; Err is the underlying cause. errors.Is works for both.
type OpenError struct {
	Driver string // "serial", "hid", "usb"
	Device string // port path or VID:PID
	Kind   error  // ErrNotFound, ErrPermission, ErrBusy or nil
	Err    error  // the cause, e.g. *fs.PathError with syscall.EACCES
}

// NewOpenError wraps err from opening device, classifying it by its errno.
// It returns nil when err is nil.
func NewOpenError(driver, device string, err error) error {
	if err == nil {
		return nil
	}
	return &OpenError{Driver: driver, Device: device, Kind: Classify(err), Err: err}
}

// Error names the device, the cause and the fix. A cause that is the
// open(2) of Device itself is not named twice.
func (e *OpenError) Error() string {
	cause := e.Err.Error()
	if pe, ok := e.Err.(*fs.PathError); ok && pe.Path == e.Device {
		cause = pe.Err.Error()
		if pe.Op != "open" {
			cause = pe.Op + ": " + cause
		}
	}
	msg := fmt.Sprintf("scanner/%s: open %s: %s", e.Driver, e.Device, cause)
	switch e.Kind {
	case ErrNotFound:
		msg += ": " + hintNotFound
	case ErrPermission:
		if e.Driver == "hid" || e.Driver == "usb" {
			msg += ": " + hintPermissionUSB
		} else {
			msg += ": " + hintPermission
		}
	case ErrBusy:
		msg += ": " + hintBusy
	}
	return msg
}

// Unwrap returns the kind and the cause, so errors.Is matches either.
func (e *OpenError) Unwrap() []error {
	if e.Kind == nil {
		return []error{e.Err}
	}
	return []error{e.Kind, e.Err}
}

// Classify maps an error from opening a device to ErrNotFound, ErrPermission
// or ErrBusy by its errno (ENOENT/ENODEV/ENXIO, EACCES/EPERM, EBUSY), and
// returns a sentinel unchanged. It returns nil for anything else.
func Classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound), errors.Is(err, syscall.ENOENT),
		errors.Is(err, syscall.ENODEV), errors.Is(err, syscall.ENXIO):
		return ErrNotFound
	case errors.Is(err, ErrPermission), errors.Is(err, syscall.EACCES),
		errors.Is(err, syscall.EPERM):
		return ErrPermission
	case errors.Is(err, ErrBusy), errors.Is(err, syscall.EBUSY):
		return ErrBusy
	}
	return nil
}
