// Package demo is kioskd's embedded default: with no devices.yaml it runs the
// Smart Pay simulator in-process (real mTLS on loopback), the ATOL
// web-server simulator as its ККТ, a virtual serial scanner (two joined
// ptys) and the terminal display, at a fixed demo price, so one command
// shows the whole flow, the receipt's QR code included, on a machine
// without hardware.
package demo

import (
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
)

// Price is the demo's fixed amount in kopecks (149,00 ₽).
const Price = 14900

// Options configure the demo.
type Options struct {
	Dir      string    // simulator keys, kept between runs; the user cache dir when empty
	Language string    // "ru" (default) or "en"
	Stdin    *os.File  // lines typed here are scanned; nil to ignore
	Stdout   io.Writer // the terminal display and the instructions
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

	cfg, err := config.Parse(filepath.Join(run, "devices.yaml"),
		[]byte(demoConfig(opts.Dir, run, api.Addr().String(), vs.Device, opts.Language)+kkt.yaml("Демо-товар")))
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
	errs := make(chan error, 4)
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
	goRun(func() error { return vs.Run(ctx, opts.Stdin) })
	goRun(func() error {
		return agent.Run(ctx, cfg, log, agent.Options{Ready: func() {
			banner(opts.Stdout, opts.Dir, vs.Input, "http://"+admin.Addr().String(), logPath, srv, kkt.state())
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

func demoConfig(dir, run, addr, port, lang string) string {
	return fmt.Sprintf(`# the embedded demo's configuration
kassa:
  id: %q
  fixed_amount: %d
  handover: auto
service:
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
language: %s
`, sim.KassaID(1), Price, addr,
		filepath.Join(dir, "ca.crt"), filepath.Join(dir, "kassa.crt"), filepath.Join(dir, "kassa.key"),
		filepath.Join(run, "journal.db"), filepath.Join(run, "api.sock"), port, lang)
}

// banner tells the person at the terminal how to pay, with a fresh QR.
func banner(w io.Writer, dir, input, admin, logPath string, srv *sim.Server, kktState string) {
	payload, err := srv.QR("demo-user")
	if err != nil {
		fmt.Fprintf(w, "demo: cannot make a QR: %v\n", err)
		return
	}
	art, _ := sim.DrawQR(payload)
	var b strings.Builder
	fmt.Fprintf(&b, "\nkioskd demo: Smart Pay simulator on loopback (mTLS), virtual serial scanner, terminal display,\n")
	fmt.Fprintf(&b, "ATOL web-server simulator as the ККТ: each sale ends with its fiscal receipt's QR code on the display.\n")
	fmt.Fprintf(&b, "Price: %d,%02d ₽ (fixed), hand-over automatic.\n\n", Price/100, Price%100)
	fmt.Fprintf(&b, "Scan a QR code, i.e. write its payload into the virtual scanner:\n")
	fmt.Fprintf(&b, "  echo \"$(go run ./cmd/smartpay-sim qr -dir %s)\" > %s\n", dir, input)
	fmt.Fprintf(&b, "or paste a payload here and press Enter. A fresh one, valid for 5 minutes:\n\n%s\n\n", payload)
	b.WriteString(art)
	fmt.Fprintf(&b, "\nsimulator state: curl %s/sim/state    receipts: curl %s\nlog: %s    stop: Ctrl-C\n\n", admin, kktState, logPath)
	io.WriteString(w, b.String()) //nolint:errcheck // the terminal is gone if this fails
}
