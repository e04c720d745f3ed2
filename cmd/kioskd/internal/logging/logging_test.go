package logging

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestSecretFieldsAreRedacted(t *testing.T) {
	for _, format := range []string{"console", "json"} {
		var buf bytes.Buffer
		log, err := New(&buf, "debug", format)
		if err != nil {
			t.Fatal(err)
		}
		log.With(zap.String("session_cookie", "SID=abc123")).Info("call",
			zap.String("encrypted", "c2VjcmV0LWVuYw=="),
			zap.String("sign", "c2VjcmV0LXNpZw=="),
			zap.String("otp", "918273"),
			zap.String("purchase_id", "p-1"))
		out := buf.String()
		for _, secret := range []string{"abc123", "c2VjcmV0LWVuYw==", "c2VjcmV0LXNpZw==", "918273"} {
			if strings.Contains(out, secret) {
				t.Errorf("%s log leaks %q: %s", format, secret, out)
			}
		}
		if !strings.Contains(out, "p-1") || !strings.Contains(out, "[redacted]") {
			t.Errorf("%s log lost ordinary fields or the redaction mark: %s", format, out)
		}
	}
}

func TestBadLevelAndFormat(t *testing.T) {
	if _, err := New(&bytes.Buffer{}, "loud", "console"); err == nil {
		t.Error("level loud accepted")
	}
	if _, err := New(&bytes.Buffer{}, "info", "xml"); err == nil {
		t.Error("format xml accepted")
	}
}
