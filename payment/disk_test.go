package payment_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

// smallDisk mounts a tmpfs of size bytes for the test: a real file system
// that fills up. It needs root (CI runs as root); elsewhere the test is
// skipped, under CI it fails.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mount a tmpfs (CI runs as root): %v: %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs here (%v): run as root", err)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fill writes a file into dir until the file system is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return path
		}
	}
}

// The journal on a disk that fills up: the sale whose record cannot be
// written waits (no call without its record), new scans are refused with a
// fault on the display and the reason in Snapshot (health), and everything
// resumes on its own once space returns; every sale ends consistent.
func TestDiskFullRefusesAndResumes(t *testing.T) {
	t.Parallel()
	dir := smallDisk(t, "2m")
	j := openJournalIn(t, dir)
	se := startSim(t, sim.Config{SuccessDelay: time.Nanosecond})
	clock := newFakeClock(t)
	h := run(t, payment.Config{FixedAmount: 100, Clock: clock}, se.Client, j)
	clock.autoAdvance(restingTimers, 100*time.Millisecond) // polls, linger and the waits between writes: no host here
	h.ready()
	filler := fill(t, dir)
	var stuck payment.Event
	for i := 0; stuck.Kind != payment.KindFault; i++ {
		if i == 500 {
			t.Fatal("500 sales fitted in the journal's free pages: the disk never filled")
		}
		h.scan(se.Payload(t, "full"))
		stuck = h.next("the sale's end or a fault", func(e payment.Event) bool {
			return e.Kind == payment.KindFault || e.Kind == payment.KindState && e.State == payment.Idle
		})
	}
	st := h.flow.Snapshot()
	if st.JournalProblem == "" {
		t.Fatalf("no journal problem in %+v", st)
	}
	h.scan(se.Payload(t, "refused"))
	if e := h.faultEvent(); e.Source != "test" {
		t.Fatalf("a scan while the disk is full: %+v, want a fault", e)
	}
	os.Remove(filler) // space returns
	h.next("the stuck sale's end", func(e payment.Event) bool { return e.Kind == payment.KindState && e.State.Terminal() })
	h.state(payment.Idle)
	if st := h.flow.Snapshot(); st.JournalProblem != "" {
		t.Fatalf("journal problem after space returned: %+v", st)
	}
	h.scan(se.Payload(t, "after"))
	if e := h.terminal(); e.State != payment.Completed {
		t.Fatalf("a sale after space returned ended %s", e.State)
	}
	for _, p := range se.State().Purchases {
		if p.Status == "success" && !p.Confirmed {
			t.Fatalf("purchase %s paid, not confirmed", p.ID)
		}
		if p.IDLoyalty == "refused" {
			t.Fatalf("the scan refused while the disk was full was committed: %+v", p)
		}
	}
}
