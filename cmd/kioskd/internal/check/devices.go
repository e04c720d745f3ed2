package check

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/kioskd/kioskd/cmd/kioskd/internal/config"
	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/scanner"
	"github.com/kioskd/kioskd/scanner/devices"
)

func scannerSubject(i int, s config.Scanner) string {
	return fmt.Sprintf("scanners[%d] (%s)", i, s.Name)
}

func displaySubject(i int, d config.Display) string {
	return fmt.Sprintf("displays[%d] (%s)", i, d.Name)
}

// at names a devices.yaml field by line, like config problems do.
func at(cfg *config.Config, line int, field string) string {
	if line > 0 {
		return fmt.Sprintf("%s:%d: %s", cfg.File, line, field)
	}
	return field
}

// ValidateDrivers lets each scanner and display driver linked into this
// binary validate its devices.yaml entries, without opening anything, and
// names the line of each rejected value. `kioskd run` calls it after
// config.Load so a value only a driver understands still fails with a line
// number, before any device is touched. A driver that is not linked is a
// Failure too.
func ValidateDrivers(cfg *config.Config, log *zap.Logger) []Problem {
	if log == nil {
		log = zap.NewNop()
	}
	r := &Report{}
	drivers(r, cfg, Options{Logger: log})
	return r.Problems
}

// drivers lets each driver built into this binary validate its entries, as
// the agent will at start-up; the config package only knows the schema.
func drivers(r *Report, cfg *config.Config, opts Options) {
	for i, s := range cfg.Scanners {
		d, ok := scanner.Lookup(s.Driver)
		if !ok {
			r.fail(scannerSubject(i, s), "driver %s is not built into this kioskd (built in: %s)",
				s.Driver, builtIn(scanner.Drivers()))
			continue
		}
		if _, err := d(s.Config, opts.Logger); err != nil {
			var ce *scanner.ConfigError
			if errors.As(err, &ce) {
				r.fail(at(cfg, s.Line, fmt.Sprintf("scanners[%d].%s", i, ce.Field)), "%s", ce.Reason)
			} else {
				r.fail(scannerSubject(i, s), "%v", err)
			}
		}
	}
	for i, d := range cfg.Displays {
		err := display.Validate(d.Config)
		var ce *display.ConfigError
		switch {
		case err == nil:
		case errors.Is(err, display.ErrUnknownDriver):
			r.fail(displaySubject(i, d), "driver %s is not built into this kioskd (built in: %s)",
				d.Driver, builtIn(display.Drivers()))
		case errors.As(err, &ce):
			r.fail(at(cfg, d.Line, fmt.Sprintf("displays[%d].%s", i, ce.Field)), "%s", ce.Reason)
		default:
			r.fail(displaySubject(i, d), "%v", err)
		}
	}
}

func builtIn(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// openDevices opens every configured device once.
func openDevices(ctx context.Context, r *Report, cfg *config.Config, opts Options) {
	var usb []devices.Device
	var usbErr error
	listed := false
	for i, s := range cfg.Scanners {
		subject := scannerSubject(i, s)
		if _, ok := scanner.Lookup(s.Driver); ok {
			openScanner(ctx, r, subject, s, opts)
			continue
		}
		// The driver is missing (already reported): check what can be
		// checked without it.
		switch s.Driver {
		case "serial":
			openTTY(r, subject, s.Port)
		case "hid", "usb":
			if !listed {
				usb, usbErr = devices.List(opts.SysfsRoot)
				listed = true
			}
			findUSB(r, subject, s, usb, usbErr)
		}
	}
	for i, d := range cfg.Displays {
		subject := displaySubject(i, d)
		switch d.Driver {
		case config.DisplayVFD:
			openTTY(r, subject, d.Port)
		case config.DisplayWeb:
			listen(r, subject, d.Listen)
		}
	}
}

func openScanner(ctx context.Context, r *Report, subject string, s config.Scanner, opts Options) {
	op, err := scanner.NewOpener(s.Config, opts.Logger)
	if err != nil {
		return // reported by drivers
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	sc, err := op(ctx)
	if err != nil {
		r.fail(subject, "%v", err)
		return
	}
	if err := sc.Close(); err != nil {
		r.fail(subject, "opened, but closing failed: %v", err)
		return
	}
	r.pass(subject, "opened and closed with driver %s", s.Driver)
}

// openTTY opens a serial device the way a driver would (no controlling tty,
// no blocking on carrier) and checks that it is a terminal.
func openTTY(r *Report, subject, path string) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		r.fail(subject, "%s: %s", path, openAdvice(err))
		return
	}
	defer unix.Close(fd)
	if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err != nil {
		r.fail(subject, "%s is not a serial port (%v)", path, err)
		return
	}
	target := path
	if t, err := filepath.EvalSymlinks(path); err == nil && t != path {
		target = path + " -> " + t
	}
	r.pass(subject, "%s opens", target)
}

