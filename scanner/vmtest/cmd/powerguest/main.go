//go:build linux

// Command powerguest is the guest side of the power-cut bed
// (scanner/vmtest/cmd/powercut): /init hands over to it when the kernel
// command line carries vmtest.powercut=. It loads the virtio and ext4
// modules, brings up the network, mounts the cut disk, reports the journal
// it finds there (bbolt's consistency check and the journal package's view
// of every sale), relays the API and the simulator between the guest's
// loopback and QEMU's user network, and runs kioskd until the power goes.
//
// vmtest.powercut=probe instead writes three markers to the raw disk (one
// flushed, one O_DIRECT with no flush after it, one left in the page cache)
// for the host to look for after killing QEMU.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/creack/pty"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/kioskd/kioskd/payment/journal"
	"github.com/kioskd/kioskd/payment/kiosktest"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
	"github.com/kioskd/kioskd/scanner/vmtest"
)

func main() {
	mode, simPort := cmdline("vmtest.powercut"), cmdline("vmtest.simport")
	say("start", mode) // the kernel booted; nothing has touched the disk yet
	var err error
	switch mode {
	case "probe":
		err = probe()
	case "run":
		err = run(simPort)
	default:
		err = fmt.Errorf("unknown vmtest.powercut=%q", mode)
	}
	if err != nil {
		say("fatal", err.Error())
	}
	// The host ends the guest (the power cut); never return to /init,
	// which would power off cleanly. (A bare select{} is a deadlock to the
	// runtime when no other goroutine is left, and init's exit a panic.)
	for {
		time.Sleep(time.Hour)
	}
}

// say prints a line for the host.
func say(kind, text string) {
	fmt.Println(vmtest.GuestLinePrefix + kind + " " + strings.ReplaceAll(text, "\n", " | "))
}

func cmdline(key string) string {
	b, _ := os.ReadFile("/proc/cmdline")
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

func sh(name string, args ...string) error {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func modprobe(mods ...string) error {
	for _, m := range mods {
		if err := sh("modprobe", m); err != nil {
			return err
		}
	}
	return nil
}

func waitPath(p string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		if _, err := os.Stat(p); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear in %s", p, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func run(simPort string) error {
	if simPort == "" {
		return errors.New("no vmtest.simport on the kernel command line")
	}
	if err := modprobe("virtio_pci", "virtio_blk", "virtio_net", "crc32c_generic", "ext4"); err != nil {
		return err
	}
	if err := waitPath("/dev/vda", 10*time.Second); err != nil {
		return err
	}
	if err := waitPath("/sys/class/net/eth0", 10*time.Second); err != nil {
		return err
	}
	for _, c := range [][]string{
		{"ip", "addr", "add", vmtest.GuestIP + "/24", "dev", "eth0"},
		{"ip", "link", "set", "eth0", "up"},
		{"ip", "route", "add", "default", "via", vmtest.HostFromGuest},
	} {
		if err := sh(c[0], c[1:]...); err != nil {
			return err
		}
	}
	var rep vmtest.BootReport
	if err := os.MkdirAll(vmtest.GuestDataDir, 0o755); err != nil {
		return err
	}
	t0 := time.Now()
	// ext4 replays its own journal here: the mount is the file system's
	// recovery from the cut.
	err := unix.Mount("/dev/vda", vmtest.GuestDataDir, "ext4", 0, "")
	rep.MountMillis = time.Since(t0).Milliseconds()
	if err != nil {
		rep.MountError = err.Error()
		fmt.Println(rep.Line())
		return fmt.Errorf("mount /dev/vda: %w", err)
	}
	jpath := filepath.Join(vmtest.GuestKioskDir, "journal.db")
	inspect(jpath, &rep)
	fmt.Println(rep.Line())

	ctx := context.Background()
	go relay(ctx, fmt.Sprintf("%s:%d", vmtest.GuestIP, vmtest.GuestRelayPort), fmt.Sprintf("127.0.0.1:%d", vmtest.GuestAPIPort))
	go relay(ctx, fmt.Sprintf("127.0.0.1:%d", vmtest.GuestSimPort), vmtest.HostFromGuest+":"+simPort)

	// The scanner: a pty nobody writes to (the host scans through the
	// API); kioskd needs one to start.
	ptm, pts, err := pty.Open()
	if err != nil {
		return err
	}
	defer ptm.Close()
	defer pts.Close()
	k := vmtest.GuestKioskDir
	cfg := kiosktest.Config{KassaID: sim.KassaID(1), ServiceURL: fmt.Sprintf("https://127.0.0.1:%d", vmtest.GuestSimPort),
		CA: k + "/ca.crt", Cert: k + "/kassa.crt", Key: k + "/kassa.key", Journal: jpath, Socket: "/run/kioskd.sock",
		Listen: fmt.Sprintf("127.0.0.1:%d", vmtest.GuestAPIPort), TokenFile: k + "/token", ScannerPort: pts.Name(),
		Handover: "host"}
	if err := os.WriteFile("/run/devices.yaml", []byte(cfg.YAML()), 0o600); err != nil {
		return err
	}
	cmd := exec.Command("/bin/kioskd", "run", "-config", "/run/devices.yaml")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	say("kioskd", fmt.Sprintf("started, pid %d", cmd.Process.Pid))
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fmt.Println("kioskd| " + sc.Text())
	}
	return fmt.Errorf("kioskd exited: %v", cmd.Wait())
}

// inspect checks a copy of the journal (so nothing is written to the cut
// disk before kioskd opens it): bbolt's page-level consistency check, then
// the journal package's own reading of every record.
func inspect(path string, rep *vmtest.BootReport) {
	src, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	rep.Journal = true
	if err != nil {
		rep.OpenError = err.Error()
		return
	}
	cp := "/tmp/journal-copy.db"
	if err := os.WriteFile(cp, src, 0o600); err != nil {
		rep.OpenError = err.Error()
		return
	}
	db, err := bolt.Open(cp, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		rep.OpenError = err.Error()
		return
	}
	_ = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			rep.CheckErrors = append(rep.CheckErrors, err.Error())
		}
		return nil
	})
	db.Close()
	j, err := journal.Open(cp)
	if err != nil {
		rep.OpenError = err.Error()
		return
	}
	defer j.Close()
	sales, err := j.Sales(false)
	if err != nil {
		rep.OpenError = err.Error()
		return
	}
	for _, s := range sales {
		rep.Sales = append(rep.Sales, vmtest.JournalSale{ID: s.ID, Phase: string(s.Phase), PurchaseID: s.PurchaseID, Amount: s.Amount, Outcome: s.Outcome})
	}
	refunds, err := j.Refunds(false)
	if err != nil {
		rep.OpenError = err.Error()
		return
	}
	for _, r := range refunds {
		rep.Refunds = append(rep.Refunds, vmtest.JournalRefund{ID: r.ID, Phase: string(r.Phase), Outcome: string(r.Outcome)})
	}
	fis, err := j.Fiscals(true)
	if err != nil {
		rep.OpenError = err.Error()
		return
	}
	rep.FiscalPending = len(fis)
}

