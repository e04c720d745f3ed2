package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kioskd/kioskd/scanner/vmtest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "vmhost:", err)
		os.Exit(1)
	}
}

// devices are the QEMU USB devices the guest can unplug and plug back, with
// the properties device_add needs to recreate them on the same port.
var devices = map[string]map[string]any{
	"kbd0": {"driver": "usb-kbd", "id": "kbd0", "bus": "xhci.0", "port": "1"},
	"us0":  {"driver": "usb-serial", "id": "us0", "bus": "xhci.0", "port": "2", "chardev": "ser0", "always-plugged": true},
	"us1":  {"driver": "usb-serial", "id": "us1", "bus": "xhci.0", "port": "3", "chardev": "ser1", "always-plugged": true},
}

func qemuArgs(kernel, initrd, drive, dir, appendArgs string, mem int) []string {
	accel := "tcg"
	// KVM here is nested and paravirtual: the guest dies in emulation
	// failures. Use it only where the CPU advertises vmx/svm.
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil && regexp.MustCompile(`\b(vmx|svm)\b`).Match(b) {
		if _, err := os.Stat("/dev/kvm"); err == nil && os.Getenv("KIOSKD_VM_KVM") == "1" {
			accel = "kvm"
		}
	}
	sock := func(n string) string { return filepath.Join(dir, n) }
	a := []string{"-accel", accel, "-m", strconv.Itoa(mem), "-smp", "2", "-nodefaults", "-nographic", "-no-reboot",
		"-kernel", kernel, "-initrd", initrd,
		"-append", "console=ttyS0 quiet panic=-1 " + appendArgs,
		"-serial", "stdio",
		"-chardev", "socket,id=ctl,path=" + sock("ctl.sock") + ",server=on,wait=off",
		"-serial", "chardev:ctl",
		"-qmp", "unix:" + sock("qmp.sock") + ",server=on,wait=off",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
		"-device", "qemu-xhci,id=xhci",
		"-chardev", "socket,id=ser0,path=" + sock("ser0.sock") + ",server=on,wait=off",
		"-chardev", "socket,id=ser1,path=" + sock("ser1.sock") + ",server=on,wait=off",
	}
	if drive != "" {
		// snapshot=on: the guest's writes go to a temporary overlay, so the
		// cached image stays as built.
		a = append(a, "-drive", "file="+drive+",if=virtio,format=raw,snapshot=on")
	}
	for _, id := range []string{"kbd0", "us0", "us1"} {
		p := devices[id]
		s := fmt.Sprintf("%s,id=%s,bus=%s,port=%s", p["driver"], id, p["bus"], p["port"])
		if c, ok := p["chardev"]; ok {
			s += fmt.Sprintf(",chardev=%s,always-plugged=on", c)
		}
		a = append(a, "-device", s)
	}
	return a
}

func run() error {
	kernel := flag.String("kernel", "", "guest kernel (vmlinux)")
	initrd := flag.String("initrd", "", "guest initramfs")
	drive := flag.String("drive", "", "root file system image for the systemd guest (raw, used as a snapshot)")
	dir := flag.String("dir", "", "folder for the sockets (default: a temporary one)")
	timeout := flag.Duration("timeout", 9*time.Minute, "kill the guest after this long")
	appendArgs := flag.String("append", "", "extra kernel command line (the guest reads vmtest.* options)")
	mem := flag.Int("m", 768, "guest memory, MiB")
	flag.Parse()
	if *kernel == "" || *initrd == "" {
		return errors.New("-kernel and -initrd are required")
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "kioskd-vm-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	start := time.Now()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", qemuArgs(*kernel, *initrd, *drive, *dir, *appendArgs, *mem)...)
	cmd.Stderr = os.Stderr
	console, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start qemu: %w", err)
	}

	h := &host{dir: *dir, pole: vmtest.NewPoleScreen()}
	var wg sync.WaitGroup
	verdicts := make(chan []string, 1)
	wg.Add(1)
	go func() { // owner: run; ends when QEMU closes its stdout
		defer wg.Done()
		verdicts <- echoConsole(console)
	}()
	hctx, hcancel := context.WithCancel(ctx)
	wg.Add(1)
	go func() { // owner: run; ends with hctx (QEMU exited) or a closed socket
		defer wg.Done()
		if err := h.serve(hctx); err != nil && hctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "vmhost: control:", err)
		}
	}()
	lines := <-verdicts
	werr := cmd.Wait()
	hcancel()
	h.close()
	wg.Wait()
	return summarize(lines, werr, ctx.Err(), time.Since(start))
}

