package serial_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"

	"github.com/kioskd/kioskd/scanner"
	"github.com/kioskd/kioskd/scanner/serial"
)

// stamp is a Handler that reports when each code was delivered.
type stamp struct{ at chan time.Time }

func (s stamp) FrameStarted(string, time.Time) {}
func (s stamp) CodeRead(scanner.Code)          { s.at <- time.Now() }

// supervised runs the real serial driver under a Supervisor on a pty.
func supervised(b *testing.B, h scanner.Handler) (*device, func()) {
	dev, path := plugged(b)
	open, err := scanner.NewOpener(scanner.Config{Name: "front", Driver: "serial", Settings: withBaud(at(path), 115200)}, nil)
	if err != nil {
		b.Fatal(err)
	}
	sup, err := scanner.NewSupervisor([]scanner.Source{{Name: "front", Open: open}}, h, nil, scanner.SupervisorOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	for sup.Status()[0].State != scanner.StateUp {
		time.Sleep(time.Millisecond)
	}
	return dev, func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			b.Errorf("Run = %v", err)
		}
	}
}

// BenchmarkScanToHandler measures, on a real pty through the Supervisor,
// the time from writing the last byte of a JSON QR (no suffix) to the Code
// reaching the handler.
func BenchmarkScanToHandler(b *testing.B) {
	h := stamp{at: make(chan time.Time, 1)}
	dev, stop := supervised(b, h)
	defer stop()
	pad := strings.Repeat("A", 300) // a real QR payload is 300–500 bytes
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		// Each payload differs, or the Supervisor would drop it as a duplicate.
		p := []byte(fmt.Sprintf(`]Q1{"id_loyalty":"%d","encrypted":"%s","sign":"MEUCIQ=="}`, i, pad))
		if _, err := dev.Master.Write(p[:len(p)-1]); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if _, err := dev.Master.Write(p[len(p)-1:]); err != nil {
			b.Fatal(err)
		}
		select {
		case at := <-h.at:
			lat = append(lat, at.Sub(t0))
		case <-time.After(5 * time.Second):
			b.Fatal("code not delivered")
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkIdleCPU measures the CPU used over 3 s (getrusage of the whole
// test process) by an open, idle serial scanner under the Supervisor, next
// to the same process with nothing open, so the driver's share shows. Run
// it with the default -benchtime: one iteration already takes 3 s.
func BenchmarkIdleCPU(b *testing.B) {
	b.Run("baseline", func(b *testing.B) { idleCPU(b) })
	b.Run("serial", func(b *testing.B) {
		_, stop := supervised(b, stamp{at: make(chan time.Time, 1)})
		defer stop()
		idleCPU(b)
	})
}

func idleCPU(b *testing.B) {
	time.Sleep(200 * time.Millisecond) // let start-up settle
	const window = 3 * time.Second
	var cpu, csw float64
	b.ResetTimer()
	for range b.N {
		var r0, r1 unix.Rusage
		unix.Getrusage(unix.RUSAGE_SELF, &r0)
		t0 := time.Now()
		time.Sleep(window)
		unix.Getrusage(unix.RUSAGE_SELF, &r1)
		wall := time.Since(t0)
		used := time.Duration(r1.Utime.Nano() - r0.Utime.Nano() + r1.Stime.Nano() - r0.Stime.Nano())
		cpu += 100 * used.Seconds() / wall.Seconds()
		csw += float64(r1.Nvcsw-r0.Nvcsw) / wall.Seconds()
	}
	b.ReportMetric(cpu/float64(b.N), "%cpu")
	b.ReportMetric(csw/float64(b.N), "ctxsw/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkReplug measures, under the Supervisor with its default backoff,
// the time from a scanner's node reappearing (a new pty behind the same
// symlink) to the scanner being read again, after unplugs of varying
// length so that the replug falls at every phase of the backoff. Run it
// with -benchtime=10x: each iteration takes about a second.
//
// "backoff" has the hotplug listener off. "hotplug" has the real listener
// on; as a pty and a symlink make no uevent, the replug is announced by
// writing "add" to ptmx's sysfs uevent file, so the kernel sends a real
// tty uevent through the netlink socket (needs root). A USB replug sends
// its uevents once the node exists, so this stands for the same order.
func BenchmarkReplug(b *testing.B) {
	b.Run("backoff", func(b *testing.B) { replug(b, false) })
	b.Run("hotplug", func(b *testing.B) { replug(b, true) })
}

const ptmxUevent = "/sys/devices/virtual/tty/ptmx/uevent"

func replug(b *testing.B, hotplug bool) {
	if hotplug && os.Geteuid() != 0 {
		b.Skip("needs root to make the kernel send a uevent")
	}
	h := stamp{at: make(chan time.Time, 1)}
	dev, path := plugged(b)
	open, err := scanner.NewOpener(scanner.Config{Name: "front", Driver: "serial", Settings: at(path)}, nil)
	if err != nil {
		b.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	sup, err := scanner.NewSupervisor([]scanner.Source{{Name: "front", Open: open}}, h, zap.New(core),
		scanner.SupervisorOptions{NoHotplug: !hotplug})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	defer func() { cancel(); <-done }()
	wait := func(want scanner.State) {
		for sup.Status()[0].State != want {
			time.Sleep(500 * time.Microsecond)
		}
	}
	wait(scanner.StateUp)
	if hotplug && logs.FilterMessageSnippet("no hotplug events").Len() > 0 {
		b.Skipf("no uevent socket here: %v", logs.All()[0].ContextMap())
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		dev.unplug()
		wait(scanner.StateDown)
		// Unplugged for 300 ms to 1.3 s, in steps that do not line up
		// with the backoff.
		time.Sleep(300*time.Millisecond + time.Duration(i*137%1000)*time.Millisecond)
		dev = newDevice(b)
		t0 := time.Now()
		dev.link(b, path)
		if hotplug {
			if err := os.WriteFile(ptmxUevent, []byte("add"), 0); err != nil {
				b.Fatal(err)
			}
		}
		wait(scanner.StateUp)
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	// Fractions of a millisecond: the hotplug case is below one.
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(0, "ns/op")
}

func withBaud(s serial.Settings, baud int) serial.Settings {
	s.Baud = baud
	return s
}
