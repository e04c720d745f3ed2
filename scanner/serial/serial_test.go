package serial_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/kioskd/kioskd/scanner"
	"github.com/kioskd/kioskd/scanner/frame"
	"github.com/kioskd/kioskd/scanner/scannertest"
	"github.com/kioskd/kioskd/scanner/serial"
	"github.com/kioskd/kioskd/scanner/serial/serialtest"
	"github.com/kioskd/kioskd/scanner/settings"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const qr = `{"id_loyalty":"7700","encrypted":"bXlzZWNyZXQ=","sign":"MEUCIQ\/+{}"}`

// readResult is Read's outcome, waited for once and remembered.
type readResult struct {
	ch   chan error
	once sync.Once
	err  error
	ok   bool
}

// wait returns Read's error, or ok=false when Read is still running after d.
func (r *readResult) wait(d time.Duration) (err error, ok bool) {
	r.once.Do(func() {
		select {
		case r.err = <-r.ch:
			r.ok = true
		case <-time.After(d):
		}
	})
	return r.err, r.ok
}

// reading opens the device at path with cfg and reads it into a Recorder
// until the test ends; it returns the port and Read's result.
// at returns the default settings of a scanner on path.
func at(path string) serial.Settings {
	s := serial.Defaults
	s.Port.Path = path
	return s
}

