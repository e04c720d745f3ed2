// Package logging builds the agent's zap logger. Its core redacts fields whose
// keys name secrets, a second line of defence behind code that never logs
// them: a QR's encrypted/sign parts, OTPs, cookies, keys and tokens.
package logging

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Levels and Formats are what New accepts, as devices.yaml writes them.
var (
	Levels  = []string{"debug", "info", "warn", "error"}
	Formats = []string{"console", "json"}
)

// New returns a logger writing to w in one of Formats ("console" when
// empty) at one of Levels ("info" when empty).
func New(w io.Writer, level, format string) (*zap.Logger, error) {
	var lvl zapcore.Level
	if level == "" {
		level = "info"
	}
	if err := lvl.UnmarshalText([]byte(level)); err != nil || !slices.Contains(Levels, level) {
		return nil, fmt.Errorf("logging: level %q: want one of %s", level, strings.Join(Levels, ", "))
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch format {
	case "", "console":
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	case "json":
		enc = zapcore.NewJSONEncoder(encCfg)
	default:
		return nil, fmt.Errorf("logging: format %q: want one of %s", format, strings.Join(Formats, ", "))
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl)
	return zap.New(Redact(core)), nil
}

// secretKeys are field keys whose values never reach a log.
var secretKeys = []string{"encrypted", "sign", "otp", "cookie", "key", "token", "authorization", "password", "secret"}

func isSecret(key string) bool {
	k := strings.ToLower(key)
	for _, s := range secretKeys {
		if k == s || strings.HasSuffix(k, "_"+s) || strings.HasPrefix(k, s+"_") {
			return true
		}
	}
	return false
}

// Redact wraps core so that fields with secret keys are written as "[redacted]".
func Redact(core zapcore.Core) zapcore.Core { return redactCore{core} }

type redactCore struct{ zapcore.Core }

func (c redactCore) With(fields []zapcore.Field) zapcore.Core {
	return redactCore{c.Core.With(redactFields(fields))}
}

func (c redactCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c redactCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	return c.Core.Write(e, redactFields(fields))
}

func redactFields(fields []zapcore.Field) []zapcore.Field {
	var out []zapcore.Field
	for i, f := range fields {
		if !isSecret(f.Key) {
			continue
		}
		if out == nil {
			out = append([]zapcore.Field(nil), fields...)
		}
		out[i] = zap.String(f.Key, "[redacted]")
	}
	if out == nil {
		return fields
	}
	return out
}
