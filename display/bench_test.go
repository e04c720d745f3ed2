package display

import (
	"context"
	"testing"
)

type nop struct{}

func (nop) Show(context.Context, Screen) error { return nil }
func (nop) Close() error                       { return nil }

// BenchmarkFanoutShow measures what the payment flow pays per screen: a
// Show to four displays, one of them hung.
func BenchmarkFanoutShow(b *testing.B) {
	f := NewFanout(nil, FanoutOptions{}, Target{"a", nop{}}, Target{"b", nop{}}, Target{"c", nop{}},
		Target{"hung", &stuck{}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f.Show(Screen{State: Paying, Amount: int64(i)})
	}
	b.StopTimer()
	cancel()
	<-done
}

// BenchmarkShortLong measures building the texts of a screen.
func BenchmarkShortLong(b *testing.B) {
	s := Screen{State: Paid, Amount: 123456}
	b.ReportAllocs()
	for b.Loop() {
		_ = Short(s)
		_ = Long(s)
	}
}
