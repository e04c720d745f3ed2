//go:build cgo

package usb

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/gousb"
	"go.uber.org/zap"

	"github.com/kioskd/kioskd/scanner"
	"github.com/kioskd/kioskd/scanner/hidreport"
)

// Fix shown when libusb may not open the device.
const permissionFix = "install the udev rules: /dev/bus/usb needs group access for the service user"

func init() { scanner.Register("usb", New) }

// New is the "usb" scanner.Driver: it validates cfg and returns an Opener.
func New(cfg scanner.Config, log *zap.Logger) (scanner.Opener, error) {
	set, err := hidreport.ParseConfig(cfg)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	return func(ctx context.Context) (scanner.Scanner, error) {
		return Open(ctx, set, log)
	}, nil
}

// reader is what the read loop needs of an IN endpoint.
type reader interface {
	ReadContext(ctx context.Context, buf []byte) (int, error)
}

// Scanner is an open USB scanner with its interface claimed.
type Scanner struct {
	set     hidreport.Settings
	log     *zap.Logger
	ep      reader
	pktSize int
	// closers release, in order: the interface (re-attaching usbhid), the
	// configuration, the device, the libusb context.
	closers []func() error

	mu         sync.Mutex
	closed     bool
	cancelRead context.CancelFunc
	reading    sync.WaitGroup // a Read in progress
}

var _ scanner.Scanner = (*Scanner)(nil)

// newContext starts libusb; gousb panics when it cannot.
func newContext() (c *gousb.Context, err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = fmt.Errorf("libusb cannot start (is /dev/bus/usb there?): %w", e)
			} else {
				err = fmt.Errorf("libusb cannot start (is /dev/bus/usb there?): %v", r)
			}
		}
	}()
	return gousb.NewContext(), nil
}

// Open finds, opens and claims the device set describes. Errors are
// *scanner.OpenError of kind ErrNotFound, ErrPermission, ErrBusy or
// unclassified. Everything opened so far is closed again on failure.
func Open(ctx context.Context, set hidreport.Settings, log *zap.Logger) (_ *Scanner, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	fail := func(err error) error {
		kind := classify(err)
		if kind == scanner.ErrPermission {
			err = fmt.Errorf("%w: %s", err, permissionFix)
		}
		return &scanner.OpenError{Driver: "usb", Device: set.Device(), Kind: kind, Err: err}
	}
	var closers []func() error
	defer func() {
		if err != nil {
			runClosers(closers)
		}
	}()

	uctx, err := newContext()
	if err != nil {
		return nil, fail(err)
	}
	closers = append(closers, uctx.Close)

	dev, err := pickDevice(uctx, set)
	if err != nil {
		return nil, fail(err)
	}
	closers = append([]func() error{dev.Close}, closers...)

	cfgNum, err := dev.ActiveConfigNum()
	if err != nil {
		return nil, fail(fmt.Errorf("active configuration: %w", err))
	}
	// Config before SetAutoDetach: with auto-detach on, gousb's Config
	// detaches the kernel driver of every interface and nothing re-attaches
	// the ones not claimed. Set afterwards, libusb detaches only the claimed
	// interface and re-attaches it when released.
	cfg, err := dev.Config(cfgNum)
	if err != nil {
		return nil, fail(fmt.Errorf("configuration %d: %w", cfgNum, err))
	}
	closers = append([]func() error{cfg.Close}, closers...)
	if err := dev.SetAutoDetach(true); err != nil {
		return nil, fail(fmt.Errorf("kernel driver auto-detach: %w", err))
	}
	num, epDesc, err := chooseInterface(cfg.Desc, set)
	if err != nil {
		return nil, fail(err)
	}
	intf, err := cfg.Interface(num, 0)
	if err != nil {
		return nil, fail(fmt.Errorf("claim: %w", err))
	}
	closers = append([]func() error{func() error { intf.Close(); return nil }}, closers...)
	ep, err := intf.InEndpoint(epDesc.Number)
	if err != nil {
		return nil, fail(fmt.Errorf("endpoint 0x%02x: %w", uint8(epDesc.Address), err))
	}
	log.Info("USB scanner open", zap.Int("bus", dev.Desc.Bus), zap.Int("address", dev.Desc.Address),
		zap.Int("interface", num), zap.Int("endpoint", epDesc.Number), zap.Bool("keyboard_mode", set.Keyboard))
	return &Scanner{set: set, log: log, ep: ep, pktSize: max(epDesc.MaxPacketSize, 64), closers: closers}, nil
}

// pickDevice opens the devices with the VID:PID, keeps the first (in bus
// order) whose serial number matches and closes the rest.
func pickDevice(uctx *gousb.Context, set hidreport.Settings) (*gousb.Device, error) {
	devs, openErr := uctx.OpenDevices(func(d *gousb.DeviceDesc) bool {
		return uint16(d.Vendor) == set.VID && uint16(d.Product) == set.PID
	})
	sort.Slice(devs, func(i, j int) bool {
		a, b := devs[i].Desc, devs[j].Desc
		return a.Bus < b.Bus || a.Bus == b.Bus && a.Address < b.Address
	})
	var chosen *gousb.Device
	for _, d := range devs {
		if chosen == nil && set.Serial != "" {
			sn, err := d.SerialNumber()
			if err != nil || sn != set.Serial {
				d.Close()
				continue
			}
		}
		if chosen == nil {
			chosen = d
			continue
		}
		d.Close()
	}
	switch {
	case chosen != nil:
		return chosen, nil
	case openErr != nil && len(devs) == 0:
		return nil, fmt.Errorf("open: %w", openErr)
	case len(devs) > 0:
		return nil, fmt.Errorf("%w: %d device(s) with this VID:PID, none with serial number %q", scanner.ErrNotFound, len(devs), set.Serial)
	}
	return nil, fmt.Errorf("%w: no USB device with this VID:PID", scanner.ErrNotFound)
}

