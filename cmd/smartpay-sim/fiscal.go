package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/kioskd/kioskd/payment/fiscal"
	"github.com/kioskd/kioskd/payment/fiscal/fiscalsim"
)

const fiscalUsage = `  smartpay-sim atol [-listen ADDR] [-admin ADDR] [-shift-limit D]
  smartpay-sim atol-online [-listen ADDR] [-admin ADDR] [-login L] [-password-file F] [-group G] [-shift-limit D]
`

// serveFiscal runs a fiscal simulator (name "atol" or "atol-online") on
// plain HTTP until ctx ends. Both the API and the admin API are loopback
// only: neither has real authentication.
func serveFiscal(ctx context.Context, name string, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen, admin := "127.0.0.1:16732", "127.0.0.1:16733" // the web server's own port
	if name == "atol-online" {
		listen, admin = "127.0.0.1:8480", "127.0.0.1:8481"
	}
	fs.StringVar(&listen, "listen", listen, "API address (plain HTTP, loopback only)")
	fs.StringVar(&admin, "admin", admin, "admin API address (plain HTTP, loopback only)")
	shift := fs.Duration("shift-limit", 24*time.Hour, "a shift's lifetime")
	login := fs.String("login", "kioskd", "atol-online: login")
	pwFile := fs.String("password-file", "", "atol-online: file whose first line is the password (chmod 600) [kioskd-secret]")
	group := fs.String("group", "kioskd-group", "atol-online: group_code")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, a := range [...]struct{ flag, addr string }{{"-listen", listen}, {"-admin", admin}} {
		if err := loopbackOnly(a.flag, a.addr); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
		zapcore.Lock(zapcore.AddSync(stderr)), zap.InfoLevel))
	defer func() { _ = log.Sync() }()
	cfg := fiscalsim.Config{ShiftLimit: *shift}
	var apiH, adminH http.Handler
	base := fiscalsim.AtolBase
	if name == "atol" {
		s := fiscalsim.NewAtol(cfg, log)
		apiH, adminH = s.Handler(), s.AdminHandler()
	} else {
		oc := fiscalsim.OnlineConfig{Config: cfg, Login: *login, Group: *group}
		if *pwFile != "" {
			pw, err := fiscal.ReadSecret(*pwFile)
			if err != nil {
				return err
			}
			oc.Password = pw
		}
		s := fiscalsim.NewOnline(oc, log)
		apiH, adminH, base = s.Handler(), s.AdminHandler(), fiscalsim.OnlineBase
	}
	return serveHTTP(ctx, log, listen, admin, base, apiH, adminH)
}

// serveHTTP serves api on listen and admin on adminAddr until ctx ends.
func serveHTTP(ctx context.Context, log *zap.Logger, listen, adminAddr, base string, api, admin http.Handler) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", listen)
	if err != nil {
		return err
	}
	aln, err := lc.Listen(ctx, "tcp", adminAddr)
	if err != nil {
		ln.Close()
		return err
	}
	servers := []*http.Server{
		{Handler: api, ReadHeaderTimeout: 5 * time.Second},
		{Handler: admin, ReadHeaderTimeout: 5 * time.Second},
	}
	errc := make(chan error, len(servers))
	for i, l := range []net.Listener{ln, aln} {
		go func() { errc <- servers[i].Serve(l) }()
	}
	log.Info("serving", zap.String("api", "http://"+ln.Addr().String()+base), zap.String("admin", "http://"+aln.Addr().String()))
	err = nil
	left := len(servers)
	select {
	case <-ctx.Done():
	case err = <-errc: // a server failed: stop the other one too
		left--
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range servers {
		if s.Shutdown(shutCtx) != nil {
			_ = s.Close()
		}
	}
	for ; left > 0; left-- {
		if e := <-errc; err == nil && !errors.Is(e, http.ErrServerClosed) {
			err = e
		}
	}
	return err
}
