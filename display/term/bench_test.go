package term

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/display/displaytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// BenchmarkShow measures one Show in both modes and the bytes it writes.
func BenchmarkShow(b *testing.B) {
	for _, m := range []struct {
		name string
		mode Mode
	}{{"ansi", ANSI}, {"plain", Plain}} {
		b.Run(m.name, func(b *testing.B) {
			var c displaytest.Counter
			d := New(&c, m.mode)
			ctx := context.Background()
			screens := []display.Screen{{State: display.Paying, Amount: 123456}, {State: display.Paid, Amount: 123456}}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := d.Show(ctx, screens[i%2]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(c.N)/float64(b.N), "bytes/show")
		})
	}
}
