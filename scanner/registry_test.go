package scanner_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/scanner"
)

// testDriver accepts a config with a port and records it.
func testDriver(got *scanner.Config) scanner.Driver {
	return func(cfg scanner.Config, log *zap.Logger) (scanner.Opener, error) {
		if cfg.Port == "" {
			return nil, &scanner.ConfigError{Scanner: cfg.Name, Field: "port", Reason: "empty"}
		}
		*got = cfg
		return func(context.Context) (scanner.Scanner, error) { return nil, scanner.ErrNotFound }, nil
	}
}

var (
	registerOnce sync.Once
	registered   scanner.Config // last config the test driver saw
)

// registerTestDriver registers "test-registry" once per process, so the
// tests also pass with -count > 1.
func registerTestDriver() {
	registerOnce.Do(func() { scanner.Register("test-registry", testDriver(&registered)) })
}

func TestRegistry(t *testing.T) {
	registerTestDriver()
	got := &registered
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

func TestNewSources(t *testing.T) {
	registerTestDriver()
	srcs, err := scanner.NewSources([]scanner.Config{
		{Name: "a", Driver: "test-registry", Port: "/dev/a"},
		{Name: "b", Driver: "test-registry", Port: "/dev/b"},
	}, nil)
	if err != nil || len(srcs) != 2 || srcs[1].Name != "b" || srcs[1].Open == nil {
		t.Fatalf("NewSources = %+v, %v", srcs, err)
	}
	_, err = scanner.NewSources([]scanner.Config{
		{Name: "a", Driver: "test-registry", Port: "/dev/a"},
		{Name: "a", Driver: "test-registry", Port: "/dev/b"},
		{Name: "c", Driver: "test-registry"},
		{Name: "d", Driver: "nope"},
		{Driver: "test-registry", Port: "/dev/e"},
	}, nil)
	if !errors.Is(err, scanner.ErrConfig) || !errors.Is(err, scanner.ErrUnknownDriver) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{`"a": name: used by two`, `"c": port: empty`, `"d"`, `"#5": name: empty`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
