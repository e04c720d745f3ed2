package vmtest

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
)

// The control channel: the guest sends one request line, "<verb> <arg>…",
// and the host answers one line, "ok <text>" or "err <text>". Binary or
// spaced arguments travel in standard base64 (B64).

// ErrHost is an "err" answer from the host side of the control channel.
var ErrHost = errors.New("vmtest: host refused")

// B64 encodes an argument for the control channel.
func B64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// UnB64 decodes a control-channel argument.
func UnB64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("vmtest: bad base64 argument: %w", err)
	}
	return b, nil
}

// Ctl is the guest's end of the control channel.
type Ctl struct {
	mu sync.Mutex // one request at a time: answers carry no id
	w  io.Writer
	r  *bufio.Reader
}

// NewCtl wraps the channel's stream (the guest's raw ttyS1).
func NewCtl(rw io.ReadWriter) *Ctl { return &Ctl{w: rw, r: bufio.NewReader(rw)} }

// Do sends one request and returns the text of an "ok" answer, or an error
// wrapping ErrHost with the host's reason.
func (c *Ctl) Do(verb string, args ...string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	line := strings.Join(append([]string{verb}, args...), " ")
	if _, err := io.WriteString(c.w, line+"\n"); err != nil {
		return "", fmt.Errorf("vmtest: ctl %s: %w", verb, err)
	}
	for {
		ans, err := c.r.ReadString('\n')
		if err != nil {
			return "", fmt.Errorf("vmtest: ctl %s: %w", verb, err)
		}
		ans = strings.TrimRight(ans, "\r\n")
		switch {
		case ans == "ok" || strings.HasPrefix(ans, "ok "):
			return strings.TrimPrefix(strings.TrimPrefix(ans, "ok"), " "), nil
		case strings.HasPrefix(ans, "err"):
			return "", fmt.Errorf("%w: %s: %s", ErrHost, verb, strings.TrimPrefix(ans, "err "))
		}
		// Anything else is line noise from the port's early life: skip it.
	}
}
