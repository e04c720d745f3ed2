// Package demo is kioskd's embedded default: with no devices.yaml it runs the
// Smart Pay simulator in-process (real mTLS on loopback), the ATOL
// web-server simulator as its ККТ, a virtual serial scanner (two joined
// ptys) and the terminal display, at a fixed demo price, so one command
// shows the whole flow, the receipt's QR code included, on a machine
// without hardware. The vending demo adds an emulated vending machine with a
// Qibixx MDB adapter on a pty (package vmcsim), driven from the same
// terminal.
package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kioskd/kioskd/cmd/kioskd/internal/agent"
	"github.com/kioskd/kioskd/cmd/kioskd/internal/config"
	"github.com/kioskd/kioskd/cmd/kioskd/internal/logging"
	"github.com/kioskd/kioskd/cmd/kioskd/internal/vscanner"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
	"github.com/kioskd/kioskd/payment/vending/vmcsim"
)

// Price is the demo's fixed amount in kopecks (149,00 ₽).
const Price = 14900

// Options configure the demo.
type Options struct {
	Dir      string    // simulator keys, kept between runs; the user cache dir when empty
	Language string    // "ru" (default) or "en"
	Stdin    *os.File  // lines typed here are scanned; nil to ignore
	Stdout   io.Writer // the terminal display and the instructions
	// Vending runs the vending machine demo: the machine's products are
	// picked by typing their number on Stdin, and its vend settles the
	// payment.
	Vending bool
}

// Run runs the demo until ctx ends.
func Run(ctx context.Context, opts Options) error {
	if opts.Dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		opts.Dir = filepath.Join(cache, "kioskd", "demo")
	}
	if opts.Language == "" {
		opts.Language = "ru"
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	// A fresh journal and socket each run: the in-process simulator forgets
	// its purchases when it stops, so an old journal would chase ghosts.
	run, err := os.MkdirTemp("", "kioskd-demo-")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer os.RemoveAll(run)

	logPath := filepath.Join(opts.Dir, "kioskd.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer logFile.Close()
	log, err := logging.New(logFile, "info", "console")
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // best effort on exit

	srv, err := sim.New(sim.Config{Dir: opts.Dir, SuccessDelay: 1500 * time.Millisecond}, log.Named("sim"))
	if err != nil {
		return fmt.Errorf("demo: simulator: %w", err)
	}
	api, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	admin, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		api.Close()
		return fmt.Errorf("demo: %w", err)
	}
	kkt, err := startKKT(log.Named("kkt"))
	if err != nil {
		api.Close()
		admin.Close()
		return err
	}
	vs, err := vscanner.Open()
	if err != nil {
		api.Close()
		admin.Close()
		kkt.ln.Close()
		return err
	}

	var machine *vmcsim.Machine
	if opts.Vending {
		machine, err = vmcsim.New(vmcsim.Config{Link: filepath.Join(run, "mdb0"), DispenseTime: 2 * time.Second, Narrate: opts.Stdout})
	}
	var cfg *config.Config
	if err == nil {
		yaml := demoConfig(opts.Dir, run, api.Addr().String(), vs.Device, opts.Language, machine) + kkt.yaml("Демо-товар")
		cfg, err = config.Parse(filepath.Join(run, "devices.yaml"), []byte(yaml))
	}
	if err != nil {
		api.Close()
		admin.Close()
		kkt.ln.Close()
		vs.Close()
		return fmt.Errorf("demo: built-in configuration: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	goRun := func(run func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(); err != nil && !errors.Is(err, context.Canceled) {
				errs <- err
				cancel()
			}
		}()
	}
	goRun(func() error { return srv.Serve(ctx, api) })
	goRun(func() error { return agent.Serve(ctx, admin, srv.AdminHandler()) })
	goRun(func() error { return kkt.serve(ctx) })
	ready := make(chan struct{})
	if machine != nil {
		commands := driveMachine(ctx, machine, vs, ready, opts.Stdout, goRun)
		defer commands.Close()
	}
	goRun(func() error { return vs.Run(ctx, opts.Stdin) })
	goRun(func() error {
		return agent.Run(ctx, cfg, log, agent.Options{Ready: func() {
			banner(opts.Stdout, opts.Dir, vs.Input, "http://"+admin.Addr().String(), logPath, srv, kkt.state(), machine)
			close(ready)
		}})
	})
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// demoConfig is the demo's devices.yaml. With a vending machine there is no
// fixed price: the machine's adapter and catalogue price each vend, a person
// gets time to paste a QR, and the terminal display writes lines (the
// machine talks on the same terminal).
func demoConfig(dir, run, addr, port, lang string, m *vmcsim.Machine) string {
	kassa, mode, vending := fmt.Sprintf("  fixed_amount: %d\n  handover: auto\n", Price), "", ""
	if m != nil {
		kassa, mode = "", "    mode: lines\n"
		vending = m.VendingYAML(180*time.Second) + "timeouts:\n  amount: 180s\n"
	}
	return fmt.Sprintf(`# the embedded demo's configuration
kassa:
  id: %q
%sservice:
  url: https://%s
  ca: %s
  cert: %s
  key: %s
journal: %s
api:
  socket: %s
scanners:
  - name: virtual
    driver: serial
    port: %s
displays:
  - name: terminal
    driver: term
    output: stdout
%slanguage: %s
%s`, sim.KassaID(1), kassa, addr,
		filepath.Join(dir, "ca.crt"), filepath.Join(dir, "kassa.crt"), filepath.Join(dir, "kassa.key"),
		filepath.Join(run, "journal.db"), filepath.Join(run, "api.sock"), port, mode, lang, vending)
}

