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

// Opener returns the scanner.Opener of a usb scanner called name.
func (s Settings) Opener(name string, log *zap.Logger) (scanner.Opener, error) {
	set := s.Settings
	set.Name = name
	return func(ctx context.Context) (scanner.Scanner, error) { return Open(ctx, set, log) }, nil
}

// reader is what the read loop needs of an IN endpoint's transfers. A
// cancelled context ends it: the transfer in flight (and, for a stream, all
// submitted ones) is cancelled and waited for.
type reader interface {
	ReadContext(ctx context.Context, buf []byte) (int, error)
}

// streamDepth is how many transfers stay submitted: the device is polled
// again while the previous report is still on its way to Go (hidapi does
// the same by resubmitting in its C callback). With one transfer, a slow
// guest polled a QEMU keyboard too rarely.
const streamDepth = 8

// Scanner is an open USB scanner with its interface claimed.
type Scanner struct {
	set hidreport.Settings
	log *zap.Logger
	// newReader starts the transfers of one Read.
	newReader func() (reader, error)
	pktSize   int
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
		return &scanner.OpenError{Driver: "usb", Device: set.USB.String(), Kind: classify(err), Err: err}
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
		zap.Int("interface", num), zap.Int("endpoint", epDesc.Number), zap.Stringer("mode", set.Mode))
	// One report per transfer: like hidapi, ask for the endpoint's packet
	// size, so a full-size report (a boot keyboard's 8 bytes) completes the
	// transfer instead of waiting for more packets.
	size := max(epDesc.MaxPacketSize, 8)
	newReader := func() (reader, error) { return ep.NewStream(size, streamDepth) }
	return &Scanner{set: set, log: log, newReader: newReader, pktSize: size, closers: closers}, nil
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
		if boot == (set.Mode == hidreport.KeyboardMode) {
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

// packet is one finished transfer, stamped when it completed.
type packet struct {
	data []byte
	at   time.Time
	err  error
}

// Read reads reports until ctx ends, the scanner is closed or the device
// fails (ErrDisconnected). One goroutine, owned by Read and ended with it,
// keeps a transfer submitted at all times and stamps each report as it
// arrives; Read itself waits for reports and, during a frame, for the
// frame's deadline (keyboard gap, stale HID POS frame). Transfers are never
// cancelled for timing: in a QEMU guest, cancelling and resubmitting a
// transfer at every gap deadline delayed keys past the gap and split codes.
func (s *Scanner) Read(ctx context.Context, h scanner.Handler) error {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("scanner/usb: %s: %w", s.set.USB.String(), scanner.ErrClosed)
	}
	s.cancelRead = cancel
	s.reading.Add(1)
	s.mu.Unlock()
	defer s.reading.Done()

	rd, err := s.newReader()
	if err != nil {
		return fmt.Errorf("scanner/usb: read %s: %w: start transfers: %w", s.set.USB.String(), scanner.ErrDisconnected, err)
	}
	packets := make(chan packet, 16)
	go s.transfers(rctx, rd, packets) // owner: Read; ends with rctx or a failed transfer
	defer func() {
		cancel()
		for range packets { // wait for the goroutine, so Close never races a transfer
		}
	}()

	sess := hidreport.NewSession(s.set, s.log)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	// handle processes one packet; a non-nil error ends Read.
	handle := func(p packet, ok bool) error {
		if !ok || p.err != nil {
			switch {
			case s.isClosed():
				return fmt.Errorf("scanner/usb: %s: %w", s.set.USB.String(), scanner.ErrClosed)
			case ctx.Err() != nil:
				return ctx.Err()
			}
			if p.err == nil {
				p.err = errors.New("transfer loop ended")
			}
			return fmt.Errorf("scanner/usb: read %s: %w: %w", s.set.USB.String(), scanner.ErrDisconnected, p.err)
		}
		if len(p.data) > 0 { // empty: the zero-length packet after a full report
			sess.Report(p.data, p.at, h)
		}
		return nil
	}
	for {
		var deadline <-chan time.Time
		if sess.Busy() {
			timer.Reset(sess.Wait(time.Now()))
			deadline = timer.C
		}
		select {
		case p, ok := <-packets:
			timer.Stop()
			if err := handle(p, ok); err != nil {
				return err
			}
		case <-deadline:
			// A report that arrived before the deadline goes first: it
			// may continue the frame.
			select {
			case p, ok := <-packets:
				if err := handle(p, ok); err != nil {
					return err
				}
				continue
			default:
			}
			sess.Idle(time.Now(), h)
		}
	}
}

// transfers reads rd until ctx ends or a transfer fails, sending each
// report (copied) with its arrival time; it closes out when it returns,
// after making sure no transfer is left submitted.
func (s *Scanner) transfers(ctx context.Context, rd reader, out chan<- packet) {
	defer close(out)
	buf := make([]byte, s.pktSize)
	defer func() {
		// Leaving between two reads would leave a stream's transfers
		// submitted: a read with the ended context cancels and frees them.
		// A completed transfer may win the race with the cancellation, so
		// a few tries; each returns at once.
		for i := 0; i < 2*streamDepth; i++ {
			if _, err := rd.ReadContext(ctx, buf); err != nil {
				return
			}
		}
	}()
	for {
		n, err := rd.ReadContext(ctx, buf)
		p := packet{at: time.Now(), err: err}
		if n > 0 && (err == nil || errors.Is(err, gousb.TransferCancelled)) {
			// Cancelled just after the device delivered: the report is
			// real and will not come again.
			p.data = append([]byte(nil), buf[:n]...)
		}
		if n > 0 && err != nil {
			// Deliver the data first, then the error on its own.
			select {
			case out <- packet{data: p.data, at: p.at}:
			case <-ctx.Done():
				return
			}
			p.data = nil
		}
		select {
		case out <- p:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
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
		return fmt.Errorf("scanner/usb: close %s: %w", s.set.USB.String(), err)
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
