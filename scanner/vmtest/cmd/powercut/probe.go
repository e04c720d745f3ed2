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
// cache mode, the guest writes three markers (flushed; then O_DIRECT with
// no flush after it; then page cache only), QEMU is killed with SIGKILL
// (the NBD disk dropping its cache first), and the image is searched for
// the markers.
func probe(o options) error {
	type row struct {
		name  string
		drive diskArg
	}
	rows := []row{{name: "nbd volatile cache (cut keeps nothing)", drive: diskArg{nbdSock: filepath.Join(o.dir, "probe-nbd.sock")}}}
	for _, c := range []string{"writeback", "unsafe", "none", "writethrough", "directsync"} {
		rows = append(rows, row{name: "raw file cache=" + c, drive: diskArg{file: filepath.Join(o.dir, "probe-"+c+".img"), cache: c}})
	}
	fmt.Printf("%-40s %-24s %-24s %-24s\n", "disk", "A: O_DIRECT, no flush", "B: fsync (flushed)", "C: page cache only")
	for _, r := range rows {
		kept, err := probeDisk(o, r.drive)
		if err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		fmt.Printf("%-40s %-24s %-24s %-24s\n", r.name, word(kept[0]), word(kept[1]), word(kept[2]))
	}
	fmt.Println(strings.TrimSpace(`
A raw file keeps every write the guest made to its disk, flushed or not, in
every cache mode: QEMU writes into the host's page cache, which outlives a
killed QEMU (QEMU's documentation: cache=unsafe differs only when the host
itself crashes). Only what the guest had not written yet (C) is lost. The
NBD disk loses what was not flushed, as a drive's volatile cache does; the
power-cut runs use it.`))
	return nil
}

func word(kept bool) string {
	if kept {
		return "kept"
	}
	return "LOST"
}

// control is the power-cut run's positive control: on the NBD disk a
// killed guest must lose its unflushed write and keep its flushed one,
// else the cuts would prove nothing.
func control(o options) error {
	kept, err := probeDisk(o, diskArg{nbdSock: filepath.Join(o.dir, "probe-nbd.sock")})
	if err != nil {
		return fmt.Errorf("control: %w", err)
	}
	if kept != [3]bool{false, true, false} {
		return fmt.Errorf("control: the NBD disk kept A=%v B=%v C=%v after a cut; want only the flushed B", kept[0], kept[1], kept[2])
	}
	fmt.Println("powercut: control passed: after a cut the disk kept the flushed write and lost the unflushed one and the page cache")
	return nil
}

// probeDisk boots the probe guest on d, cuts the power once the markers
// are written, and reports which of them the image kept.
func probeDisk(o options, d diskArg) (kept [3]bool, err error) {
	path := d.file
	var disk *vmtest.Disk
	if d.nbdSock != "" {
		path = strings.TrimSuffix(d.nbdSock, ".sock") + ".img"
		os.Remove(path)
		os.Remove(d.nbdSock)
		if disk, err = vmtest.OpenDisk(path, 16<<20); err != nil {
			return kept, err
		}
		defer disk.Close()
		ln, err := net.Listen("unix", d.nbdSock)
		if err != nil {
			return kept, err
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); _ = disk.Serve(ctx, ln) }() // owner: probeDisk
		defer func() { cancel(); wg.Wait() }()
		disk.PowerOn()
	} else if err := os.WriteFile(path, make([]byte, 16<<20), 0o644); err != nil {
		return kept, err
	}
	v, err := startVM(o.kernel, o.initrd, d, "probe", 0, 0, o.verbose)
	if err != nil {
		return kept, err
	}
	_, werr := v.waitNote("probe written", 90*time.Second)
	if disk != nil {
		disk.Cut(vmtest.RNG(1, "disk"), 0)
	}
	v.kill()
	if werr != nil {
		return kept, werr
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return kept, err
	}
	for i, m := range vmtest.ProbeMarkers {
		kept[i] = bytes.HasPrefix(data[vmtest.ProbeOffsets[i]:], []byte(m))
	}
	return kept, nil
}
