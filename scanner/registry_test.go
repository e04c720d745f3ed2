package scanner_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/kioskd/kioskd/scanner"
	"github.com/kioskd/kioskd/scanner/serial"
	"github.com/kioskd/kioskd/scanner/settings"
)

// TestRegistry reads an entry through the registry with the real serial
// driver and turns it into an Opener, as the agent does.
func TestRegistry(t *testing.T) {
	if names := scanner.Drivers.Names(); !slices.Contains(names, "serial") || !slices.IsSorted(names) {
		t.Fatalf("Names() = %v", names)
	}
	var d settings.Decoder
	cfg, ok := scanner.Drivers.Decode(&d, settings.Flat("driver", "serial", "name", "front", "port", "/dev/x"), "scanners[0]")
	if !ok || len(d.Problems()) > 0 || cfg.Name != "front" || cfg.Driver != "serial" {
		t.Fatalf("decoded %+v %v", cfg, d.Problems())
	}
	if op, err := scanner.NewOpener(cfg, nil); err != nil || op == nil {
		t.Fatalf("NewOpener: %v, %v", op, err)
	}
	if _, err := scanner.NewOpener(scanner.Config{Name: "a", Driver: "serial"}, nil); !errors.Is(err, scanner.ErrConfig) {
		t.Fatalf("no settings: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("a second driver named serial did not panic")
		}
	}()
	settings.Register(scanner.Drivers, "serial", serial.Defaults)
}
