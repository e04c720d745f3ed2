// Command kioskd is the Smart Pay (KD Pay) QR-payment agent for self-checkout
// kiosks and vending machines. See README.md.
//
//	kioskd run [-config devices.yaml]   the agent (no config: the embedded demo)
//	kioskd run -demo vending            the vending machine demo
//	kioskd devices                      scanners and displays attached, with devices.yaml snippets
//	kioskd check -config devices.yaml   diagnose the configuration, certificates, service and devices
//	kioskd udev-rules -config F         udev rules for the configured devices
//	kioskd version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/kioskd/kioskd/cmd/kioskd/internal/agent"
	"github.com/kioskd/kioskd/cmd/kioskd/internal/check"
	"github.com/kioskd/kioskd/cmd/kioskd/internal/config"
	"github.com/kioskd/kioskd/cmd/kioskd/internal/demo"
	"github.com/kioskd/kioskd/cmd/kioskd/internal/logging"
	"github.com/kioskd/kioskd/scanner/devices"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// defaultConfig is where a kiosk keeps its configuration.
const defaultConfig = "/etc/kioskd/devices.yaml"

// errUsage is a usage error already explained on stderr: exit 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, context.Canceled):
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "kioskd:", err)
		os.Exit(1)
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  kioskd run [-config devices.yaml]   run the agent; with no config and no `+defaultConfig+`,
                                      the embedded demo (simulator, virtual scanner, terminal display)
  kioskd run -demo vending            the demo of a vending machine (an emulated MDB adapter too)
  kioskd devices                      list scanners and displays attached, with devices.yaml snippets
  kioskd check -config devices.yaml   check the configuration, certificates, service and devices
  kioskd udev-rules -config F         print udev rules for the configured devices
  kioskd version                      print the version
`)
}

func run(ctx context.Context, args []string, stdin *os.File, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return errUsage
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "run":
		return runAgent(ctx, args, stdin, stdout, stderr)
	case "devices":
		return listDevices(args, stdout, stderr)
	case "check":
		return runCheck(ctx, args, stdout, stderr)
	case "udev-rules":
		return udevRules(args, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "kioskd", version)
		return nil
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return nil
	}
	fmt.Fprintf(stderr, "kioskd: unknown command %q\n", cmd)
	usage(stderr)
	return errUsage
}

func runAgent(ctx context.Context, args []string, stdin *os.File, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "devices.yaml (default "+defaultConfig+" when it exists, else the embedded demo)")
	lang := fs.String("lang", "ru", "demo only: customer texts in ru or en")
	demoDir := fs.String("demo-dir", "", "demo only: where the simulator keeps its keys (default: the user cache dir)")
	demoName := fs.String("demo", "", "run an embedded demo, even where "+defaultConfig+" exists: kiosk (the default demo) or vending")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	switch {
	case *demoName != "" && *demoName != "kiosk" && *demoName != "vending":
		fmt.Fprintf(stderr, "kioskd run: -demo %q: want kiosk or vending\n", *demoName)
		return errUsage
	case *demoName != "" && *path != "":
		fmt.Fprintln(stderr, "kioskd run: -demo and -config exclude each other")
		return errUsage
	case *demoName != "":
		return demo.Run(ctx, demo.Options{Dir: *demoDir, Language: *lang, Stdin: stdin, Stdout: stdout, Vending: *demoName == "vending"})
	}
	if *path == "" {
		if _, err := os.Stat(defaultConfig); err == nil {
			*path = defaultConfig
		}
	}
	if *path == "" {
		return demo.Run(ctx, demo.Options{Dir: *demoDir, Language: *lang, Stdin: stdin, Stdout: stdout})
	}
	// Every key, the drivers' too, is checked here, before any device is
	// opened.
	cfg, err := config.Load(*path)
	if err != nil {
		return err // one line per problem, each with its line number
	}
	log, err := logging.New(stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // best effort on exit
	return agent.Run(ctx, cfg, log, agent.Options{})
}

func listDevices(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("devices", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sysfs := fs.String("sysfs", "/sys", "sysfs root (for tests)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	list, err := devices.List(*sysfs)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintln(stdout, "no serial, HID or USB devices found")
		return nil
	}
	for _, d := range list {
		if _, err := fmt.Fprintln(stdout, devices.Listing(d)); err != nil {
			return err
		}
	}
	return nil
}

func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", defaultConfig, "devices.yaml to check")
	offline := fs.Bool("offline", false, "skip the service and the devices (check the file and certificates only)")
	verbose := fs.Bool("v", false, "also list what passed")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	_, rep := check.RunFile(ctx, *path, check.Options{SkipService: *offline, SkipDevices: *offline})
	if err := rep.Print(stdout, *verbose); err != nil {
		return err
	}
	if rep.Failed() {
		return fmt.Errorf("check: %s has problems", *path)
	}
	return nil
}
