package scanner

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Netlink multicast groups of NETLINK_KOBJECT_UEVENT: the kernel's own
// events, and udev's re-broadcast once its rules ran (symlinks and
// permissions are in place only then).
const (
	ueventGroupKernel = 1
	ueventGroupUdev   = 2
)

// hotplugSubsystems are the subsystems whose devices can be a scanner's
// node, or the USB device and interfaces behind it.
var hotplugSubsystems = map[string]bool{
	"tty": true, "hidraw": true, "usb": true, "usbmisc": true, "input": true,
}

// uevent is the part of a hotplug message the Supervisor looks at.
type uevent struct {
	Action    string // add, remove, bind, change, ...
	Subsystem string
	DevPath   string // under /sys, e.g. /devices/virtual/tty/ptmx
}

// wakes reports whether e may mean that a missing scanner is back: a
// device appeared or got its driver (add, bind), or udev re-applied its
// rules (change, e.g. `udevadm trigger` after a permission fix).
func (e uevent) wakes() bool {
	switch e.Action {
	case "add", "bind", "change":
		return hotplugSubsystems[e.Subsystem]
	}
	return false
}

// udevMagic marks libudev's header; it is the only field in big endian.
const udevMagic = 0xfeedcafe

// parseUevent decodes one datagram of a uevent socket, in the kernel's
// format ("ACTION@DEVPATH\0KEY=VAL\0...") or udev's ("libudev\0", a binary
// header, then NUL-separated KEY=VAL properties). ok is false for anything
// else; callers skip it.
func parseUevent(b []byte) (e uevent, ok bool) {
	var props []byte
	if rest, isUdev := bytes.CutPrefix(b, []byte("libudev\x00")); isUdev {
		// struct udev_monitor_netlink_header: magic, header_size,
		// properties_off, properties_len, then filter hashes; all but
		// magic in host byte order.
		if len(rest) < 16 || binary.BigEndian.Uint32(rest[0:]) != udevMagic {
			return uevent{}, false
		}
		off := uint64(binary.NativeEndian.Uint32(rest[8:]))
		n := uint64(binary.NativeEndian.Uint32(rest[12:]))
		if off < 8+16 || off+n > uint64(len(b)) {
			return uevent{}, false
		}
		props = b[off : off+n]
	} else {
		head, rest, _ := bytes.Cut(b, []byte{0})
		action, path, found := bytes.Cut(head, []byte{'@'})
		if !found || len(action) == 0 {
			return uevent{}, false
		}
		e.Action, e.DevPath = string(action), string(path)
		props = rest
	}
	for f := range bytes.SplitSeq(props, []byte{0}) {
		k, v, found := bytes.Cut(f, []byte{'='})
		if !found {
			continue
		}
		switch string(k) {
		case "ACTION":
			e.Action = string(v)
		case "SUBSYSTEM":
			e.Subsystem = string(v)
		case "DEVPATH":
			e.DevPath = string(v)
		}
	}
	return e, e.Action != ""
}

// hotplugListener receives uevents from the kernel and from udev.
type hotplugListener struct {
	f   *os.File
	buf []byte
}

// openHotplug opens a uevent socket. It fails without privileges the
// sandbox withholds (or in a network namespace that gets no uevents,
// silently: then the backoff alone finds replugged scanners).
func openHotplug() (*hotplugListener, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, fmt.Errorf("hotplug: uevent socket: %w", err)
	}
	// A burst of events at boot or on a hub replug can overflow the
	// default buffer; best effort, capped by net.core.rmem_max.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: ueventGroupKernel | ueventGroupUdev}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("hotplug: bind uevent socket: %w", err)
	}
	// os.NewFile sees O_NONBLOCK and uses the netpoller, so a blocked
	// next returns when Close is called.
	return &hotplugListener{f: os.NewFile(uintptr(fd), "uevent"), buf: make([]byte, 64<<10)}, nil
}

// next blocks until a message arrives and returns it parsed; ok is false
// for a message that is not a uevent. After Close it fails with
// os.ErrClosed; with unix.ENOBUFS when the socket's buffer overflowed and
// events were lost.
func (l *hotplugListener) next() (e uevent, ok bool, err error) {
	n, err := l.f.Read(l.buf)
	if err != nil {
		return uevent{}, false, fmt.Errorf("hotplug: read: %w", err)
	}
	e, ok = parseUevent(l.buf[:n])
	return e, ok, nil
}

// Close ends the listener and unblocks next.
func (l *hotplugListener) Close() error {
	if err := l.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("hotplug: close: %w", err)
	}
	return nil
}
