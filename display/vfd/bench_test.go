package vfd

import (
	"context"
	"io"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/display/displaytest"
	"github.com/kioskd/kioskd/scanner/serial/serialtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// BenchmarkShow measures rendering and writing one screen per command set
// (after initialisation), and the bytes each Show puts on the wire: at 9600
// baud every byte costs about 1 ms of line time.
func BenchmarkShow(b *testing.B) {
	screens := []display.Screen{
		{State: display.Paying, Amount: 123456},
		{State: display.Paid, Amount: 123456},
		{State: display.Declined, Message: "Недостаточно средств на счёте"},
	}
	for _, set := range []string{"epson", "cd5220", "aedex", "logic"} {
		b.Run(set, func(b *testing.B) {
			var c displaytest.Counter
			r, err := NewRenderer(&c, Options{CommandSet: set})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			_ = r.Show(ctx, screens[0])
			c.N = 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if err := r.Show(ctx, screens[i%len(screens)]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(c.N)/float64(b.N), "bytes/show")
		})
	}
}

// BenchmarkShowPty measures the real driver: tarm/serial on a pty, with a
// reader draining the other end.
func BenchmarkShowPty(b *testing.B) {
	link := filepath.Join(b.TempDir(), "display0")
	pty := serialtest.New(b, link)
	done := make(chan int64)
	go func() {
		n, _ := io.Copy(io.Discard, pty.Master)
		done <- n
	}()
	d, err := New(withBaud(on(link), 115200), zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	s := []display.Screen{{State: display.Paying, Amount: 123456}, {State: display.Paid, Amount: 123456}}
	_ = d.Show(ctx, s[1])
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := d.Show(ctx, s[i%2]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	// With every slave handle closed, the reader drains the rest and then
	// gets EIO, so n counts all bytes written.
	d.Close()
	pty.Slave.Close()
	n := <-done
	pty.Close()
	b.ReportMetric(float64(n)/float64(b.N+1), "bytes/show")
}

func withBaud(s Settings, baud int) Settings {
	s.Baud = baud
	return s
}
