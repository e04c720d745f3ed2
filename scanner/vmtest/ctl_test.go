package vmtest

import (
	"bufio"
	"errors"
	"net"
	"strings"
	"testing"
)

// TestCtlRoundTrip plays vmhost on the other end of a pipe: an ok answer
// with text, an err answer, and boot noise on the line before an answer.
func TestCtlRoundTrip(t *testing.T) {
	guest, host := net.Pipe()
	defer guest.Close()
	done := make(chan struct{})
	go func() { // owner: this test; ends when the guest end closes
		defer close(done)
		r := bufio.NewReader(host)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				host.Close()
				return
			}
			switch f := strings.Fields(line); f[0] {
			case "serial":
				b, err := UnB64(f[2])
				if err != nil {
					host.Write([]byte("err " + err.Error() + "\n"))
					continue
				}
				host.Write([]byte("ok " + f[1] + ":" + string(b) + "\n"))
			default:
				host.Write([]byte("\x00garbage\nerr unknown request\n"))
			}
		}
	}()
	c := NewCtl(guest)
	got, err := c.Do("serial", "ser0", B64([]byte("{QR}")))
	if err != nil || got != "ser0:{QR}" {
		t.Fatalf("Do = %q, %v", got, err)
	}
	if _, err := c.Do("bogus"); !errors.Is(err, ErrHost) || !strings.Contains(err.Error(), "unknown request") {
		t.Fatalf("Do(bogus) error = %v, want ErrHost with the host's reason", err)
	}
	if _, err := c.Do("serial", "ser0", "!!"); !errors.Is(err, ErrHost) {
		t.Fatalf("bad base64 error = %v, want ErrHost", err)
	}
	guest.Close()
	<-done
}
