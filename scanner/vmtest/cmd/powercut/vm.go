package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kioskd/kioskd/scanner/vmtest"
)

// vm is one boot of the guest: one QEMU process, from start to the cut.
type vm struct {
	cmd     *exec.Cmd
	started time.Time
	exited  chan struct{} // closed once QEMU is gone and its console read
	boot    chan vmtest.BootReport
	notes   chan string // other guest lines: "fatal …", "probe …", "kioskd …"
	verbose bool

	mu      sync.Mutex
	lines   []string // the console's last lines, for a failure's report
	reached bool     // the guest program said something: the kernel booted
}

// disk describes the guest's disk to QEMU.
type diskArg struct {
	nbdSock string // the volatile-cache disk, over NBD
	file    string // or a raw image file
	cache   string // QEMU cache mode of a file
}

func (d diskArg) drive() string {
	if d.nbdSock != "" {
		// cache=writeback gives the guest a volatile write cache, so it
		// sends flushes, which reach the Disk as NBD flushes.
		return "file=nbd+unix:///?socket=" + d.nbdSock + ",format=raw,if=virtio,cache=writeback"
	}
	return "file=" + d.file + ",format=raw,if=virtio,cache=" + d.cache
}

// startVM boots the kernel with the power-cut guest in the given mode; a
// non-zero apiPort forwards the host's 127.0.0.1:apiPort to the guest's
// API relay.
func startVM(kernel, initrd string, d diskArg, mode string, simPort, apiPort int, verbose bool) (*vm, error) {
	netdev := "user,id=n0"
	if apiPort != 0 {
		netdev += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-%s:%d", apiPort, vmtest.GuestIP, vmtest.GuestRelayPort)
	}
	// One vCPU: two TCG vCPU threads beside the host's simulator and NBD
	// server on a 2-core machine starved each other into RCU stalls and
	// soft lockups (a guest frozen for a minute fails its cut); one boots
	// as fast and never stalled.
	args := []string{"-accel", vmtest.Accel(), "-m", "512", "-smp", "1", "-nodefaults", "-nographic", "-no-reboot",
		"-kernel", kernel, "-initrd", initrd,
		// no_timer_check: on a loaded host the TCG vCPU can be too slow for
		// the kernel's IO-APIC timer check, which then panics the boot.
		"-append", fmt.Sprintf("console=ttyS0 quiet panic=-1 no_timer_check vmtest.powercut=%s vmtest.simport=%d", mode, simPort),
		"-serial", "stdio",
		"-drive", d.drive(),
		"-netdev", netdev, "-device", "virtio-net-pci,netdev=n0,romfile=",
	}
	cmd := exec.Command("qemu-system-x86_64", args...)
	// QEMU dies with this process, however it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	v := &vm{cmd: cmd, started: time.Now(), exited: make(chan struct{}), boot: make(chan vmtest.BootReport, 1),
		notes: make(chan string, 64), verbose: verbose}
	go func() { // owner: the QEMU process; ends when it exits
		v.read(out)
		_ = cmd.Wait()
		close(v.exited)
	}()
	return v, nil
}

func (v *vm) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		v.mu.Lock()
		v.lines = append(v.lines, line)
		if len(v.lines) > 300 {
			v.lines = v.lines[len(v.lines)-200:]
		}
		v.mu.Unlock()
		if v.verbose {
			fmt.Printf("guest| %5.1fs %s\n", time.Since(v.started).Seconds(), line)
		}
		kind, rest, rep, err := vmtest.ParseGuestLine(line)
		if kind != "" {
			v.mu.Lock()
			v.reached = true
			v.mu.Unlock()
		}
		switch {
		case err != nil:
			v.note("fatal " + err.Error())
		case kind == "boot":
			select {
			case v.boot <- rep:
			default:
			}
		case kind != "":
			v.note(kind + " " + rest)
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

func (v *vm) note(s string) {
	select {
	case v.notes <- s:
	default: // nobody reads old notes; never block the console
	}
}

// reachedGuest reports whether the guest program started: before it,
// nothing touched the disk, so a boot that dies earlier (the kernel's timer
// check panicking on a starved TCG vCPU) can simply be tried again.
func (v *vm) reachedGuest() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.reached
}

// kill is the power cut: SIGKILL, then wait until QEMU is gone.
func (v *vm) kill() {
	_ = v.cmd.Process.Kill()
	<-v.exited
}

// tail is the console's last n lines.
func (v *vm) tail(n int) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	l := v.lines
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return "  guest| " + strings.Join(l, "\n  guest| ")
}

// waitNote waits for a guest line starting with prefix.
func (v *vm) waitNote(prefix string, d time.Duration) (string, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case n := <-v.notes:
			if strings.HasPrefix(n, prefix) {
				return n, nil
			}
			if strings.HasPrefix(n, "fatal") {
				return "", fmt.Errorf("guest: %s", n)
			}
		case <-v.exited:
			return "", fmt.Errorf("qemu exited before %q\n%s", prefix, v.tail(30))
		case <-t.C:
			return "", fmt.Errorf("no %q from the guest in %s\n%s", prefix, d, v.tail(30))
		}
	}
}

// sparseCopy copies a disk image (mostly holes) quickly.
func sparseCopy(src, dst string) error {
	out, err := exec.Command("cp", "--sparse=always", src, dst).CombinedOutput()
	if err != nil {
		return fmt.Errorf("cp %s: %w: %s", src, err, out)
	}
	return nil
}

// fsck replays the ext4 journal on a copy of the image, as the next mount
// would, then checks the file system read-only; "" means clean.
func fsck(image, scratch string) string {
	if err := sparseCopy(image, scratch); err != nil {
		return err.Error()
	}
	defer os.Remove(scratch)
	// Exit 1 only says the journal was replayed.
	if out, err := exec.Command("e2fsck", "-E", "journal_only", "-y", scratch).CombinedOutput(); err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() > 1 {
			return fmt.Sprintf("e2fsck journal replay: %v: %s", err, out)
		}
	}
	if out, err := exec.Command("e2fsck", "-f", "-n", scratch).CombinedOutput(); err != nil {
		return fmt.Sprintf("e2fsck -fn: %v: %s", err, out)
	}
	return ""
}