// verdictRE finds a verdict anywhere in a console line: the first one shares
// its line with the firmware's last words.
var verdictRE = regexp.MustCompile(`VM (\S+): (PASS|FAIL)\b.*`)

// echoConsole copies the guest console to stdout and returns the verdict
// lines.
func echoConsole(r io.Reader) []string {
	var v []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		fmt.Println("guest| " + line)
		if m := verdictRE.FindString(line); m != "" {
			v = append(v, m)
		}
	}
	io.Copy(io.Discard, r)
	return v
}

func summarize(lines []string, werr, ctxErr error, took time.Duration) error {
	fmt.Println("==== kioskd VM test summary ====")
	fails := 0
	for _, l := range lines {
		fmt.Println(l)
		if verdictRE.FindStringSubmatch(l)[2] != "PASS" {
			fails++
		}
	}
	rc := 0
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		rc = ee.ExitCode()
	} else if werr != nil {
		rc = -1
	}
	fmt.Printf("scenarios: %d, failed: %d, qemu exit %d, %s\n", len(lines), fails, rc, took.Round(time.Second))
	switch {
	case ctxErr != nil:
		return fmt.Errorf("guest did not finish: %w", ctxErr)
	case rc != 1: // isa-debug-exit: (guest rc<<1)|1, so 1 means the guest reported 0
		return fmt.Errorf("guest exit: qemu rc %d (guest rc %d)", rc, (rc-1)/2)
	case len(lines) == 0:
		return errors.New("no scenario verdicts")
	case fails > 0:
		return fmt.Errorf("%d scenario(s) failed", fails)
	}
	fmt.Println("ALL PASS")
	return nil
}

// host answers the guest's control requests.
type host struct {
	dir string

	mu   sync.Mutex // guards the sockets and pole while reader goroutines run
	qmp  *vmtest.QMP
	ser  map[string]net.Conn
	pole *vmtest.PoleScreen
	raw  int // bytes received from the pole display

	conns []io.Closer
}

func dialRetry(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "unix", path)
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (h *host) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.conns {
		c.Close()
	}
	if h.qmp != nil {
		h.qmp.Close()
	}
}

