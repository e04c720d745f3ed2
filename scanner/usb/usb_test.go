//go:build cgo

package usb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/gousb"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/kioskd/kioskd/scanner"
	"github.com/kioskd/kioskd/scanner/hidreport"
	"github.com/kioskd/kioskd/scanner/internal/hidtest"
	"github.com/kioskd/kioskd/scanner/scannertest"
	"github.com/kioskd/kioskd/scanner/settings"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The real gousb path with no such device: ErrNotFound, or (on a machine
// without usbfs) libusb's start-up failure turned into an error, not a panic.
// Either way every libusb resource is released (goleak checks the event
// goroutine).
func TestOpenMissingDevice(t *testing.T) {
	set := hidreport.Defaults
	set.VID, set.PID = 0xfffe, 0xfffd
	op, err := Settings{set}.Opener("x", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	_, err = op(context.Background())
	var oe *scanner.OpenError
	if !errors.As(err, &oe) || oe.Driver != "usb" {
		t.Fatalf("err %v", err)
	}
	if !errors.Is(err, scanner.ErrNotFound) && !bytes.Contains([]byte(err.Error()), []byte("libusb cannot start")) {
		t.Fatalf("err %v", err)
	}
	t.Log(err)
}

func hidIntf(num int, sub gousb.Class, proto gousb.Protocol, eps ...gousb.EndpointDesc) gousb.InterfaceDesc {
	m := map[gousb.EndpointAddress]gousb.EndpointDesc{}
	for _, e := range eps {
		m[e.Address] = e
	}
	return gousb.InterfaceDesc{Number: num, AltSettings: []gousb.InterfaceSetting{{
		Number: num, Class: gousb.ClassHID, SubClass: sub, Protocol: proto, Endpoints: m}}}
}

func intrIn(addr int) gousb.EndpointDesc {
	return gousb.EndpointDesc{Address: gousb.EndpointAddress(addr), Number: addr & 0x0f, Direction: gousb.EndpointDirectionIn,
		TransferType: gousb.TransferTypeInterrupt, MaxPacketSize: 64}
}

func TestChooseInterface(t *testing.T) {
	out := gousb.EndpointDesc{Address: 0x02, Number: 2, Direction: gousb.EndpointDirectionOut, TransferType: gousb.TransferTypeInterrupt}
	// A composite scanner: boot keyboard on 0, HID POS on 1, CDC on 2.
	cd := gousb.ConfigDesc{Number: 1, Interfaces: []gousb.InterfaceDesc{
		hidIntf(0, 1, 1, intrIn(0x81)),
		hidIntf(1, 0, 0, out, intrIn(0x83)),
		{Number: 2, AltSettings: []gousb.InterfaceSetting{{Number: 2, Class: gousb.ClassComm}}},
	}}
	for _, tc := range []struct {
		set    hidreport.Settings
		num    int
		ep     int
		errMsg string
	}{
		{hidreport.Settings{USB: settings.USB{Interface: -1}, Mode: hidreport.KeyboardMode}, 0, 1, ""},
		{hidreport.Settings{USB: settings.USB{Interface: -1}}, 1, 3, ""},
		{hidreport.Settings{USB: settings.USB{Interface: 0}}, 0, 1, ""},
		{hidreport.Settings{USB: settings.USB{Interface: 2}}, 0, 0, "no interrupt IN"},
		{hidreport.Settings{USB: settings.USB{Interface: 5}}, 0, 0, "no interface 5"},
	} {
		num, ep, err := chooseInterface(cd, tc.set)
		if tc.errMsg != "" {
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.errMsg)) {
				t.Errorf("%+v: err %v", tc.set, err)
			}
			continue
		}
		if err != nil || num != tc.num || ep.Number != tc.ep {
			t.Errorf("%+v: %d %d %v", tc.set, num, ep.Number, err)
		}
	}
	if _, _, err := chooseInterface(gousb.ConfigDesc{}, hidreport.Settings{USB: settings.USB{Interface: -1}}); !errors.Is(err, scanner.ErrNotFound) {
		t.Errorf("no HID: %v", err)
	}
}

func TestClassify(t *testing.T) {
	for err, want := range map[error]error{
		fmt.Errorf("open: %w", gousb.ErrorAccess):                                 scanner.ErrPermission,
		fmt.Errorf("claim: failed to claim interface 0: %v", gousb.ErrorBusy):     scanner.ErrBusy,
		fmt.Errorf("x: %w", gousb.ErrorNoDevice):                                  scanner.ErrNotFound,
		fmt.Errorf("%w: none", scanner.ErrNotFound):                               scanner.ErrNotFound,
		errors.New("libusb cannot start (is /dev/bus/usb there?): libusb: other"): nil,
	} {
		if got := classify(err); got != want {
			t.Errorf("%v: %v, want %v", err, got, want)
		}
	}
	oe := &scanner.OpenError{Driver: "usb", Device: "0c2e:10d3", Kind: scanner.ErrPermission, Err: fmt.Errorf("open: %w", gousb.ErrorAccess)}
	if !errors.Is(oe, scanner.ErrPermission) || !errors.Is(oe, gousb.ErrorAccess) {
		t.Error("OpenError does not unwrap")
	}
}

// fixed hands the read loop a fake endpoint.
func fixed(r reader) func() (reader, error) { return func() (reader, error) { return r, nil } }

// endpoint plays an interrupt IN endpoint: queued packets, then blocking
// until the transfer's context ends (cancelled transfer), or a fixed error.
type endpoint struct {
	inRead  atomic.Bool
	packets *hidtest.Queue
	end     error
	started chan struct{}
}