// banner tells the person at the terminal how to pay, with a fresh QR; with
// a vending machine, how to pick a product first.
func banner(w io.Writer, dir, input, admin, logPath string, srv *sim.Server, kktState string, machine *vmcsim.Machine) {
	payload, err := srv.QR("demo-user")
	if err != nil {
		fmt.Fprintf(w, "demo: cannot make a QR: %v\n", err)
		return
	}
	art, _ := sim.DrawQR(payload)
	var b strings.Builder
	if machine != nil {
		fmt.Fprintf(&b, "\nkioskd vending demo: Smart Pay simulator on loopback (mTLS), virtual serial scanner, terminal display,\n")
		fmt.Fprintf(&b, "ATOL web-server simulator as the ККТ, and a vending machine with a Qibixx MDB adapter on a pty (%s).\n\n", machine.Link())
		fmt.Fprintf(&b, "1. Pick a product from the machine's list below: type its number and press Enter.\n")
		fmt.Fprintf(&b, "2. Pay for it with the QR below: the payment approves the vend, the vend's success settles it.\n")
		fmt.Fprintf(&b, "Machine commands: cancel; dispense fail (the next vend fails: the payment is reversed); help.\n\n")
	} else {
		fmt.Fprintf(&b, "\nkioskd demo: Smart Pay simulator on loopback (mTLS), virtual serial scanner, terminal display,\n")
		fmt.Fprintf(&b, "ATOL web-server simulator as the ККТ: each sale ends with its fiscal receipt's QR code on the display.\n")
		fmt.Fprintf(&b, "Price: %d,%02d ₽ (fixed), hand-over automatic.\n\n", Price/100, Price%100)
	}
	fmt.Fprintf(&b, "Scan a QR code, i.e. write its payload into the virtual scanner:\n")
	fmt.Fprintf(&b, "  echo \"$(go run ./cmd/smartpay-sim qr -dir %s)\" > %s\n", dir, input)
	fmt.Fprintf(&b, "or paste a payload here and press Enter. A fresh one, valid for 5 minutes:\n\n%s\n\n", payload)
	b.WriteString(art)
	fmt.Fprintf(&b, "\nsimulator state: curl %s/sim/state    receipts: curl %s\nlog: %s    stop: Ctrl-C\n\n", admin, kktState, logPath)
	io.WriteString(w, b.String()) //nolint:errcheck // the terminal is gone if this fails
}

// driveMachine runs the machine, and its command line once the agent is
// ready: each line typed on the terminal that is not a QR payload (a JSON
// object) is a command to the machine, a number selects that product. The
// returned writer feeds the command line; closing it ends the command line.
func driveMachine(ctx context.Context, m *vmcsim.Machine, vs *vscanner.Scanner, ready <-chan struct{}, out io.Writer,
	goRun func(func() error)) io.Closer {
	pr, pw := io.Pipe()
	vs.Route = func(line []byte) bool {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] == '{' {
			return false // a QR payload: scanned
		}
		pw.Write(append(bytes.Clone(line), '\n')) //nolint:errcheck // the command line has ended: the demo is stopping
		return true
	}
	goRun(func() error { return m.Run(ctx) })
	goRun(func() error {
		select {
		case <-ready:
		case <-ctx.Done():
			pr.Close()
			return nil
		}
		return m.REPL(ctx, pr, out)
	})
	return pw
}
