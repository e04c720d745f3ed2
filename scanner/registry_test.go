package scanner_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/scanner"
)

func TestRegistry(t *testing.T) {
	var got scanner.Config
	scanner.Register("test-registry", func(cfg scanner.Config, log *zap.Logger) (scanner.Opener, error) {
		if cfg.Port == "" {
			return nil, &scanner.ConfigError{Scanner: cfg.Name, Field: "port", Reason: "empty"}
		}
		got = cfg
		return func(context.Context) (scanner.Scanner, error) { return nil, scanner.ErrNotFound }, nil
	})
	if !slices.Contains(scanner.Drivers(), "test-registry") || !slices.IsSorted(scanner.Drivers()) {
		t.Fatalf("Drivers() = %v", scanner.Drivers())
	}
	if _, ok := scanner.Lookup("test-registry"); !ok {
		t.Fatal("Lookup failed")
	}
	if _, ok := scanner.Lookup("nope"); ok {
		t.Fatal("Lookup(nope) succeeded")
	}
	op, err := scanner.NewOpener(scanner.Config{Name: "a", Driver: "test-registry", Port: "/dev/x"}, nil)
	if err != nil || op == nil || got.Port != "/dev/x" {
		t.Fatalf("NewOpener: %v, %v", op, err)
	}
	if _, err := scanner.NewOpener(scanner.Config{Name: "a", Driver: "test-registry"}, nil); !errors.Is(err, scanner.ErrConfig) {
		t.Fatalf("bad config: %v", err)
	}
	if _, err := scanner.NewOpener(scanner.Config{Name: "a", Driver: "nope"}, nil); !errors.Is(err, scanner.ErrUnknownDriver) {
		t.Fatalf("unknown driver: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("duplicate Register did not panic")
		}
	}()
	scanner.Register("test-registry", func(scanner.Config, *zap.Logger) (scanner.Opener, error) { return nil, nil })
}
