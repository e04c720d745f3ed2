package kiosktest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Build compiles cmd/kioskd into dir and returns the binary's path; flags
// go to go build as they are (-race for a test that runs with it). It needs
// the go command (PATH, else GOROOT/bin) and cgo's libusb headers, as the
// README's build does.
func Build(ctx context.Context, dir string, flags ...string) (string, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(dir, "kioskd")
	args := append(append([]string{"build", "-o", out}, flags...), "github.com/kioskd/kioskd/cmd/kioskd")
	cmd := exec.CommandContext(ctx, gobin, args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("kiosktest: go build ./cmd/kioskd: %w\n%s", err, b)
	}
	return out, nil
}

// Config is the devices.yaml of a test agent: one serial scanner, the log
// display, the API on a socket (and optionally loopback TCP with a token).
type Config struct {
	KassaID     string
	ServiceURL  string // https://host:port of the simulator
	CA, Cert    string // PEM files
	Key         string
	Journal     string
	Socket      string
	Listen      string // optional loopback API address; needs TokenFile
	TokenFile   string
	ScannerPort string        // a serial port (a pty works)
	Framing     string        // the scanner's framing; "" leaves the default
	Handover    string        // host or auto; "" leaves the default
	Retention   time.Duration // 0 leaves the default
	LogFormat   string        // console or json; "" is console
	// Timeouts of the flow and of each call; zero ones leave the default.
	Timeouts        Timeouts
	DuplicateWindow time.Duration // 0 leaves the default
}

// Timeouts are the agent's timeouts: short ones make a sale the host
// abandoned end on its own within seconds.
type Timeouts struct {
	Amount, Payment, Handover, Call time.Duration
}

// YAML renders the configuration.
func (c Config) YAML() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kassa:\n  id: %s\n", c.KassaID)
	if c.Handover != "" {
		fmt.Fprintf(&b, "  handover: %s\n", c.Handover)
	}
	fmt.Fprintf(&b, "service:\n  url: %s\n  ca: %s\n  cert: %s\n  key: %s\n", c.ServiceURL, c.CA, c.Cert, c.Key)
	fmt.Fprintf(&b, "journal: %s\n", c.Journal)
	fmt.Fprintf(&b, "api:\n  socket: %s\n", c.Socket)
	if c.Listen != "" {
		fmt.Fprintf(&b, "  listen: %s\n  token_file: %s\n", c.Listen, c.TokenFile)
	}
	fmt.Fprintf(&b, "scanners:\n  - name: scan\n    driver: serial\n    port: %s\n    baud: 9600\n", c.ScannerPort)
	if c.Framing != "" {
		fmt.Fprintf(&b, "    framing: %s\n", c.Framing)
	}
	fmt.Fprintf(&b, "displays:\n  - name: log\n    driver: log\n")
	format := c.LogFormat
	if format == "" {
		format = "console"
	}
	fmt.Fprintf(&b, "log:\n  level: info\n  format: %s\n", format)
	if c.Retention > 0 {
		fmt.Fprintf(&b, "retention: %s\n", c.Retention)
	}
	if t := c.Timeouts; t != (Timeouts{}) {
		b.WriteString("timeouts:\n")
		for _, x := range []struct {
			name string
			d    time.Duration
		}{{"amount", t.Amount}, {"payment", t.Payment}, {"handover", t.Handover}, {"call", t.Call}} {
			if x.d > 0 {
				fmt.Fprintf(&b, "  %s: %s\n", x.name, x.d)
			}
		}
	}
	if c.DuplicateWindow > 0 {
		fmt.Fprintf(&b, "duplicate_window: %s\n", c.DuplicateWindow)
	}
	b.WriteString("metrics:\n  enabled: true\n")
	return b.String()
}

// Agent is a running kioskd process.
type Agent struct {
	cmd    *exec.Cmd
	log    *os.File
	exited chan struct{}
	err    error       // Wait's result; read after exited is closed
	killed atomic.Bool // Kill was called
}

// Start runs `bin run -config config`, its output appended to logPath.
func Start(bin, config, logPath string) (*Agent, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("kiosktest: agent log: %w", err)
	}
	cmd := exec.Command(bin, "run", "-config", config)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("kiosktest: start %s: %w", bin, err)
	}
	a := &Agent{cmd: cmd, log: lf, exited: make(chan struct{})}
	go func() { // owner: the process; ends when it exits
		a.err = cmd.Wait()
		lf.Close()
		close(a.exited)
	}()
	return a, nil
}

// PID is the process id.
func (a *Agent) PID() int { return a.cmd.Process.Pid }

// Exited is closed once the process has ended.
func (a *Agent) Exited() <-chan struct{} { return a.exited }

// Err is the process's exit error; valid once Exited is closed.
func (a *Agent) Err() error { return a.err }

// Stop sends SIGTERM and waits up to grace for a clean exit, then kills.
func (a *Agent) Stop(grace time.Duration) error {
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
		var ee *exec.ExitError
		if errors.As(a.err, &ee) {
			return fmt.Errorf("kiosktest: kioskd exit after SIGTERM: %w", a.err)
		}
		return nil
	case <-time.After(grace):
		a.Kill()
		return fmt.Errorf("kiosktest: kioskd ignored SIGTERM for %s", grace)
	}
}

// Dump sends SIGQUIT, so the Go runtime writes every goroutine's stack to
// the agent's log and exits, and waits for that (SIGKILL after 5 s): the
// state of an agent that stopped doing what it should.
func (a *Agent) Dump() {
	_ = a.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-a.exited:
	case <-time.After(5 * time.Second):
		a.Kill()
	}
}

// Killed reports whether Kill was called. A kill that has begun counts: the
// process may not be reaped yet.
func (a *Agent) Killed() bool { return a.killed.Load() }

// Kill sends SIGKILL and waits for the process to end. It is safe to call
// from any goroutine, more than once.
func (a *Agent) Kill() {
	a.killed.Store(true)
	_ = a.cmd.Process.Kill()
	<-a.exited
}
