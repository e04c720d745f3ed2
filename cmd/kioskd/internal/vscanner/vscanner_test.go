package vscanner

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A payload written into the input path (as `echo … > /dev/pts/N` does)
// comes out unchanged on the device path the serial driver opens.
func TestInputReachesDevice(t *testing.T) {
	s, dev, stop := running(t, nil)
	in, err := os.OpenFile(s.Input, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	payload := `{"id_loyalty":"u1","encrypted":"QUJD","sign":"REVG"}` + "\n"
	if _, err := in.WriteString(payload); err != nil {
		t.Fatal(err)
	}
	in.Close()
	if got := readDevice(t, dev, func(got string) bool { return len(got) >= len(payload) }); got != payload {
		t.Fatalf("device got %q, want %q", got, payload)
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
}

// Lines typed on stdin reach the device ended with CR, and Run returns when
// the context ends even though stdin stays open.
func TestStdinLinesReachDevice(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	_, dev, stop := running(t, r)
	w.WriteString("pasted-payload\n")
	if got := readDevice(t, dev, func(got string) bool { return strings.HasSuffix(got, "\r") }); got != "pasted-payload\r" {
		t.Fatalf("device got %q", got)
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
}

// running opens a Scanner, runs it with stdin (nil: none) and opens its
// device end as the serial driver does. stop (at the latest when the test
// ends) ends Run and returns its error; Run still going 5 s after its
// context ended fails the test.
func running(t *testing.T, stdin *os.File) (s *Scanner, dev *os.File, stop func() error) {
	t.Helper()
	s, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, stdin) }()
	stop = sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not end with its context")
			return nil
		}
	})
	t.Cleanup(func() { stop() })
	dev, err = os.OpenFile(s.Device, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	return s, dev, stop
}

// readDevice reads dev until what it read is done, for at most 5 s.
func readDevice(t *testing.T, dev *os.File, done func(got string) bool) string {
	t.Helper()
	dev.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got strings.Builder
	buf := make([]byte, 256)
	for !done(got.String()) {
		n, err := dev.Read(buf)
		if err != nil {
			t.Fatalf("read device after %q: %v", got.String(), err)
		}
		got.Write(buf[:n])
	}
	return got.String()
}