func (h *host) serve(ctx context.Context) error {
	ctl, err := dialRetry(ctx, filepath.Join(h.dir, "ctl.sock"))
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.conns = append(h.conns, ctl)
	h.ser = map[string]net.Conn{}
	h.mu.Unlock()
	for _, n := range []string{"ser0", "ser1"} {
		c, err := dialRetry(ctx, filepath.Join(h.dir, n+".sock"))
		if err != nil {
			return err
		}
		h.mu.Lock()
		h.ser[n] = c
		h.conns = append(h.conns, c)
		h.mu.Unlock()
	}
	for {
		if _, err := os.Stat(filepath.Join(h.dir, "qmp.sock")); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	q, err := vmtest.DialQMP(ctx, filepath.Join(h.dir, "qmp.sock"))
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.qmp = q
	h.mu.Unlock()

	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(2)
	go func() { defer wg.Done(); h.readPole(h.ser["ser1"]) }()      // ends when the socket closes
	go func() { defer wg.Done(); h.drain("ser0", h.ser["ser0"]) }() // ditto

	r := bufio.NewReader(ctl)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		ans, err := h.handle(ctx, strings.Fields(line))
		if err != nil {
			fmt.Printf("host| %s: %v\n", strings.Fields(line)[0], err)
			fmt.Fprintf(ctl, "err %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
			continue
		}
		fmt.Fprintf(ctl, "ok %s\n", ans)
	}
}

func (h *host) readPole(c net.Conn) {
	b := make([]byte, 512)
	for {
		n, err := c.Read(b)
		if n > 0 {
			h.mu.Lock()
			h.pole.Write(b[:n])
			h.raw += n
			h.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

func (h *host) drain(name string, c net.Conn) {
	b := make([]byte, 512)
	for {
		n, err := c.Read(b)
		if n > 0 {
			fmt.Printf("host| %s sent %q\n", name, b[:n])
		}
		if err != nil {
			return
		}
	}
}

func (h *host) handle(ctx context.Context, f []string) (string, error) {
	arg := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	switch f[0] {
	case "hello":
		return "vmhost", nil
	case "serial": // serial <ser0|ser1> <b64>: bytes into a usb-serial port
		b, err := vmtest.UnB64(arg(2))
		if err != nil {
			return "", err
		}
		c := h.ser[arg(1)]
		if c == nil {
			return "", fmt.Errorf("no serial %q", arg(1))
		}
		_, err = c.Write(b)
		return "", err
	case "type": // type <b64> <ms per event>: a keyboard-wedge scan on usb-kbd
		b, err := vmtest.UnB64(arg(1))
		if err != nil {
			return "", err
		}
		gap, _ := strconv.Atoi(arg(2))
		t0 := time.Now()
		if err := h.typeText(ctx, string(b), time.Duration(gap)*time.Millisecond); err != nil {
			return "", err
		}
		took := time.Since(t0).Round(time.Millisecond)
		fmt.Printf("host| typed %d chars on usb-kbd in %s\n", len(b), took)
		return took.String(), nil
	case "unplug":
		return "", h.unplug(ctx, arg(1))
	case "plug":
		p, ok := devices[arg(1)]
		if !ok {
			return "", fmt.Errorf("unknown device %q", arg(1))
		}
		_, err := h.qmp.Execute(ctx, "device_add", p)
		return "", err
	case "pole-reset":
		h.mu.Lock()
		h.pole = vmtest.NewPoleScreen()
		h.raw = 0
		h.mu.Unlock()
		return "", nil
	case "pole-expect": // pole-expect <b64 text> <ms>: wait until a row showed text
		want, err := vmtest.UnB64(arg(1))
		if err != nil {
			return "", err
		}
		ms, _ := strconv.Atoi(arg(2))
		deadline := time.Now().Add(time.Duration(ms) * time.Millisecond)
		for {
			h.mu.Lock()
			lines, raw := h.pole.Lines(), h.raw
			h.mu.Unlock()
			h.mu.Lock()
			shown := h.pole.Shown(string(want))
			h.mu.Unlock()
			if shown {
				fmt.Printf("host| pole display (%d bytes) showed %q, now %q\n", raw, want, lines)
				return vmtest.B64([]byte(strings.Join(lines, "\n"))), nil
			}
			if time.Now().After(deadline) {
				return "", fmt.Errorf("pole display (%d bytes) shows %q, not %q", raw, lines, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return "", fmt.Errorf("unknown request %q", f[0])
}

func (h *host) unplug(ctx context.Context, id string) error {
	if _, ok := devices[id]; !ok {
		return fmt.Errorf("unknown device %q", id)
	}
	// Drop stale events so the wait below sees this removal only.
	for len(h.qmp.Events()) > 0 {
		<-h.qmp.Events()
	}
	if _, err := h.qmp.Execute(ctx, "device_del", map[string]any{"id": id}); err != nil {
		return err
	}
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case ev := <-h.qmp.Events():
			var d struct {
				Device string `json:"device"`
			}
			json.Unmarshal(ev.Data, &d)
			if ev.Event == "DEVICE_DELETED" && d.Device == id {
				return nil
			}
		case <-t.C:
			return fmt.Errorf("no DEVICE_DELETED for %s", id)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// typeText types like a US keyboard-wedge scanner. QEMU's usb-kbd queues at
// most 16 key events and sends one per interrupt poll, so the events are
// paced (gap per event) instead of sent in one burst, and Shift stays down
// across consecutive shifted characters as a scanner's firmware would.
func (h *host) typeText(ctx context.Context, text string, gap time.Duration) error {
	ks, err := vmtest.USKeyStrokes(text)
	if err != nil {
		return err
	}
	if gap <= 0 {
		gap = 10 * time.Millisecond
	}
	for _, ev := range vmtest.InputEventGroups(ks) {
		if _, err := h.qmp.Execute(ctx, "input-send-event", map[string]any{"events": ev}); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(len(ev)) * gap):
		}
	}
	return nil
}
