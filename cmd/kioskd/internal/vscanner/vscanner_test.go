package vscanner

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A payload written into the input path (as `echo … > /dev/pts/N` does)
// comes out unchanged on the device path the serial driver opens.
func TestInputReachesDevice(t *testing.T) {
	s, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, nil) }()

	dev, err := os.OpenFile(s.Device, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	in, err := os.OpenFile(s.Input, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	payload := `{"id_loyalty":"u1","encrypted":"QUJD","sign":"REVG"}` + "\n"
	if _, err := in.WriteString(payload); err != nil {
		t.Fatal(err)
	}
	in.Close()

	dev.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got strings.Builder
	buf := make([]byte, 256)
	for got.Len() < len(payload) {
		n, err := dev.Read(buf)
		if err != nil {
			t.Fatalf("read device after %q: %v", got.String(), err)
		}
		got.Write(buf[:n])
	}
	if got.String() != payload {
		t.Fatalf("device got %q, want %q", got.String(), payload)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Run: %v", err)
	}
}

// Lines typed on stdin reach the device ended with CR, and Run returns when
// the context ends even though stdin stays open.
func TestStdinLinesReachDevice(t *testing.T) {
	s, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, r) }()

	dev, err := os.OpenFile(s.Device, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	w.WriteString("pasted-payload\n")
	dev.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got strings.Builder
	buf := make([]byte, 64)
	for !strings.HasSuffix(got.String(), "\r") {
		n, err := dev.Read(buf)
		if err != nil {
			t.Fatalf("read device after %q: %v", got.String(), err)
		}
		got.Write(buf[:n])
	}
	if got.String() != "pasted-payload\r" {
		t.Fatalf("device got %q", got.String())
	}
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not end with its context while stdin stayed open")
	}
}
