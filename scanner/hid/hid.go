package hid

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	khid "github.com/karalabe/hid"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/kioskd/kioskd/scanner"
	"github.com/kioskd/kioskd/scanner/hidreport"
	"github.com/kioskd/kioskd/scanner/settings"
)

// ErrUnsupported means this binary was built without HID support (no cgo).
var ErrUnsupported = errors.New("scanner/hid: this kioskd was built without HID support; build it with CGO_ENABLED=1")

func init() { settings.Register(scanner.Drivers, "hid", Settings{hidreport.Defaults}) }

// Settings is a hid scanner's devices.yaml entry: the keys, defaults and
// rules of hidreport.Settings, read through hidraw.
type Settings struct{ hidreport.Settings }

// Opens is the hidraw node, for `kioskd udev-rules` and `kioskd check`.
func (s Settings) Opens() settings.Resource { return s.Settings.Opens(settings.HIDRaw) }

// Opener returns the scanner.Opener of a hid scanner called name. It fails
// with ErrUnsupported in a build without cgo.
func (s Settings) Opener(name string, log *zap.Logger) (scanner.Opener, error) {
	if !khid.Supported() {
		return nil, ErrUnsupported
	}
	set := s.Settings
	set.Name = name
	return func(ctx context.Context) (scanner.Scanner, error) { return Open(ctx, set, log) }, nil
}

var _ scanner.Settings = Settings{}

// device is what the driver needs of an open karalabe/hid device.
type device interface {
	ReadTimeout(b []byte, timeoutMillis int) (int, error)
	Close() error
}

// Scanner is an open HID scanner.
type Scanner struct {
	set  hidreport.Settings
	log  *zap.Logger
	path string // hidapi path, e.g. "1-2:1.0"

	mu     sync.Mutex // held across each read, so Close never frees a device being read
	dev    device
	closed bool
}

var _ scanner.Scanner = (*Scanner)(nil)

// Open finds the device set describes and opens it. Errors are
// *scanner.OpenError of kind ErrNotFound, ErrPermission or unclassified.
func Open(ctx context.Context, set hidreport.Settings, log *zap.Logger) (*Scanner, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !khid.Supported() {
		return nil, ErrUnsupported
	}
	if log == nil {
		log = zap.NewNop()
	}
	infos, err := khid.Enumerate(set.VID, set.PID)
	if err != nil {
		return nil, scanner.NewOpenError("hid", set.USB.String(), err)
	}
	info, err := pick(set, infos, "/sys", "/dev")
	if err != nil {
		return nil, &scanner.OpenError{Driver: "hid", Device: set.USB.String(), Kind: scanner.Classify(err), Err: err}
	}
	dev, err := info.Open()
	if err != nil {
		cause := explainOpen(info.Path, err, "/sys", "/dev")
		return nil, &scanner.OpenError{Driver: "hid", Device: set.USB.String(), Kind: scanner.Classify(cause), Err: cause}
	}
	log.Info("HID scanner open", zap.String("path", info.Path), zap.Int("interface", info.Interface),
		zap.String("product", info.Product), zap.Stringer("mode", set.Mode))
	return &Scanner{set: set, log: log, path: info.Path, dev: dev}, nil
}

// pick chooses the device to open among the VID/PID matches: the serial
// number and interface must match when set. Among several interfaces of a
// composite scanner, the one whose class fits the mode wins (a boot keyboard
// for keyboard mode, another interface for HID POS), read from sysfs since
// hidapi reports no usage page on Linux; ties go in path order, so the
// choice is stable. An empty list whose reason is that libusb could not read
// the serial numbers is reported as a permission problem, not as a missing
// device.
func pick(set hidreport.Settings, infos []khid.DeviceInfo, sysRoot, devRoot string) (khid.DeviceInfo, error) {
	sort.Slice(infos, func(i, j int) bool { return infos[i].Path < infos[j].Path })
	var unreadable []string
	var matches []khid.DeviceInfo
	for _, in := range infos {
		if set.Interface >= 0 && in.Interface != set.Interface {
			continue
		}
		if set.Serial != "" && in.Serial != set.Serial {
			if in.Serial == "" {
				unreadable = append(unreadable, in.Path)
			}
			continue
		}
		matches = append(matches, in)
	}
	for _, in := range matches {
		if boot, known := bootKeyboard(in.Path, sysRoot); known && boot == (set.Mode == hidreport.KeyboardMode) {
			return in, nil
		}
	}
	if len(matches) > 0 {
		return matches[0], nil
	}
	for _, p := range unreadable {
		if err := checkAccess(p, sysRoot, devRoot); errors.Is(err, scanner.ErrPermission) {
			return khid.DeviceInfo{}, fmt.Errorf("serial number unreadable: %w", err)
		}
	}
	if len(infos) > 0 {
		return khid.DeviceInfo{}, fmt.Errorf("%w: %d device(s) with this VID:PID, none with the serial number or interface asked for", scanner.ErrNotFound, len(infos))
	}
	return khid.DeviceInfo{}, fmt.Errorf("%w: no HID device with this VID:PID", scanner.ErrNotFound)
}

