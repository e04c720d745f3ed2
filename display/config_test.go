package display

import (
	"errors"
	"testing"

	"go.uber.org/zap"
)

func init() {
	Register("test", Driver{
		Validate: func(c Config) error {
			if c.Port == "" {
				return &ConfigError{Display: c.Name, Field: "port", Reason: "required"}
			}
			return nil
		},
		Open: func(Config, *zap.Logger) (Display, error) { return newRecorder(), nil },
	})
}

func TestConfig(t *testing.T) {
	var ce *ConfigError
	err := Validate(Config{Name: "x", Driver: "nope"})
	if !errors.Is(err, ErrUnknownDriver) || !errors.As(err, &ce) || ce.Field != "driver" {
		t.Errorf("unknown driver: %v", err)
	}
	if err := Validate(Config{Driver: "test", Port: "p"}); !errors.As(err, &ce) || ce.Field != "name" {
		t.Errorf("empty name: %v", err)
	}
	if _, err := New(Config{Name: "x", Driver: "test"}, nil); !errors.As(err, &ce) || ce.Field != "port" {
		t.Errorf("New must validate first: %v", err)
	}
	if d, err := New(Config{Name: "x", Driver: "test", Port: "p"}, nil); err != nil || d == nil {
		t.Errorf("New = %v, %v", d, err)
	}
	err = ValidateAll([]Config{{Name: "a", Driver: "test", Port: "p"}, {Name: "a", Driver: "test", Port: "p"}})
	if !errors.As(err, &ce) || ce.Field != "name" {
		t.Errorf("duplicate names: %v", err)
	}
}