// chooseInterface picks the interface to claim and its interrupt IN
// endpoint: the configured number, or else the first HID interface that
// fits the mode (boot keyboard for keyboard mode, another HID interface
// first for HID POS).
func chooseInterface(cd gousb.ConfigDesc, set hidreport.Settings) (int, gousb.EndpointDesc, error) {
	type cand struct {
		num   int
		ep    gousb.EndpointDesc
		score int
	}
	var cands []cand
	for _, in := range cd.Interfaces {
		if len(in.AltSettings) == 0 {
			continue
		}
		alt := in.AltSettings[0]
		ep, ok := interruptIn(alt)
		if set.Interface >= 0 {
			if in.Number != set.Interface {
				continue
			}
			if !ok {
				return 0, ep, fmt.Errorf("interface %d has no interrupt IN endpoint", in.Number)
			}
			return in.Number, ep, nil
		}
		if !ok || alt.Class != gousb.ClassHID {
			continue
		}
		boot := alt.SubClass == 1 && alt.Protocol == 1
		score := 1
		if boot == set.Keyboard {
			score = 2
		}
		cands = append(cands, cand{in.Number, ep, score})
	}
	if set.Interface >= 0 {
		return 0, gousb.EndpointDesc{}, fmt.Errorf("%w: no interface %d in configuration %d", scanner.ErrNotFound, set.Interface, cd.Number)
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].score > cands[j].score })
	if len(cands) == 0 {
		return 0, gousb.EndpointDesc{}, fmt.Errorf("%w: no HID interface with an interrupt IN endpoint (set interface: in devices.yaml)", scanner.ErrNotFound)
	}
	return cands[0].num, cands[0].ep, nil
}

func interruptIn(alt gousb.InterfaceSetting) (gousb.EndpointDesc, bool) {
	addrs := make([]int, 0, len(alt.Endpoints))
	for a := range alt.Endpoints {
		addrs = append(addrs, int(a))
	}
	sort.Ints(addrs)
	for _, a := range addrs {
		ep := alt.Endpoints[gousb.EndpointAddress(a)]
		if ep.Direction == gousb.EndpointDirectionIn && ep.TransferType == gousb.TransferTypeInterrupt {
			return ep, true
		}
	}
	return gousb.EndpointDesc{}, false
}

// classify maps libusb errors to the scanner kinds. gousb formats some
// errors with %v, so the libusb message is matched as well.
func classify(err error) error {
	if k := scanner.Classify(err); k != nil {
		return k
	}
	has := func(e gousb.Error) bool {
		return errors.Is(err, e) || strings.Contains(err.Error(), e.Error())
	}
	switch {
	case has(gousb.ErrorAccess):
		return scanner.ErrPermission
	case has(gousb.ErrorBusy):
		return scanner.ErrBusy
	case has(gousb.ErrorNoDevice), has(gousb.ErrorNotFound):
		return scanner.ErrNotFound
	}
	return nil
}

// Read reads reports until ctx ends, the scanner is closed or the device
// fails (ErrDisconnected). With no frame in progress it blocks in the
// transfer without waking up; during a frame it wakes at the frame's
// deadline (keyboard gap, stale HID POS frame).
func (s *Scanner) Read(ctx context.Context, h scanner.Handler) error {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("scanner/usb: %s: %w", s.set.Device(), scanner.ErrClosed)
	}
	s.cancelRead = cancel
	s.reading.Add(1)
	s.mu.Unlock()
	defer s.reading.Done()

	sess := hidreport.NewSession(s.set, s.log)
	buf := make([]byte, s.pktSize)
	for {
		tctx, tcancel := rctx, context.CancelFunc(func() {})
		if sess.Busy() {
			tctx, tcancel = context.WithTimeout(rctx, sess.Wait(time.Now()))
		}
		n, err := s.ep.ReadContext(tctx, buf)
		timedOut := tctx.Err() != nil && rctx.Err() == nil
		tcancel()
		now := time.Now()
		// A transfer cancelled (by the deadline, or by Close) just after the
		// device delivered its report comes back with the data and
		// TransferCancelled: the device will not send that report again, so
		// dropping it would lose a key or a part of a code.
		cancelled := errors.Is(err, gousb.TransferCancelled)
		if n > 0 && (err == nil || cancelled) {
			sess.Report(buf[:n], now, h)
		}
		switch {
		case s.isClosed():
			return fmt.Errorf("scanner/usb: %s: %w", s.set.Device(), scanner.ErrClosed)
		case ctx.Err() != nil:
			return ctx.Err()
		case err == nil && n == 0 && !timedOut: // zero-length packet after a full report
		case err == nil || cancelled && timedOut:
			if n == 0 {
				sess.Idle(now, h)
			}
		default:
			return fmt.Errorf("scanner/usb: read %s: %w: %w", s.set.Device(), scanner.ErrDisconnected, err)
		}
	}
}

func (s *Scanner) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops a Read in progress (cancelling its transfer), waits for it to
// return, then releases the interface (usbhid is bound again), the
// configuration, the device and the libusb context, in that order. It is
// safe to call more than once and from any goroutine.
func (s *Scanner) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if s.cancelRead != nil {
		s.cancelRead()
	}
	s.mu.Unlock()
	s.reading.Wait()
	if err := runClosers(s.closers); err != nil {
		return fmt.Errorf("scanner/usb: close %s: %w", s.set.Device(), err)
	}
	s.log.Info("USB scanner closed")
	return nil
}

// runClosers runs every closer in order and joins their errors.
func runClosers(closers []func() error) error {
	var errs []error
	for _, c := range closers {
		if err := c(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
