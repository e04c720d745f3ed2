package main

import (
	"flag"
	"io"

	"github.com/kioskd/kioskd/cmd/kioskd/internal/config"
	"github.com/kioskd/kioskd/cmd/kioskd/internal/udevrules"
)

func udevRules(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("udev-rules", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", defaultConfig, "devices.yaml whose devices get rules")
	group := fs.String("group", "", "group that may open the devices (default kioskd)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	cfg, err := config.LoadDevices(*path) // the service and the kassa do not matter here
	if err != nil {
		return err
	}
	rules, err := udevrules.Generate(cfg, udevrules.Options{Group: *group})
	if err != nil {
		return err
	}
	_, err = stdout.Write(rules)
	return err
}