func (e *endpoint) ReadContext(ctx context.Context, buf []byte) (int, error) {
	e.inRead.Store(true)
	defer e.inRead.Store(false)
	if p, ok := e.packets.Next(); ok {
		return copy(buf, p), nil
	}
	if e.end != nil {
		return 0, e.end
	}
	if e.started != nil {
		select {
		case e.started <- struct{}{}:
		default:
		}
	}
	<-ctx.Done()
	return 0, gousb.TransferCancelled
}

func TestReadUntilUnplug(t *testing.T) {
	qr := bytes.Repeat([]byte("A"), 300)
	var order []string
	s := &Scanner{set: hidreport.Settings{Name: "side", USB: settings.USB{Interface: -1}}, log: zap.NewNop(), pktSize: 64,
		newReader: fixed(&endpoint{packets: hidtest.NewQueue(hidtest.WithZLPs(hidtest.Honeywell(qr, "", 0, true))), end: gousb.TransferNoDevice})}
	for _, n := range []string{"interface", "config", "device", "context"} {
		s.closers = append(s.closers, func() error { order = append(order, n); return nil })
	}
	var rec scannertest.Recorder
	err := s.Read(context.Background(), &rec)
	if !errors.Is(err, scanner.ErrDisconnected) || !errors.Is(err, gousb.TransferNoDevice) {
		t.Fatalf("read ended with %v", err)
	}
	if c := rec.Codes(); len(c) != 1 || !bytes.Equal(c[0].Data, qr) || len(rec.Starts()) != 1 {
		t.Fatalf("codes %+v", c)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if !slices.Equal(order, []string{"interface", "config", "device", "context"}) {
		t.Fatalf("close order %v", order)
	}
}

// Close from another goroutine cancels the blocked transfer, waits for Read
// to return, and only then releases the interface.
func TestCloseCancelsReadThenReleases(t *testing.T) {
	ep := &endpoint{started: make(chan struct{}, 1)}
	readDone := make(chan error, 1)
	var releasedInRead bool
	s := &Scanner{set: hidreport.Settings{Name: "side", USB: settings.USB{Interface: -1}}, log: zap.NewNop(), pktSize: 64, newReader: fixed(ep)}
	s.closers = []func() error{func() error {
		releasedInRead = ep.inRead.Load()
		return nil
	}}
	go func() {
		err := s.Read(context.Background(), &scannertest.Recorder{})
		if !errors.Is(err, scanner.ErrClosed) {
			t.Errorf("read ended with %v", err)
		}
		readDone <- err
	}()
	<-ep.started
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if releasedInRead {
		t.Fatal("interface released while a transfer was in flight")
	}
	<-readDone
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	if err := s.Read(context.Background(), &scannertest.Recorder{}); !errors.Is(err, scanner.ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}
}

func TestReadKeyboardGapAndCancel(t *testing.T) {
	set := wedge()
	pk := hidtest.KeyReports(hidtest.Keys(0x1e, 0x1f, 0x20)...) // "123", no Enter
	s := &Scanner{set: set, log: zap.NewNop(), pktSize: 8, newReader: fixed(&endpoint{packets: hidtest.NewQueue(pk)})}
	codes, err := scannertest.ReadCodes(s, 1, 10*time.Second)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("read ended with %v", err)
	}
	if len(codes) != 1 || string(codes[0].Data) != "123" {
		t.Fatalf("codes %+v", codes)
	}
	s.Close()
}

// timedEndpoint delivers each packet after its delay, like a scanner typing
// with pauses, and then blocks until the transfer is cancelled.
type timedEndpoint struct {
	mu      sync.Mutex
	packets [][]byte
	delays  []time.Duration
}

func (e *timedEndpoint) ReadContext(ctx context.Context, buf []byte) (int, error) {
	e.mu.Lock()
	if len(e.packets) == 0 {
		e.mu.Unlock()
		<-ctx.Done()
		return 0, gousb.TransferCancelled
	}
	p, d := e.packets[0], e.delays[0]
	e.packets, e.delays = e.packets[1:], e.delays[1:]
	e.mu.Unlock()
	select {
	case <-time.After(d):
		return copy(buf, p), nil
	case <-ctx.Done():
		return 0, gousb.TransferCancelled
	}
}

// Keys 30 ms apart stay in one frame; a 150 ms pause ends it by the 50 ms
// gap, measured from the reports' arrival, while no transfer is cancelled.
func TestKeyboardGapByArrival(t *testing.T) {
	set := wedge()
	ep := &timedEndpoint{}
	add := func(d time.Duration, u byte) {
		ep.packets = append(ep.packets, []byte{0, 0, u, 0, 0, 0, 0, 0}, make([]byte, 8))
		ep.delays = append(ep.delays, d, 5*time.Millisecond)
	}
	add(0, 0x1e)                    // 1
	add(25*time.Millisecond, 0x1f)  // 2
	add(25*time.Millisecond, 0x20)  // 3
	add(150*time.Millisecond, 0x21) // 4, after a pause
	add(25*time.Millisecond, 0x28)  // Enter
	s := &Scanner{set: set, log: zap.NewNop(), pktSize: 8, newReader: fixed(ep)}
	codes, err := scannertest.ReadCodes(s, 2, 10*time.Second)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("read ended with %v", err)
	}
	s.Close()
	if len(codes) != 2 || string(codes[0].Data) != "123" || string(codes[1].Data) != "4" {
		t.Fatalf("codes %+v", codes)
	}
}

// wedge is a keyboard-mode scanner "wedge" at 0001:0002.
func wedge() hidreport.Settings {
	set := hidreport.Defaults
	set.Name, set.VID, set.PID, set.Mode = "wedge", 1, 2, hidreport.KeyboardMode
	return set
}