// bootKeyboard reads whether the USB interface behind a hidapi libusb path
// ("1-2:1.0", also its sysfs name) is a boot keyboard; known is false when
// sysfs does not say.
func bootKeyboard(path, sysRoot string) (boot, known bool) {
	dir := filepath.Join(sysRoot, "bus/usb/devices", path)
	sub, err1 := os.ReadFile(filepath.Join(dir, "bInterfaceSubClass"))
	proto, err2 := os.ReadFile(filepath.Join(dir, "bInterfaceProtocol"))
	if err1 != nil || err2 != nil || strings.ContainsRune(path, '/') {
		return false, false
	}
	return strings.TrimSpace(string(sub)) == "01" && strings.TrimSpace(string(proto)) == "01", true
}

// explainOpen turns hidapi's bare "failed to open device" into a reason: the
// usbfs node is not accessible (permission) or gone (not found); otherwise
// the interface is claimed by another process (busy), which is what a second
// open of the same scanner gave in a QEMU guest.
func explainOpen(path string, err error, sysRoot, devRoot string) error {
	if aerr := checkAccess(path, sysRoot, devRoot); aerr != nil {
		return fmt.Errorf("%v: %w", err, aerr)
	}
	return fmt.Errorf("%v: %w", err, scanner.ErrBusy)
}

// checkAccess finds the usbfs node of a hidapi libusb path ("1-2.3:1.0" =
// bus-ports:config.interface) through sysfs and checks read-write access.
func checkAccess(path, sysRoot, devRoot string) error {
	devName, _, ok := strings.Cut(path, ":")
	if !ok || !validPorts(devName) {
		return nil // not a libusb path: nothing to check
	}
	dir := filepath.Join(sysRoot, "bus/usb/devices", devName)
	bus, err1 := readInt(filepath.Join(dir, "busnum"))
	num, err2 := readInt(filepath.Join(dir, "devnum"))
	if err1 != nil || err2 != nil {
		return fmt.Errorf("%w: %s is gone from sysfs", scanner.ErrNotFound, devName)
	}
	node := filepath.Join(devRoot, fmt.Sprintf("bus/usb/%03d/%03d", bus, num))
	switch err := unix.Access(node, unix.R_OK|unix.W_OK); {
	case err == nil:
		return nil
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM), errors.Is(err, unix.EROFS):
		return fmt.Errorf("no read-write access to %s: %w", node, scanner.ErrPermission)
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("%w: %s does not exist", scanner.ErrNotFound, node)
	default:
		return fmt.Errorf("%s: %w", node, err)
	}
}

// validPorts accepts "1-2.3": bus, dash, dotted port numbers.
func validPorts(s string) bool {
	bus, ports, ok := strings.Cut(s, "-")
	if !ok || bus == "" || ports == "" {
		return false
	}
	for _, p := range append([]string{bus}, strings.Split(ports, ".")...) {
		if _, err := strconv.Atoi(p); err != nil {
			return false
		}
	}
	return true
}

func readInt(p string) (int, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// Read reads reports until ctx ends, the scanner is closed or the device
// fails (ErrDisconnected). hidapi's read cannot be interrupted, so it waits
// at most hidreport.MaxWait at a time and checks ctx in between.
func (s *Scanner) Read(ctx context.Context, h scanner.Handler) error {
	sess := hidreport.NewSession(s.set, s.log)
	buf := make([]byte, 256) // a report is at most 64 bytes (+ id); room for odd devices
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		wait := sess.Wait(time.Now())
		n, err := s.readTimeout(buf, wait)
		now := time.Now()
		switch {
		case errors.Is(err, scanner.ErrClosed):
			return err
		case err != nil:
			return fmt.Errorf("scanner/hid: read %s: %w: %w", s.set.USB.String(), scanner.ErrDisconnected, readError(err))
		case n == 0: // timeout or zero-length packet
			sess.Idle(now, h)
		default:
			sess.Report(buf[:n], now, h)
		}
	}
}

// errReadFailed replaces hidapi's libusb-backend message for a failed read,
// "hid_error is not implemented yet", which tells a field engineer nothing.
var errReadFailed = errors.New("hidapi: read failed (device unplugged or reset)")

func readError(err error) error {
	if strings.Contains(err.Error(), "not implemented") {
		return errReadFailed
	}
	return err
}

func (s *Scanner) readTimeout(buf []byte, wait time.Duration) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, fmt.Errorf("scanner/hid: %s: %w", s.set.USB.String(), scanner.ErrClosed)
	}
	return s.dev.ReadTimeout(buf, max(int(wait/time.Millisecond), 1))
}

// Close waits for a read in progress to return (at most MaxWait), then
// closes the device, which re-attaches usbhid. It is safe to call more than
// once and from another goroutine than Read's.
func (s *Scanner) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.dev.Close(); err != nil {
		return fmt.Errorf("scanner/hid: close %s: %w", s.set.USB.String(), err)
	}
	s.log.Info("HID scanner closed", zap.String("path", s.path))
	return nil
}
