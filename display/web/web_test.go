package web

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/scanner/settings"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve starts a display on a free loopback port and stops it at cleanup.
func serve(t testing.TB) *Display {
	t.Helper()
	d, err := New(Settings{Listen: "127.0.0.1:0"}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

// stream is a minimal SSE client: it yields the data of "screen" events.
type stream struct {
	body io.Closer
	sc   *bufio.Scanner
}

func openStream(t testing.TB, ctx context.Context, d *Display) *stream {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.URL()+"events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	return &stream{body: resp.Body, sc: bufio.NewScanner(resp.Body)}
}

func (s *stream) next(t testing.TB) event {
	t.Helper()
	isScreen := false
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case line == "event: screen":
			isScreen = true
		case strings.HasPrefix(line, "data: ") && isScreen:
			var e event
			if err := json.Unmarshal([]byte(line[len("data: "):]), &e); err != nil {
				t.Fatal(err)
			}
			return e
		}
	}
	t.Fatalf("stream ended: %v", s.sc.Err())
	return event{}
}

func TestStreamSendsCurrentThenUpdates(t *testing.T) {
	d := serve(t)
	ctx := context.Background()
	if err := d.Show(ctx, display.Screen{State: display.Paying, Amount: 12345}); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := openStream(t, sctx, d)
	defer s.body.Close()
	// The screen shown before the browser connected arrives first.
	if e := s.next(t); e.State != "paying" || e.Amount != "123,45\u00a0₽" || e.Title != "Идёт оплата" || e.Tone != "busy" {
		t.Fatalf("first event = %+v", e)
	}
	if err := d.Show(ctx, display.Screen{State: display.Declined, Message: "Card blocked", Lang: display.English}); err != nil {
		t.Fatal(err)
	}
	if e := s.next(t); e.State != "declined" || e.Detail != "Card blocked" || e.Tone != "failure" || e.Lang != "en" {
		t.Fatalf("second event = %+v", e)
	}
}

func TestPageIsSelfContained(t *testing.T) {
	d := serve(t)
	for path, want := range map[string]string{"": "<main>", "app.js": "EventSource", "style.css": "data-tone"} {
		resp, err := http.Get(d.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET /%s: %d, missing %q", path, resp.StatusCode, want)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET /%s: CSP %q", path, csp)
		}
		// No external asset: every URL in the page is relative.
		if strings.Contains(string(b), "http://") || strings.Contains(string(b), "https://") {
			t.Errorf("/%s references an external URL", path)
		}
	}
	resp, err := http.Get(d.URL() + "screen")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e event
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.State != "ready" {
		t.Errorf("/screen = %+v, %v", e, err)
	}
}

// TestSettings decodes listen addresses as devices.yaml is read: the page
// is for the kiosk's own browser, so only loopback addresses pass.
func TestSettings(t *testing.T) {
	decode := func(addr string) (display.Config, []settings.Problem) {
		var d settings.Decoder
		c, _ := display.Drivers.Decode(&d, settings.Flat("driver", "web", "listen", addr), "displays[0]")
		return c, d.Problems()
	}
	for _, addr := range []string{"0.0.0.0:80", "10.0.0.1:8080", "example.com:80", "127.0.0.1", ":8080", "127.0.0.1:0"} {
		if _, p := decode(addr); len(p) != 1 || p[0].Path != "displays[0].listen" {
			t.Errorf("listen %q: problems %+v, want one on listen", addr, p)
		}
	}
	for _, addr := range []string{"127.0.0.1:8765", "[::1]:8765", "localhost:9000"} {
		if c, p := decode(addr); len(p) != 0 || c.Settings.(Settings).Listen != addr {
			t.Errorf("listen %q: %+v %v", addr, c, p)
		}
	}
	var d settings.Decoder
	if c, _ := display.Drivers.Decode(&d, settings.Flat("driver", "web"), "displays[0]"); c.Settings.(Settings).Listen != "127.0.0.1:8765" {
		t.Errorf("default: %+v", c)
	}
}

func TestRunEndsStreams(t *testing.T) {
	d, err := New(Settings{Listen: "127.0.0.1:0"}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	s := openStream(t, context.Background(), d)
	defer s.body.Close()
	s.next(t)
	cancel() // the open stream must not keep Run alive
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return with a stream open")
	}
}
