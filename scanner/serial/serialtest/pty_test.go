package serialtest_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kioskd/kioskd/scanner/serial/serialtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Bytes written to the master arrive unchanged at whoever opens the link,
// before any driver set the line up: no CR turned into LF, no echo.
func TestRawFromTheStart(t *testing.T) {
	link := filepath.Join(t.TempDir(), "scanner0")
	p := serialtest.New(t, link)
	if _, err := p.Master.Write([]byte("QR\r12\x00\xff\n")); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(link)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make([]byte, 7)
	if _, err := io.ReadFull(f, got); err != nil || !bytes.Equal(got, []byte("QR\r12\x00\xff")) {
		t.Fatalf("read %q, %v", got, err)
	}
	if err := p.Master.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatalf("master has no deadlines: %v", err)
	}
	if n, err := p.Master.Read(make([]byte, 16)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("echo: read %d bytes, %v", n, err)
	}
}

// Close ends a pending read of the master, removes the link (only while it
// still leads to this pty) and may be called again.
func TestCloseUnplugs(t *testing.T) {
	dir := t.TempDir()
	link, other := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	p := serialtest.New(t, link)
	if err := p.Link(other); err != nil {
		t.Fatal(err)
	}
	q := serialtest.New(t, other) // udev re-pointed b at another device
	done := make(chan error)
	go func() {
		_, err := p.Master.Read(make([]byte, 1))
		done <- err
	}()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("read after Close succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the pending read")
	}
	if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("link left behind: %v", err)
	}
	if target, err := os.Readlink(other); err != nil || target != q.Slave.Name() {
		t.Errorf("another device's link removed: %q %v", target, err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
