package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kioskd/kioskd/scanner/vmtest"
)

// probe answers "which disk loses unflushed writes when QEMU is killed?"
// by experiment: for the NBD disk and for a raw image file in each QEMU
// cache mode, the guest writes three markers (O_DIRECT without a flush;
// flushed; page cache only), QEMU is killed with SIGKILL (the NBD disk
// dropping its cache first), and the image is searched for the markers.
func probe(o options) error {
	type row struct {
		name  string
		drive diskArg
	}
	img := func(n string) string { return filepath.Join(o.dir, n+".img") }
	rows := []row{{name: "nbd volatile cache (cut keeps nothing)", drive: diskArg{nbdSock: filepath.Join(o.dir, "probe-nbd.sock")}}}
	for _, c := range []string{"writeback", "unsafe", "none", "writethrough", "directsync"} {
		rows = append(rows, row{name: "raw file cache=" + c, drive: diskArg{file: img("probe-" + c), cache: c}})
	}
	fmt.Printf("%-40s %-24s %-24s %-24s\n", "disk", "A: O_DIRECT, no flush", "B: fsync (flushed)", "C: page cache only")
	for _, r := range rows {
		path := r.drive.file
		var disk *vmtest.Disk
		var stop func()
		if r.drive.nbdSock != "" {
			path = img("probe-nbd")
			var err error
			if disk, err = vmtest.OpenDisk(path, 16<<20); err != nil {
				return err
			}
			ln, err := net.Listen("unix", r.drive.nbdSock)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); _ = disk.Serve(ctx, ln) }() // owner: this row
			stop = func() { cancel(); wg.Wait(); disk.Close() }
			disk.PowerOn()
		} else if err := os.WriteFile(path, make([]byte, 16<<20), 0o644); err != nil {
			return err
		}
		v, err := startVM(o.kernel, o.initrd, r.drive, "probe", 0, 0, o.verbose)
		if err != nil {
			return err
		}
		_, err = v.waitNote("probe written", 60*time.Second)
		if disk != nil {
			disk.Cut(vmtest.RNG(1, "disk"), 0)
		}
		v.kill()
		if stop != nil {
			stop()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var cols []string
		for i, m := range vmtest.ProbeMarkers {
			off := vmtest.ProbeOffsets[i]
			if bytes.HasPrefix(data[off:], []byte(m)) {
				cols = append(cols, "kept")
			} else {
				cols = append(cols, "LOST")
			}
		}
		fmt.Printf("%-40s %-24s %-24s %-24s\n", r.name, cols[0], cols[1], cols[2])
	}
	fmt.Println(strings.TrimSpace(`
A raw file keeps every write the guest made to its disk, flushed or not, in
every cache mode: QEMU writes into the host's page cache, which outlives a
killed QEMU (cache=unsafe only differs when the host itself crashes). Only
what the guest had not written yet (C) is lost. The NBD disk loses what was
not flushed, as a drive's volatile cache does, which the power-cut runs use.`))
	return nil
}
