package display

import (
	"errors"
	"slices"
	"testing"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/scanner/settings"
)

// testSettings is a driver's own settings type with one required key.
type testSettings struct{ Port string }

func (s *testSettings) Fields() []settings.Field {
	return []settings.Field{settings.DevicePath("port", &s.Port).Required("required")}
}

var errNoDevice = errors.New("test: no device")

func (s testSettings) Open(string, *zap.Logger) (Display, error) {
	if s.Port == "/dev/none" {
		return nil, errNoDevice
	}
	return newRecorder(), nil
}

func init() { settings.Register(Drivers, "test", testSettings{}) }

func TestConfig(t *testing.T) {
	if keys, ok := Drivers.Keys("test"); !ok || !slices.Equal(keys, []string{"port"}) {
		t.Fatalf("Keys = %v %v", keys, ok)
	}
	var d settings.Decoder
	c, ok := Drivers.Decode(&d, settings.Flat("driver", "test", "port", "/dev/p"), "displays[0]")
	if !ok || len(d.Problems()) > 0 || c.Name != "test" || c.Driver != "test" || c.Line != 1 {
		t.Fatalf("decoded %+v, %v", c, d.Problems())
	}
	if disp, err := New(c, nil); err != nil || disp == nil {
		t.Errorf("New = %v, %v", disp, err)
	}
	if _, err := New(Config{Name: "x", Driver: "test", Settings: testSettings{Port: "/dev/none"}}, nil); !errors.Is(err, errNoDevice) ||
		err.Error() != "test: no device" {
		t.Errorf("open error: %v", err)
	}
	if _, err := New(Config{Name: "x", Driver: "test"}, nil); err == nil {
		t.Error("New without settings succeeded")
	}
}
