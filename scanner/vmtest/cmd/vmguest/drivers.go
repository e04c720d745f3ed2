//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/display/vfd"
	"github.com/kioskd/kioskd/scanner"
	_ "github.com/kioskd/kioskd/scanner/serial" // registers driver "serial"
	"github.com/kioskd/kioskd/scanner/vmtest"
)

// The driver scenarios read each device through the project's scanner
// drivers under the real Supervisor, as the agent does, and drive the pole
// display through display/vfd.

// driverScenarios are the scenarios that read through the scanner drivers.
func driverScenarios() []scenario {
	return []scenario{
		{"serial-driver", serialDriver},
		{"acm-driver", acmDriver},
		{"pole-vfd", poleVFD},
		{"replug-serial", replugSerial},
		{"replug-acm", replugACM},
	}
}

// sink is the Handler of a supervised test scanner: it records every code
// and every status change with its time.
type sink struct {
	codes chan scanner.Code
	mu    sync.Mutex
	ups   []time.Time // when the scanner went up
	downs []time.Time
}

func (s *sink) FrameStarted(string, time.Time) {}
func (s *sink) CodeRead(c scanner.Code) {
	select {
	case s.codes <- c:
	default:
	}
}

func (s *sink) status(st scanner.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch st.State {
	case scanner.StateUp:
		s.ups = append(s.ups, time.Now())
	case scanner.StateDown:
		s.downs = append(s.downs, time.Now())
	}
}

