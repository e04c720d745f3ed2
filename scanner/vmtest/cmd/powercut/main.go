// Command powercut cuts the power of a kiosk again and again and checks
// that no payment is lost. kioskd runs in a QEMU guest with its journal on
// ext4 on a virtual disk whose write cache is volatile (vmtest.Disk, served
// over NBD from this process); the Smart Pay simulator runs here, outside
// the cut, reached from the guest over QEMU's user network; the sales are
// driven from here through kioskd's API (TCP, bearer token). Each cut is
// planned from its seed (vmtest.PlanCut): at a random time, at a commit or
// another call reaching the service, or at a disk flush; QEMU is killed
// (SIGKILL) and the disk drops its cache. The guest then boots on the same
// disk, reports the journal it finds, kioskd recovers, and the simulator's
// state is checked against what the host saw (kiosktest.Check).
//
//	powercut -kernel vmlinux -initrd initrd-powercut.cpio [-n N | -duration 3m] [-seed S] [-kind commit] [-cut SEED]
//	powercut -kernel vmlinux -initrd initrd-powercut.cpio -probe
//
// scanner/vmtest/run.sh builds the initramfs and runs it (`run.sh powercut`;
// KIOSKD_POWERCUT_N=300 for a long run).
package main

import (
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "powercut:", err)
		os.Exit(1)
	}
}

type options struct {
	kernel, initrd, dir string
	n                   int
	duration            time.Duration
	seed, cutSeed       uint64
	diskMode, cache     string
	kind                string
	probe, verbose      bool
	control             bool
}

func run() error {
	var o options
	flag.StringVar(&o.kernel, "kernel", "", "guest kernel (vmlinux)")
	flag.StringVar(&o.initrd, "initrd", "", "guest initramfs with /bin/powerguest and /bin/kioskd")
	flag.StringVar(&o.dir, "dir", "", "work folder (default: a temporary one, removed)")
	flag.IntVar(&o.n, "n", 0, "number of cuts (0: as many as fit in -duration)")
	flag.DurationVar(&o.duration, "duration", 0, "time budget for the cuts, e.g. 3m (with -n 0)")
	flag.Uint64Var(&o.seed, "seed", 0, "the run's seed (0: a random one, printed); cut i's seed derives from it")
	flag.Uint64Var(&o.cutSeed, "cut", 0, "replay one cut: its seed, as printed (implies -n 1)")
	flag.StringVar(&o.kind, "kind", "", "only cuts of this kind: timed, commit (the commit/fsync window), call, flush")
	flag.StringVar(&o.diskMode, "disk", "nbd", "nbd: the volatile-cache disk; file: a raw image file (QEMU -drive cache=-cache)")
	flag.StringVar(&o.cache, "cache", "writeback", "QEMU cache mode with -disk file")
	flag.BoolVar(&o.probe, "probe", false, "run the cache probe instead: what a killed QEMU loses, per disk kind")
	flag.BoolVar(&o.control, "control", true, "first check that a cut loses an unflushed write (one boot)")
	flag.BoolVar(&o.verbose, "v", false, "echo the guest console")
	flag.Parse()
	if o.kernel == "" || o.initrd == "" {
		return errors.New("-kernel and -initrd are required")
	}
	if o.dir == "" {
		d, err := os.MkdirTemp("", "kioskd-powercut-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		o.dir = d
		// Interrupted: QEMU dies with us (Pdeathsig); leave no folder.
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		go func() { // owner: the process; ends it on a signal
			<-sigs
			os.RemoveAll(d)
			os.Exit(130)
		}()
	}
	if o.probe {
		return probe(o)
	}
	if o.cutSeed != 0 {
		o.n = 1
	}
	if o.n <= 0 && o.duration <= 0 {
		return errors.New("give -n or -duration")
	}
	if o.seed == 0 {
		var b [8]byte
		_, _ = crand.Read(b[:])
		o.seed = binary.BigEndian.Uint64(b[:])
	}
	b, err := newBed(o)
	if err != nil {
		return err
	}
	defer b.close()
	return b.run()
}
