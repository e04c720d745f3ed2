package web

import (
	"bufio"
	"context"
	"io"
	"testing"

	"github.com/kioskd/kioskd/display"
)

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// BenchmarkShow measures a Show until a connected SSE client (over loopback
// HTTP) has received the event, and the bytes each event costs on the wire.
func BenchmarkShow(b *testing.B) {
	d := serve(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := openStream(b, ctx, d)
	defer s.body.Close()
	cr := &countingReader{r: s.body.(io.Reader)}
	s.sc = bufio.NewScanner(cr)
	s.next(b) // the current screen, sent on connect
	screens := []display.Screen{{State: display.Paying, Amount: 123456}, {State: display.Paid, Amount: 123456}}
	cr.n = 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := d.Show(ctx, screens[i%2]); err != nil {
			b.Fatal(err)
		}
		if e := s.next(b); e.State != screens[i%2].State.String() {
			b.Fatalf("got %s", e.State)
		}
	}
	b.ReportMetric(float64(cr.n)/float64(b.N), "bytes/show")
}
