// Command smartpay-sim runs the Smart Pay kassa API simulator and plays the
// mobile app by printing fresh QR payloads.
//
//	smartpay-sim serve -listen 127.0.0.1:8443 -admin 127.0.0.1:8444 -dir ./sim
//	smartpay-sim qr -dir ./sim [-user ID]
//	smartpay-sim vmc -link /run/kioskd/mdb0 [-product ITEM:NAME:KOPECKS]…
//	smartpay-sim atol -listen 127.0.0.1:16732 -admin 127.0.0.1:16733
//	smartpay-sim atol-online -listen 127.0.0.1:8480 -admin 127.0.0.1:8481 -password-file ./pw
//
// vmc plays a vending machine with a Qibixx MDB adapter (package
// payment/vending/vmcsim) on a pty, for kioskd's vending: section; it reads
// commands typed on stdin (help lists them). atol and atol-online serve the
// fiscal simulators (package payment/fiscal/fiscalsim).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"

	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

const usage = `usage:
  smartpay-sim serve -listen ADDR -admin ADDR -dir DIR [-kassas N] [-success-delay D] [-session-ttl D] [-stale D]
  smartpay-sim qr -dir DIR [-user ID]
  smartpay-sim vmc -link PATH [-product ITEM:NAME:KOPECKS]… [-vmc-timeout D] [-dispense D] [-trace] [-repl=false]
` + fiscalUsage

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "smartpay-sim:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "qr":
		return qr(args[1:], stdout, stderr)
	case "vmc":
		return vmc(ctx, args[1:], stdout, stderr)
	case "atol", "atol-online":
		return serveFiscal(ctx, args[0], args[1:], stderr)
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

// serve runs until ctx ends (SIGINT/SIGTERM in main); that is a clean exit.
func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8443", "kassa API address (mTLS)")
	admin := fs.String("admin", "127.0.0.1:8444", "admin API address (plain HTTP, loopback only)")
	dir := fs.String("dir", "", "directory for the CA, certificates and keys (created on first start)")
	kassas := fs.Int("kassas", 1, "number of kassa client certificates (kassa.crt, kassa2.crt, …)")
	delay := fs.Duration("success-delay", 2*time.Second, "time from release to success")
	ttl := fs.Duration("session-ttl", 30*time.Minute, "session cookie lifetime")
	stale := fs.Duration("stale", 5*time.Minute, "accepted QR timestamp skew")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("serve: -dir is required")
	}
	if err := loopbackOnly("-admin", *admin); err != nil {
		return err
	}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
		zapcore.Lock(zapcore.AddSync(stderr)), zap.InfoLevel))
	defer func() { _ = log.Sync() }()
	s, err := sim.New(sim.Config{Dir: *dir, Kassas: *kassas, SuccessDelay: *delay, SessionTTL: *ttl, StaleWindow: *stale}, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	aln, err := net.Listen("tcp", *admin)
	if err != nil {
		ln.Close()
		return err
	}
	adminSrv := &http.Server{Handler: s.AdminHandler(), ReadHeaderTimeout: 5 * time.Second}
	adminDone := make(chan error, 1)
	go func() { adminDone <- adminSrv.Serve(aln) }()

	ca, cert, key := sim.KassaFiles(*dir, 1)
	log.Info("serving", zap.String("kassa_api", "https://"+ln.Addr().String()),
		zap.String("admin", "http://"+aln.Addr().String()),
		zap.String("ca", ca), zap.String("kassa_cert", cert), zap.String("kassa_key", key))
	err = s.Serve(ctx, ln)
	shutCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = adminSrv.Shutdown(shutCtx)
	if aerr := <-adminDone; !errors.Is(aerr, http.ErrServerClosed) && err == nil {
		err = aerr
	}
	return err
}

// loopbackOnly refuses an address (given with flag name) reachable from
// the network: what listens there has no authentication.
func loopbackOnly(name, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s %q: %w", name, addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s %q: must be a loopback address (127.0.0.1:PORT); it has no authentication", name, addr)
	}
	return nil
}

func qr(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qr", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "simulator directory (holds service.pub and app.key)")
	user := fs.String("user", "demo-user", "loyalty user id")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("qr: -dir is required")
	}
	payload, err := sim.GenerateQR(*dir, *user)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(stdout, payload); err != nil {
		return err
	}
	if f, ok := stderr.(*os.File); ok && isTerminal(f) {
		art, err := sim.DrawQR(payload)
		if err != nil {
			return err
		}
		_, err = io.WriteString(stderr, art)
		return err
	}
	return nil
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