// reading opens the scanner "front" with s through its driver and reads it
// until the test ends.
func reading(t *testing.T, s serial.Settings) (*serial.Port, *scannertest.Recorder, *readResult) {
	t.Helper()
	open, err := scanner.NewOpener(scanner.Config{Name: "front", Driver: "serial", Settings: s}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p := sc.(*serial.Port)
	rec := &scannertest.Recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	res := &readResult{ch: make(chan error, 1)}
	go func() { res.ch <- p.Read(ctx, rec) }()
	t.Cleanup(func() {
		cancel()
		if _, ok := res.wait(5 * time.Second); !ok {
			t.Error("Read did not return after cancel")
		}
		p.Close()
	})
	return p, rec, res
}

func waitCodes(t *testing.T, rec *scannertest.Recorder, n int, within time.Duration) []scanner.Code {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	codes, err := rec.WaitCodes(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	return codes
}

func datas(codes []scanner.Code) []string {
	var s []string
	for _, c := range codes {
		s = append(s, string(c.Data))
	}
	return s
}

func TestPtyFraming(t *testing.T) {
	cases := []struct {
		name    string
		framing frame.Mode
		gap     time.Duration
		writes  []string
		want    []string
	}{
		{"cr", frame.Auto, 0, []string{"4600123456789\r"}, []string{"4600123456789"}},
		{"crlf", frame.Auto, 0, []string{"abc\r\n", "def\r\n"}, []string{"abc", "def"}},
		{"lf mode", frame.LF, 0, []string{"a\rb\n"}, []string{"ab"}},
		// The gap is 5 s and the test waits at most 3 s: the code can only
		// have been ended by its closing brace.
		{"json without suffix", frame.Auto, 5 * time.Second, []string{"]Q1" + qr}, []string{qr}},
		{"gap", frame.Gap, 30 * time.Millisecond, []string{"ABC\r\nDEF"}, []string{"ABCDEF"}},
		{"garbage then a code", frame.Auto, 0, []string{"\x00\x01\x11\x13\x1b[2J\xff\xfe\r\n", "ok\r"}, []string{"[2J\xff\xfe", "ok"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dev, path := plugged(t)
			s := at(path)
			s.Baud, s.Frame = 115200, frame.Config{Mode: c.framing, Gap: c.gap}
			_, rec, _ := reading(t, s)
			for _, w := range c.writes {
				dev.write(t, w)
			}
			got := datas(waitCodes(t, rec, len(c.want), 3*time.Second))
			if strings.Join(got, "|") != strings.Join(c.want, "|") {
				t.Fatalf("codes = %q, want %q", got, c.want)
			}
			if s := rec.Starts(); len(s) != len(c.want) || s[0].Source != "front" {
				t.Errorf("frame starts = %+v", s)
			}
		})
	}
}

// TestPtySplitAcrossReads sends a JSON QR one byte at a time, each its own
// read, as a slow bridge does.
func TestPtySplitAcrossReads(t *testing.T) {
	dev, path := plugged(t)
	_, rec, _ := reading(t, withGap(at(path), 5*time.Second))
	payload := "]Q1" + qr
	for i := range len(payload) {
		dev.write(t, payload[i:i+1])
		time.Sleep(200 * time.Microsecond)
	}
	codes := waitCodes(t, rec, 1, 3*time.Second)
	if string(codes[0].Data) != qr || codes[0].Symbology != "qr" || codes[0].Source != "front" {
		t.Fatalf("code = %+v", codes[0])
	}
	starts := rec.Starts()
	if len(starts) != 1 || starts[0].At.After(codes[0].Time) {
		t.Fatalf("frame start %+v, code at %v", starts, codes[0].Time)
	}
}

// TestPtyEndlessStreamBoundedMemory pushes 10 MB without a terminator
// through the pty, then a real code: the garbage yields nothing and the
// heap does not grow with it.
func TestPtyEndlessStreamBoundedMemory(t *testing.T) {
	dev, path := plugged(t)
	_, rec, _ := reading(t, withGap(at(path), 5*time.Second))

	runtime.GC()
	var before, peak runtime.MemStats
	runtime.ReadMemStats(&before)
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	for i := range 10 << 20 / len(chunk) {
		if _, err := dev.Master.Write(chunk); err != nil {
			t.Fatal(err)
		}
		if i%32 == 0 {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.HeapInuse {
				peak = m
			}
		}
	}
	dev.write(t, "\r4600123456789\r")
	codes := waitCodes(t, rec, 1, 10*time.Second)
	if got := datas(codes); len(got) != 1 || got[0] != "4600123456789" {
		t.Fatalf("codes = %q", got)
	}
	// One start for the garbage (proof it went through the framer), one for
	// the code.
	if s := rec.Starts(); len(s) != 2 {
		t.Errorf("%d frame starts, want 2", len(s))
	}
	growth := int64(peak.HeapInuse) - int64(before.HeapInuse)
	t.Logf("heap in use before %d KiB, peak during 10 MB %d KiB", before.HeapInuse>>10, peak.HeapInuse>>10)
	if growth > 4<<20 {
		t.Errorf("heap grew by %d KiB while 10 MB streamed", growth>>10)
	}
}

func TestPtyUnplugEndsRead(t *testing.T) {
	dev, path := plugged(t)
	_, _, done := reading(t, at(path))
	time.Sleep(50 * time.Millisecond)
	dev.unplug()
	err, ok := done.wait(3 * time.Second)
	if !ok {
		t.Fatal("Read did not notice the unplug")
	}
	if !errors.Is(err, scanner.ErrDisconnected) {
		t.Fatalf("Read = %v, want ErrDisconnected", err)
	}
}

func TestPtyCloseEndsRead(t *testing.T) {
	_, path := plugged(t)
	p, _, done := reading(t, at(path))
	time.Sleep(20 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	err, ok := done.wait(3 * time.Second)
	if !ok {
		t.Fatal("Read did not end after Close")
	}
	if !errors.Is(err, scanner.ErrClosed) {
		t.Fatalf("Read = %v, want ErrClosed", err)
	}
	if err := p.GoodRead(context.Background()); err == nil {
		t.Error("host command on a closed port succeeded")
	}
}

// TestSupervisorReplug runs the real driver under the Supervisor: the pty
// is closed (unplug), the path dangles for a while, then a new pty appears
// under the same symlink (replug) and is read again.
func TestSupervisorReplug(t *testing.T) {
	dev, path := plugged(t)
	open, err := scanner.NewOpener(scanner.Config{Name: "front", Driver: "serial", Settings: at(path)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &scannertest.Recorder{}
	sup, err := scanner.NewSupervisor([]scanner.Source{{Name: "front", Open: open}}, rec, nil, scanner.SupervisorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v", err)
		}
	}()
	state := func() scanner.Status { return sup.Status()[0] }
	waitState(t, state, scanner.StateUp)
	dev.write(t, "first\r")
	waitCodes(t, rec, 1, 3*time.Second)

	dev.unplug()
	waitState(t, state, scanner.StateDown)
	if err := state().Err; !errors.Is(err, scanner.ErrDisconnected) && !errors.Is(err, scanner.ErrNotFound) {
		t.Errorf("down because of %v", err)
	}
	time.Sleep(700 * time.Millisecond) // unplugged for a while: backoff reaches its cap

	dev2 := newDevice(t)
	plugged := time.Now()
	dev2.link(t, path)
	waitState(t, state, scanner.StateUp)
	t.Logf("read again %v after replug", time.Since(plugged).Round(time.Millisecond))
	dev2.write(t, "second\r")
	if got := datas(waitCodes(t, rec, 2, 3*time.Second)); got[1] != "second" {
		t.Fatalf("codes = %q", got)
	}

	// udev re-points the symlink to a new device while the old one still
	// answers: the driver notices the node leads elsewhere and follows.
	dev3 := &device{serialtest.New(t, path)}
	opens := state().Opens
	deadline := time.Now().Add(5 * time.Second)
	for state().Opens == opens || state().State != scanner.StateUp {
		if time.Now().After(deadline) {
			t.Fatalf("symlink re-point not followed: %+v", state())
		}
		time.Sleep(10 * time.Millisecond)
	}
	dev3.write(t, "third\r")
	if got := datas(waitCodes(t, rec, 3, 3*time.Second)); got[2] != "third" {
		t.Fatalf("codes = %q", got)
	}
}

func waitState(t *testing.T, st func() scanner.Status, want scanner.State) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for st().State != want {
		if time.Now().After(deadline) {
			t.Fatalf("state %v, want %v (err %v)", st().State, want, st().Err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestOpenErrors(t *testing.T) {
	open, err := scanner.NewOpener(scanner.Config{Name: "x", Driver: "serial", Settings: at("/dev/kioskd-no-such-scanner")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = open(context.Background())
	if !errors.Is(err, scanner.ErrNotFound) || !strings.Contains(err.Error(), "kioskd devices") {
		t.Fatalf("open missing port: %v", err)
	}
	var oe *scanner.OpenError
	if !errors.As(err, &oe) || oe.Driver != "serial" {
		t.Fatalf("not an OpenError: %v", err)
	}
}

// TestPortIsExclusive checks TIOCEXCL is set, so a second opener (other
// than root) gets EBUSY, which the driver reports as scanner.ErrBusy.
func TestPortIsExclusive(t *testing.T) {
	dev, path := plugged(t)
	p, _, _ := reading(t, at(path))
	excl, err := unix.IoctlGetInt(int(dev.Slave.Fd()), unix.TIOCGEXCL)
	if err != nil {
		t.Skipf("TIOCGEXCL: %v", err)
	}
	if excl != 1 {
		t.Fatalf("TIOCGEXCL = %d, want 1", excl)
	}
	// Closing must release it, or our own reopen of a tty that outlives
	// the open would fail with EBUSY.
	p.Close()
	if excl, err := unix.IoctlGetInt(int(dev.Slave.Fd()), unix.TIOCGEXCL); err != nil || excl != 0 {
		t.Fatalf("after Close TIOCGEXCL = %d, %v; want 0", excl, err)
	}
}

// TestSettings decodes entries through the registered driver, as
// devices.yaml is read: defaults, and one problem per bad key.
func TestSettings(t *testing.T) {
	var d settings.Decoder
	e, ok := scanner.Drivers.Decode(&d, settings.Flat("driver", "serial", "name", "s", "port", "/dev/ttyACM0"), "s")
	got, _ := e.Settings.(serial.Settings)
	if !ok || len(d.Problems()) > 0 || got.Baud != 9600 || got.DataBits != 8 || got.Parity != serial.ParityNone ||
		got.StopBits != 1 || got.Host != serial.NoHostCommands || got.Frame.Mode != frame.Auto || got.Port.Path != "/dev/ttyACM0" {
		t.Fatalf("defaults: %+v, %v", e, d.Problems())
	}
	d = settings.Decoder{}
	e, _ = scanner.Drivers.Decode(&d, settings.Flat("driver", "serial", "name", "front", "vid", "1a86", "pid", "7523",
		"parity", "even", "stop_bits", "2", "host_commands", "zebra-ssi", "framing", "crlf", "gap", "20ms"), "s")
	got, _ = e.Settings.(serial.Settings)
	if len(d.Problems()) > 0 || got.Port.Path != "/dev/kiosk/front" || got.Port.USB.VID != 0x1a86 || got.Parity != serial.ParityEven ||
		got.StopBits != 2 || got.Host != serial.ZebraSSI || got.Frame.Mode != frame.CRLF || got.Frame.Gap != 20*time.Millisecond {
		t.Fatalf("values: %+v, %v", got, d.Problems())
	}
	for key, bad := range map[string]string{"port": "ttyACM0", "baud": "12345", "data_bits": "9", "parity": "mark",
		"stop_bits": "3", "host_commands": "symbol", "framing": "etx", "gap": "-1s"} {
		d = settings.Decoder{}
		src := settings.Flat("driver", "serial", "port", "/dev/x", key, bad)
		if key == "port" {
			src = settings.Flat("driver", "serial", key, bad)
		}
		scanner.Drivers.Decode(&d, src, "s")
		if p := d.Problems(); len(p) != 1 || p[0].Path != "s."+key || !strings.Contains(p[0].Msg, bad) {
			t.Errorf("%s: %s: problems %+v, want one naming the value", key, bad, p)
		}
	}
}

// TestHostCommandsOnTheWire checks the bytes that reach the scanner.
func TestHostCommandsOnTheWire(t *testing.T) {
	type call struct {
		name string
		do   func(context.Context, *serial.Port) error
		want []byte // nil: unsupported
	}
	good := func(ctx context.Context, p *serial.Port) error { return p.GoodRead(ctx) }
	bad := func(ctx context.Context, p *serial.Port) error { return p.BadRead(ctx) }
	on := func(ctx context.Context, p *serial.Port) error { return p.Enable(ctx, true) }
	off := func(ctx context.Context, p *serial.Port) error { return p.Enable(ctx, false) }
	sets := map[serial.HostCommands][]call{
		serial.Honeywell: {{"beep", good, []byte{0x16, 0x07, 0x0D}}, {"bad", bad, nil},
			{"on", on, []byte{0x16, 0x54, 0x0D}}, {"off", off, []byte{0x16, 0x55, 0x0D}}},
		serial.Datalogic: {{"beep", good, []byte("B")}, {"bad", bad, nil}, {"on", on, []byte("E")}, {"off", off, []byte("D")}},
		serial.ZebraSSI: {{"beep", good, []byte{0x05, 0xE6, 0x04, 0x00, 0x00, 0xFF, 0x11}},
			{"bad", bad, []byte{0x05, 0xE6, 0x04, 0x00, 0x06, 0xFF, 0x0B}},
			{"on", on, []byte{0x04, 0xE9, 0x04, 0x00, 0xFF, 0x0F}},
			{"off", off, []byte{0x04, 0xEA, 0x04, 0x00, 0xFF, 0x0E}}},
		serial.NoHostCommands: {{"beep", good, nil}, {"on", on, nil}},
	}
	for set, calls := range sets {
		t.Run(set.String(), func(t *testing.T) {
			dev, path := plugged(t)
			s := at(path)
			s.Host = set
			p, _, _ := reading(t, s)
			for _, c := range calls {
				err := c.do(context.Background(), p)
				if c.want == nil {
					if !errors.Is(err, errors.ErrUnsupported) {
						t.Errorf("%s: err = %v, want ErrUnsupported", c.name, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				got := make([]byte, len(c.want))
				dev.Master.SetReadDeadline(time.Now().Add(2 * time.Second))
				if _, err := readFull(dev, got); err != nil || !bytes.Equal(got, c.want) {
					t.Errorf("%s: wire % X (%v), want % X", c.name, got, err, c.want)
				}
			}
		})
	}
}

func readFull(d *device, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := d.Master.Read(b[n:])
		n += m
		if err != nil {
			return n, fmt.Errorf("read from pty master: %w", err)
		}
	}
	return n, nil
}

// TestZebraAckNotFramed: the decoder's ACK to a beep must not become a code.
func TestZebraAckNotFramed(t *testing.T) {
	dev, path := plugged(t)
	s := withGap(at(path), 20*time.Millisecond)
	s.Host = serial.ZebraSSI
	_, rec, _ := reading(t, s)
	ack := "\x04\xD0\x00\x00\xFF\x2C"
	dev.write(t, ack[:3])
	time.Sleep(150 * time.Millisecond) // split across reads, and longer than the gap
	dev.write(t, ack[3:]+"4600123456789\r")
	if got := datas(waitCodes(t, rec, 1, 3*time.Second)); len(got) != 1 || got[0] != "4600123456789" {
		t.Fatalf("codes = %q", got)
	}
	time.Sleep(100 * time.Millisecond)
	if got := datas(rec.Codes()); len(got) != 1 {
		t.Fatalf("codes = %q", got)
	}
}

func withGap(s serial.Settings, gap time.Duration) serial.Settings {
	s.Frame.Gap = gap
	return s
}