// waitState waits for the n-th up (or down) transition and returns its time.
func (s *sink) wait(ctx context.Context, up bool, n int) (time.Time, error) {
	for {
		s.mu.Lock()
		l := s.downs
		if up {
			l = s.ups
		}
		if len(l) >= n {
			t := l[n-1]
			s.mu.Unlock()
			return t, nil
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("scanner never went up=%v (#%d): %w", up, n, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// debug makes the drivers log to the console (-debug).
var debug bool

// supervised runs one scanner under a Supervisor until the returned stop is
// called; stop returns once the Supervisor has closed the device.
func supervised(ctx context.Context, cfg scanner.Config) (*sink, *scanner.Supervisor, func() error, error) {
	log := zap.NewNop()
	if debug {
		log, _ = zap.NewDevelopment()
	}
	open, err := scanner.NewOpener(cfg, log)
	if err != nil {
		return nil, nil, nil, err
	}
	s := &sink{codes: make(chan scanner.Code, 8)}
	sup, err := scanner.NewSupervisor([]scanner.Source{{Name: cfg.Name, Open: open}}, s, log,
		scanner.SupervisorOptions{OnStatus: s.status})
	if err != nil {
		return nil, nil, nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sup.Run(rctx) }() // owner: stop
	stop := sync.OnceValue(func() error { // deferred and called: must be idempotent
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		return nil
	})
	return s, sup, stop, nil
}

func expectCode(ctx context.Context, s *sink, want []byte) (scanner.Code, error) {
	select {
	case c := <-s.codes:
		if !bytes.Equal(c.Data, want) {
			return c, fmt.Errorf("read %q, want %q", c.Data, want)
		}
		return c, nil
	case <-ctx.Done():
		return scanner.Code{}, fmt.Errorf("no code read: %w", ctx.Err())
	}
}

func serialConfig() scanner.Config {
	return scanner.Config{Name: "ser0", Driver: "serial", Port: ttyOnPort("ttyUSB", portSer), Baud: 9600, Interface: -1}
}

func acmConfig() scanner.Config {
	return scanner.Config{Name: "acm0", Driver: "serial", Port: ttyOnPort("ttyACM", ""), Baud: 115200, Interface: -1}
}

// feedSerial plays a serial scanner on QEMU's usb-serial: the host writes the
// code and a CR into the chardev.
func (e *env) feedSerial(code []byte) (time.Time, error) {
	t0 := time.Now()
	_, err := e.ctl.Do("serial", "ser0", vmtest.B64(append(append([]byte(nil), code...), '\r')))
	return t0, err
}

// feedACM plays a CDC scanner: the gadget's tty end writes the code.
func (e *env) feedACM(code []byte) (time.Time, error) {
	gs, err := openRawTTY("/dev/ttyGS0")
	if err != nil {
		return time.Time{}, err
	}
	defer gs.Close()
	t0 := time.Now()
	_, err = gs.Write(append(append([]byte(nil), code...), '\r'))
	return t0, err
}

func readOnce(ctx context.Context, cfg scanner.Config, code []byte, feed func([]byte) (time.Time, error)) (string, error) {
	s, _, stop, err := supervised(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer stop()
	if _, err := s.wait(ctx, true, 1); err != nil {
		return "", err
	}
	t0, err := feed(code)
	if err != nil {
		return "", err
	}
	c, err := expectCode(ctx, s, code)
	if err != nil {
		return "", err
	}
	if err := stop(); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s: %d-byte QR read by driver %q, fed->read %s", cfg.Port, len(c.Data), cfg.Driver,
		c.Time.Sub(t0).Round(time.Millisecond)), nil
}

func serialDriver(ctx context.Context, e *env) (string, error) {
	return readOnce(ctx, serialConfig(), e.qr, e.feedSerial)
}

func acmDriver(ctx context.Context, e *env) (string, error) {
	return readOnce(ctx, acmConfig(), e.qr, e.feedACM)
}

// replug runs a supervised scanner, reads a code, pulls the device out while
// idle, plugs it back and feeds the next code as soon as the driver has it
// open: plug->first read is what a customer would wait at worst.
func replug(ctx context.Context, e *env, cfg scanner.Config, unplug, plug func() error, feed func([]byte) (time.Time, error)) (string, error) {
	s, _, stop, err := supervised(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer stop()
	if _, err := s.wait(ctx, true, 1); err != nil {
		return "", err
	}
	if _, err := feed(e.qr); err != nil {
		return "", err
	}
	if _, err := expectCode(ctx, s, e.qr); err != nil {
		return "", fmt.Errorf("before unplug: %w", err)
	}
	tu := time.Now()
	if err := unplug(); err != nil {
		return "", fmt.Errorf("unplug: %w", err)
	}
	down, err := s.wait(ctx, false, 1)
	if err != nil {
		return "", err
	}
	time.Sleep(300 * time.Millisecond) // idle while unplugged
	t0 := time.Now()
	if err := plug(); err != nil {
		return "", fmt.Errorf("plug: %w", err)
	}
	// Feed once the driver reads again: an FTDI bridge purges its FIFO when
	// the port is opened, so a code sent earlier is lost on real hardware
	// too. A second, different code, so duplicate suppression cannot hide a
	// miss.
	up, err := s.wait(ctx, true, 2)
	if err != nil {
		return "", err
	}
	code2 := bytes.Replace(e.qr, []byte("7000123456789"), []byte("7000123456790"), 1)
	if _, err := feed(code2); err != nil {
		return "", err
	}
	c, err := expectCode(ctx, s, code2)
	if err != nil {
		return "", fmt.Errorf("after replug: %w", err)
	}
	ts := time.Now()
	if err := stop(); err != nil {
		return "", err
	}
	return fmt.Sprintf("unplug->noticed %s, plug->open %s, plug->first read %s (goal < 1s), close %s",
		down.Sub(tu).Round(time.Millisecond), up.Sub(t0).Round(time.Millisecond), c.Time.Sub(t0).Round(time.Millisecond),
		time.Since(ts).Round(time.Millisecond)), nil
}

func replugSerial(ctx context.Context, e *env) (string, error) {
	return replug(ctx, e, serialConfig(),
		func() error { _, err := e.ctl.Do("unplug", "us0"); return err },
		func() error { _, err := e.ctl.Do("plug", "us0"); return err },
		e.feedSerial)
}

func replugACM(ctx context.Context, e *env) (string, error) {
	return replug(ctx, e, acmConfig(), e.acm.unbind, e.acm.bind, e.feedACM)
}

// poleVFD shows screens through display/vfd on the second usb-serial port;
// the host decodes the bytes (Epson, CP866) and must see the Russian lines
// vfd.Layout promises.
func poleVFD(ctx context.Context, e *env) (string, error) {
	d, err := vfd.New(display.Config{Name: "pole", Driver: "vfd", Port: ttyOnPort("ttyUSB", portPole),
		Baud: 9600, CommandSet: "epson", Codepage: "cp866"}, zap.NewNop())
	if err != nil {
		return "", err
	}
	defer d.Close()
	var seen []string
	for _, scr := range []display.Screen{
		{State: display.Paying, Amount: 12345, Lang: display.Russian},
		{State: display.Paid, Amount: 12345, Lang: display.Russian},
		{State: display.Declined, Message: "Недостаточно средств", Lang: display.Russian},
	} {
		if _, err := e.ctl.Do("pole-reset"); err != nil {
			return "", err
		}
		if err := d.Show(ctx, scr); err != nil {
			return "", fmt.Errorf("show %s: %w", scr.State, err)
		}
		for _, l := range vfd.Layout(scr) {
			l = strings.TrimSpace(l)
			if l == "" {
				continue
			}
			if _, err := e.ctl.Do("pole-expect", vmtest.B64([]byte(l)), "5000"); err != nil {
				return "", fmt.Errorf("%s: %w", scr.State, err)
			}
			seen = append(seen, l)
		}
	}
	return fmt.Sprintf("host decoded %q", seen), nil
}
