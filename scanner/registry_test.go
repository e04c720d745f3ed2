package scanner_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/scanner"
	"github.com/kioskd/kioskd/scanner/settings"
)

// testSettings is a driver's own settings type: one key, "port".
type testSettings struct{ Port string }

func (s *testSettings) Fields() []settings.Field {
	return []settings.Field{settings.DevicePath("port", &s.Port).Required("required")}
}

var errUnsupported = errors.New("test: cannot open here")

func (s testSettings) Opener(name string, _ *zap.Logger) (scanner.Opener, error) {
	if s.Port == "/dev/unsupported" {
		return nil, errUnsupported
	}
	return func(context.Context) (scanner.Scanner, error) { return nil, scanner.ErrNotFound }, nil
}

var registerOnce sync.Once

// registerTestDriver registers "test-registry" once per process, so the
// tests also pass with -count > 1.
func registerTestDriver() {
	registerOnce.Do(func() { scanner.Register("test-registry", testSettings{}) })
}

func TestRegistry(t *testing.T) {
	registerTestDriver()
	if names := scanner.Drivers.Names(); !slices.Contains(names, "test-registry") || !slices.IsSorted(names) {
		t.Fatalf("Names() = %v", names)
	}
	if keys, ok := scanner.Drivers.Keys("test-registry"); !ok || !slices.Equal(keys, []string{"port"}) {
		t.Fatalf("Keys = %v, %v", keys, ok)
	}
	op, err := scanner.NewOpener(scanner.Config{Name: "a", Driver: "test-registry", Settings: testSettings{Port: "/dev/x"}}, nil)
	if err != nil || op == nil {
		t.Fatalf("NewOpener: %v, %v", op, err)
	}
	if _, err := scanner.NewOpener(scanner.Config{Name: "a", Driver: "test-registry", Settings: testSettings{Port: "/dev/unsupported"}}, nil); !errors.Is(err, errUnsupported) || err.Error() != `scanner "a": test: cannot open here` {
		t.Fatalf("unsupported: %v", err)
	}
	if _, err := scanner.NewOpener(scanner.Config{Name: "a", Driver: "test-registry"}, nil); !errors.Is(err, scanner.ErrConfig) {
		t.Fatalf("no settings: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("duplicate Register did not panic")
		}
	}()
	scanner.Register("test-registry", testSettings{})
}