// openAdvice turns an open error into what the engineer should do.
func openAdvice(err error) string {
	switch scanner.Classify(err) {
	case scanner.ErrNotFound:
		return fmt.Sprintf("%v: not there; check the cable, the path in devices.yaml and the udev rules (`kioskd devices` lists what is attached)", err)
	case scanner.ErrPermission:
		return fmt.Sprintf("%v: the service user may not open it; install the udev rules (group kioskd)", err)
	case scanner.ErrBusy:
		return fmt.Sprintf("%v: another process holds it (a running kioskd, ModemManager, brltty?)", err)
	}
	return err.Error()
}

// findUSB looks a hid or usb scanner up by VID/PID (and serial) in sysfs
// and checks that its libusb node can be opened.
func findUSB(r *Report, subject string, s config.Scanner, list []devices.Device, listErr error) {
	id := fmt.Sprintf("%04x:%04x", s.VID, s.PID)
	if listErr != nil {
		r.fail(subject, "cannot list USB devices: %v", listErr)
		return
	}
	var found *devices.Device
	for i := range list {
		d := &list[i]
		if d.Kind == devices.KindUSB && d.VID == s.VID && d.PID == s.PID && (s.Serial == "" || d.Serial == s.Serial) {
			found = d
			break
		}
	}
	if found == nil {
		what := "USB device " + id
		if s.Serial != "" {
			what += fmt.Sprintf(" with serial %q", s.Serial)
		}
		r.fail(subject, "no %s attached; check the cable and the ids (`kioskd devices` lists what is attached)", what)
		return
	}
	fd, err := unix.Open(found.Path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		r.fail(subject, "%s at %s: %s", id, found.Path, openAdvice(err))
		return
	}
	unix.Close(fd)
	r.pass(subject, "%s found at %s and its node opens", id, found.Path)
}

// listen checks that the web display can bind its address.
func listen(r *Report, subject, addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			r.warn(subject, "%s is in use (a running kioskd holds it, or another program)", addr)
			return
		}
		r.fail(subject, "cannot listen on %s: %v", addr, err)
		return
	}
	ln.Close()
	r.pass(subject, "can listen on %s", addr)
}

// files checks the API token and the journal's directory.
func files(r *Report, cfg *config.Config) {
	if cfg.API.Listen != "" {
		fi, err := os.Stat(cfg.API.TokenFile)
		switch {
		case err != nil:
			r.fail("api.token_file", "cannot read %s: %v", cfg.API.TokenFile, errors.Unwrap(err))
		case fi.Mode().Perm()&0o007 != 0:
			r.fail("api.token_file", "mode %04o lets everyone read the API token; run chmod 640 %s", fi.Mode().Perm(), cfg.API.TokenFile)
		case fi.Size() == 0:
			r.fail("api.token_file", "%s is empty", cfg.API.TokenFile)
		default:
			r.pass("api.token_file", "present")
		}
	}
	dir := filepath.Dir(cfg.Journal)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		r.warn("journal", "directory %s does not exist yet (systemd creates /var/lib/kioskd through StateDirectory=)", dir)
	}
}
