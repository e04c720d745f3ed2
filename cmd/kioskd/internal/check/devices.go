package check

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kioskd/kioskd/cmd/kioskd/internal/config"
	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/scanner"
	"github.com/kioskd/kioskd/scanner/settings"
)

func scannerSubject(i int, s scanner.Config) string {
	return fmt.Sprintf("scanners[%d] (%s)", i, s.Name)
}

func displaySubject(i int, d display.Config) string {
	return fmt.Sprintf("displays[%d] (%s)", i, d.Name)
}

// drivers asks each scanner's driver for its opener, as the agent does at
// start-up: the values were checked when the file was read, but a driver
// this binary cannot run (hid built without cgo) fails here.
func drivers(r *Report, cfg *config.Config, opts Options) {
	for i, s := range cfg.Scanners {
		if _, err := scanner.NewOpener(s, opts.Logger); err != nil {
			r.fail(scannerSubject(i, s), "%v", err)
		}
	}
}

// openDevices opens every configured device once: a scanner through its
// driver, anything else by what its settings say it opens.
func openDevices(ctx context.Context, r *Report, cfg *config.Config, opts Options) {
	for i, s := range cfg.Scanners {
		openScanner(ctx, r, scannerSubject(i, s), s, opts)
	}
	for i, d := range cfg.Displays {
		subject := displaySubject(i, d)
		switch res := settings.ResourceOf(d.Settings); res.Kind {
		case settings.TTY:
			openTTY(r, subject, res.Path)
		case settings.Listen:
			listen(r, subject, res.Addr)
		}
	}
}

func openScanner(ctx context.Context, r *Report, subject string, s scanner.Config, opts Options) {
	op, err := scanner.NewOpener(s, opts.Logger)
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