// relay forwards every connection to from on to to.
func relay(ctx context.Context, from, to string) {
	ln, err := net.Listen("tcp", from)
	if err != nil {
		say("fatal", "relay: "+err.Error())
		return
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			say("fatal", "relay: "+err.Error())
			return
		}
		go func() { // owner: the connection; ends when either side closes
			defer c.Close()
			var d net.Dialer
			u, err := d.DialContext(ctx, "tcp", to)
			if err != nil {
				return
			}
			defer u.Close()
			done := make(chan struct{}, 2)
			go func() { io.Copy(u, c); u.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
			go func() { io.Copy(c, u); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
			<-done
			<-done
		}()
	}
}

var probeHeld *os.File

// probe writes the three markers of the cache-mode experiment to the raw
// disk: B flushed (fsync), then A with O_DIRECT and no flush after it (it
// reached the virtual disk only), then C buffered with the device held
// open (the guest's page cache only).
func probe() error {
	if err := modprobe("virtio_pci", "virtio_blk"); err != nil {
		return err
	}
	if err := waitPath("/dev/vda", 10*time.Second); err != nil {
		return err
	}
	block := func(s string) []byte {
		// O_DIRECT wants an aligned buffer: an anonymous mapping is.
		b, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
		if err != nil {
			panic(err)
		}
		copy(b, s)
		return b
	}
	// Held open until the power goes: the last close of a block device
	// writes its page cache back, which would save C.
	held, err := os.OpenFile("/dev/vda", os.O_RDWR, 0)
	if err != nil {
		return err
	}
	probeHeld = held
	// B first: its flush would make an earlier A durable too.
	if _, err := held.WriteAt(block(vmtest.ProbeMarkers[1]), vmtest.ProbeOffsets[1]); err != nil {
		return err
	}
	if err := held.Sync(); err != nil {
		return err
	}
	d, err := os.OpenFile("/dev/vda", os.O_RDWR|unix.O_DIRECT, 0)
	if err != nil {
		return err
	}
	if _, err := d.WriteAt(block(vmtest.ProbeMarkers[0]), vmtest.ProbeOffsets[0]); err != nil {
		return err
	}
	d.Close() // no flush on close of an O_DIRECT descriptor that is not the last
	if _, err := held.WriteAt(block(vmtest.ProbeMarkers[2]), vmtest.ProbeOffsets[2]); err != nil {
		return err
	}
	say("probe", "written")
	return nil
}
