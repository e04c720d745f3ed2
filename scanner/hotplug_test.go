package scanner

import (
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// kernelMsg builds a datagram as the kernel sends it on group 1.
func kernelMsg(action, devpath string, props ...string) []byte {
	return []byte(action + "@" + devpath + "\x00" + strings.Join(props, "\x00") + "\x00")
}

// udevMsg builds a datagram as systemd-udevd re-broadcasts it on group 2:
// "libudev\0", struct udev_monitor_netlink_header, then the properties.
func udevMsg(props ...string) []byte {
	body := []byte(strings.Join(props, "\x00") + "\x00")
	h := make([]byte, 40)
	copy(h, "libudev\x00")
	binary.BigEndian.PutUint32(h[8:], udevMagic)
	binary.NativeEndian.PutUint32(h[12:], 40)                // header_size
	binary.NativeEndian.PutUint32(h[16:], 40)                // properties_off
	binary.NativeEndian.PutUint32(h[20:], uint32(len(body))) // properties_len
	// A tag bloom without a NUL runs into the first property: a parser
	// that ignores properties_off would miss ACTION.
	binary.NativeEndian.PutUint32(h[36:], 0x41435449)
	return append(h, body...)
}

func TestParseUevent(t *testing.T) {
	usbAdd := udevMsg("ACTION=add", "DEVPATH=/devices/pci0000:00/0000:00:04.0/usb1/1-1/1-1:1.0/tty/ttyACM0",
		"SUBSYSTEM=tty", "DEVNAME=/dev/ttyACM0", "DEVLINKS=/dev/serial/by-id/usb-Scanner /dev/scanner0", "SEQNUM=4242")
	for _, tc := range []struct {
		name  string
		msg   []byte
		want  uevent
		ok    bool
		wakes bool
	}{
		{"kernel tty add", kernelMsg("add", "/devices/virtual/tty/ptmx", "ACTION=add", "DEVPATH=/devices/virtual/tty/ptmx",
			"SUBSYSTEM=tty", "SYNTH_UUID=0", "MAJOR=5", "MINOR=2", "DEVNAME=ptmx", "SEQNUM=813"),
			uevent{"add", "tty", "/devices/virtual/tty/ptmx"}, true, true},
		{"kernel usb interface bind", kernelMsg("bind", "/devices/pci0000:00/usb1/1-1/1-1:1.0", "ACTION=bind",
			"SUBSYSTEM=usb", "DEVTYPE=usb_interface", "DRIVER=cdc_acm"),
			uevent{"bind", "usb", "/devices/pci0000:00/usb1/1-1/1-1:1.0"}, true, true},
		{"kernel hidraw remove", kernelMsg("remove", "/devices/x/hidraw/hidraw0", "ACTION=remove", "SUBSYSTEM=hidraw"),
			uevent{"remove", "hidraw", "/devices/x/hidraw/hidraw0"}, true, false},
		{"kernel block add", kernelMsg("add", "/devices/virtual/block/loop0", "ACTION=add", "SUBSYSTEM=block"),
			uevent{"add", "block", "/devices/virtual/block/loop0"}, true, false},
		{"udev tty add", usbAdd,
			uevent{"add", "tty", "/devices/pci0000:00/0000:00:04.0/usb1/1-1/1-1:1.0/tty/ttyACM0"}, true, true},
		{"udev input change", udevMsg("ACTION=change", "SUBSYSTEM=input", "DEVPATH=/devices/virtual/input/input3"),
			uevent{"change", "input", "/devices/virtual/input/input3"}, true, true},
		{"udev usbmisc unbind", udevMsg("ACTION=unbind", "SUBSYSTEM=usbmisc", "DEVPATH=/d"),
			uevent{"unbind", "usbmisc", "/d"}, true, false},
		{"udev bad magic", append([]byte("libudev\x00\x00\x00\x00\x00"), usbAdd[12:]...), uevent{}, false, false},
		{"udev properties past the end", usbAdd[:len(usbAdd)-10], uevent{}, false, false},
		{"udev header cut short", usbAdd[:20], uevent{}, false, false},
		{"not a uevent", []byte("hello\x00world\x00"), uevent{}, false, false},
		{"empty", nil, uevent{}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseUevent(tc.msg)
			if ok != tc.ok || got != tc.want {
				t.Errorf("parseUevent = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
			if w := got.wakes(); w != tc.wakes {
				t.Errorf("wakes = %v, want %v", w, tc.wakes)
			}
		})
	}
}

// TestHotplugListenerKernelEvent asks the kernel for a synthetic "add"
// uevent of an existing device and expects the listener to report it.
func TestHotplugListenerKernelEvent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: writes to a sysfs uevent file to make the kernel send an event")
	}
	const uevFile, devpath = "/sys/devices/virtual/tty/ptmx/uevent", "/devices/virtual/tty/ptmx"
	l, err := openHotplug()
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EPROTONOSUPPORT) {
		t.Skipf("no uevent socket in this sandbox: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan uevent, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			e, ok, err := l.next()
			if err != nil {
				return // closed at the end of the test
			}
			// Other devices may send events meanwhile.
			if ok && e.DevPath == devpath && e.Action == "add" {
				got <- e
				return
			}
		}
	}()
	defer func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
		<-done
	}()

	if err := os.WriteFile(uevFile, []byte("add"), 0); err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EROFS) {
			t.Skipf("cannot trigger a uevent here: %v", err)
		}
		t.Fatal(err)
	}
	select {
	case e := <-got:
		if !e.wakes() {
			t.Errorf("event %+v does not wake the Supervisor", e)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no uevent within 2 s of writing \"add\" to " + uevFile)
	}
}

// TestHotplugListenerCloseUnblocks: Close ends a blocked next, which is how
// Supervisor.Run stops its listener goroutine.
func TestHotplugListenerCloseUnblocks(t *testing.T) {
	l, err := openHotplug()
	if err != nil {
		t.Skipf("no uevent socket in this sandbox: %v", err)
	}
	errc := make(chan error, 1)
	go func() {
		for {
			if _, _, err := l.next(); err != nil {
				errc <- err
				return
			}
		}
	}()
	time.Sleep(20 * time.Millisecond) // let it block in the read
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("next after Close = %v, want os.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("next still blocked 2 s after Close")
	}
}
