package logdisplay

import (
	"context"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/display/displaytest"
)

func TestLogsScreens(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	d, err := display.New(display.Config{Name: "log", Driver: "log", Settings: Settings{}}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_ = d.Show(ctx, display.Screen{State: display.Declined, Amount: 12345, Message: "Недостаточно средств"})
	_ = d.Show(ctx, display.Screen{State: display.Ready})
	all := logs.All()
	if len(all) != 2 {
		t.Fatalf("%d entries, want 2", len(all))
	}
	f := all[0].ContextMap()
	if all[0].Message != "customer display" || f["state"] != "declined" || f["amount"] != int64(12345) ||
		f["message"] != "Недостаточно средств" || f["title"] != "Оплата не прошла" || f["display"] != "log" {
		t.Errorf("declined entry = %q %v", all[0].Message, f)
	}
	if f := all[1].ContextMap(); f["state"] != "ready" || f["amount"] != nil {
		t.Errorf("ready entry = %v", f)
	}
}

// BenchmarkShow measures one Show through a production JSON zap core and the
// bytes of each log entry.
func BenchmarkShow(b *testing.B) {
	var c displaytest.Counter
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	d := New(zap.New(zapcore.NewCore(enc, &c, zapcore.InfoLevel)))
	ctx := context.Background()
	s := display.Screen{State: display.Paid, Amount: 123456}
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Show(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(c.N)/float64(b.N), "bytes/show")
}
