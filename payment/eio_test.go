package payment_test

import (
	"context"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

// failingDisk is a directory whose writes and fsyncs start returning EIO
// when fail is set: a FUSE pass-through (go-fuse's loopback) over a
// temporary directory, so the journal meets a real kernel error path.
type failingDisk struct {
	*fs.LoopbackNode
	fail *atomic.Bool
}

func (n *failingDisk) WrapChild(_ context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &failingDisk{ops.(*fs.LoopbackNode), n.fail}
}

func (n *failingDisk) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, fl, errno := n.LoopbackNode.Open(ctx, flags)
	return n.wrap(fh), fl, errno
}

func (n *failingDisk) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	in, fh, fl, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	return in, n.wrap(fh), fl, errno
}

func (n *failingDisk) wrap(fh fs.FileHandle) fs.FileHandle {
	if lf, ok := fh.(*fs.LoopbackFile); ok {
		return &failingFile{lf, n.fail}
	}
	return fh
}

type failingFile struct {
	*fs.LoopbackFile
	fail *atomic.Bool
}

func (f *failingFile) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if f.fail.Load() {
		return 0, syscall.EIO
	}
	return f.LoopbackFile.Write(ctx, data, off)
}

func (f *failingFile) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if f.fail.Load() {
		return syscall.EIO
	}
	return f.LoopbackFile.Fsync(ctx, flags)
}

// mountFailingDisk mounts a failingDisk for the test (root: FUSE without
// fusermount); skipped elsewhere, under CI it fails.
func mountFailingDisk(t *testing.T) (string, *atomic.Bool) {
	t.Helper()
	backing, dir := t.TempDir(), t.TempDir()
	var st syscall.Stat_t
	if err := syscall.Stat(backing, &st); err != nil {
		t.Fatal(err)
	}
	fail := new(atomic.Bool)
	data := &fs.LoopbackRoot{Path: backing, Dev: uint64(st.Dev)}
	root := &failingDisk{&fs.LoopbackNode{RootData: data}, fail}
	data.RootNode = root
	srv, err := fs.Mount(dir, root, &fs.Options{MountOptions: fuse.MountOptions{DirectMount: true, FsName: "kioskd-failing-disk"}})
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mount a FUSE file system (CI runs as root): %v", err)
		}
		t.Skipf("cannot mount FUSE here (%v): run as root", err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	return dir, fail
}

// The journal on a disk that starts returning EIO: as with a full disk, the
// sale in flight waits before its next call, scans are refused with a
// fault and the reason in Snapshot, and all resumes once the disk works.
func TestFailingDiskRefusesAndResumes(t *testing.T) {
	t.Parallel()
	dir, fail := mountFailingDisk(t)
	j := openJournalIn(t, dir)
	se := startSim(t, sim.Config{SuccessDelay: time.Nanosecond})
	clock := newFakeClock(t)
	h := run(t, payment.Config{Clock: clock}, se.Client, j)
	h.ready()
	h.scan(se.Payload(t, "before"))
	h.state(payment.WaitingAmount)
	fail.Store(true)
	if err := h.flow.SetAmount(context.Background(), 300, ""); err != nil {
		t.Fatal(err)
	}
	h.faultEvent()
	if st := h.flow.Snapshot(); st.JournalProblem == "" || st.State != payment.WaitingAmount {
		t.Fatalf("snapshot %+v", st)
	}
	if n := se.State().Requests[sim.MethodRelease]; n != 0 {
		t.Fatalf("%d releases without their record", n)
	}
	h.scan(se.Payload(t, "refused"))
	if e := h.faultEvent(); e.Source != "test" {
		t.Fatalf("a scan on a failing disk: %+v", e)
	}
	fail.Store(false)
	clock.advance(2, 10*time.Second) // the sale's next write and the journal probe
	paid := h.paid(clock, payment.Paid)
	if err := h.flow.Handover(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	h.state(payment.Completed)
	if p, _ := se.State().Purchase(paid.PurchaseID); !p.Confirmed {
		t.Fatalf("purchase %+v", p)
	}
	if st := h.flow.Snapshot(); st.JournalProblem != "" {
		t.Fatalf("journal problem after the disk came back: %+v", st)
	}
}
