package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/scanner/settings"
)

func init() { settings.Register(display.Drivers, "web", Settings{Listen: "127.0.0.1:8765"}) }

// Settings is a web display's devices.yaml entry.
type Settings struct {
	// Listen is the loopback host:port the page is served on: the page is
	// for the kiosk's own browser.
	Listen string
}

// Fields declares the one key, listen.
func (s *Settings) Fields() []settings.Field {
	return []settings.Field{settings.HostPort("listen", &s.Listen, true)}
}

// Opens is the address, so no two entries listen on it.
func (s Settings) Opens() settings.Resource {
	return settings.Resource{Kind: settings.Listen, Addr: s.Listen}
}

// Open listens (see New).
func (s Settings) Open(_ string, log *zap.Logger) (display.Display, error) { return New(s, log) }

var _ display.Settings = Settings{}

//go:embed static
var static embed.FS

const (
	heartbeat    = 15 * time.Second // keeps idle connections and proxies honest
	writeTimeout = 5 * time.Second  // a browser that stops reading is dropped
)

// Display is the web customer display. Show never waits for a browser: it
// stores the screen and wakes the connected event streams.
type Display struct {
	log *zap.Logger
	ln  net.Listener
	mux *http.ServeMux

	mu      sync.Mutex
	current []byte // JSON of the latest screen, sent to every new stream
	seq     uint64
	subs    map[chan struct{}]struct{}
	serving bool
	closed  bool
}

// event is what the page receives: the texts are made here, so the page
// stays a dumb renderer and both languages live in one place (package display).
type event struct {
	Seq    uint64 `json:"seq"`
	State  string `json:"state"`
	Tone   string `json:"tone"`
	Lang   string `json:"lang"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Amount string `json:"amount"`
}

// New listens on s.Listen, so a port already taken is reported at
// start-up. Run serves the page.
func New(s Settings, log *zap.Logger) (*Display, error) {
	ln, err := net.Listen("tcp", s.Listen)
	if err != nil {
		return nil, fmt.Errorf("web: %w", err) // "listen tcp …: bind: address already in use"
	}
	return NewListener(ln, log), nil
}

// NewListener returns a Display that will serve on ln.
func NewListener(ln net.Listener, log *zap.Logger) *Display {
	if log == nil {
		log = zap.NewNop()
	}
	d := &Display{log: log, ln: ln, subs: map[chan struct{}]struct{}{}}
	d.setLocked(display.Screen{State: display.Ready})
	sub, _ := fs.Sub(static, "static")
	files := http.FileServerFS(sub)
	d.mux = http.NewServeMux()
	d.mux.HandleFunc("GET /events", d.events)
	d.mux.HandleFunc("GET /screen", d.screen)
	d.mux.Handle("GET /", files)
	return d
}

// Addr is the address the page is served on.
func (d *Display) Addr() string { return d.ln.Addr().String() }

// URL is the address to open in the kiosk browser.
func (d *Display) URL() string { return "http://" + d.Addr() + "/" }

// Handler serves the page, /events (the SSE stream) and /screen (the
// current screen as JSON, for diagnostics).
func (d *Display) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Nothing external may load: the kiosk is often offline and the page
		// must not become a way out of kiosk mode.
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		d.mux.ServeHTTP(w, r)
	})
}

// Show publishes s to every connected page. It does not block.
func (d *Display) Show(ctx context.Context, s display.Screen) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("web: display closed")
	}
	d.setLocked(s)
	for ch := range d.subs {
		select {
		case ch <- struct{}{}:
		default: // the stream is already due to send; it sends the newest
		}
	}
	return nil
}

func (d *Display) setLocked(s display.Screen) {
	d.seq++
	t := display.Long(s)
	lang := s.Lang
	if lang != display.English {
		lang = display.Russian
	}
	b, err := json.Marshal(event{Seq: d.seq, State: s.State.String(), Tone: display.ToneOf(s.State).String(),
		Lang: string(lang), Title: t.Title, Detail: t.Detail, Amount: t.Amount})
	if err != nil {
		panic(err) // strings only: cannot fail
	}
	d.current = b
}

func (d *Display) snapshot() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.current
}

func (d *Display) screen(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(d.snapshot())
}

// events streams screens: the current one at once, then each newer one.
// Screens shown faster than a browser reads are skipped, not queued.
func (d *Display) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")

	wake := make(chan struct{}, 1)
	d.mu.Lock()
	d.subs[wake] = struct{}{}
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.subs, wake)
		d.mu.Unlock()
	}()

	send := func(b []byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	// retry: how soon the browser reconnects after the agent restarts.
	if err := send([]byte("retry: 1000\n\n")); err != nil {
		return
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	var last []byte
	for {
		if cur := d.snapshot(); string(cur) != string(last) {
			msg := make([]byte, 0, len(cur)+32)
			msg = append(msg, "event: screen\ndata: "...)
			msg = append(msg, cur...)
			msg = append(msg, "\n\n"...)
			if err := send(msg); err != nil {
				d.log.Debug("web display stream ended", zap.Error(err))
				return
			}
			last = cur
		}
		select {
		case <-r.Context().Done():
			return
		case <-wake:
		case <-tick.C:
			if err := send([]byte(": ping\n\n")); err != nil {
				return
			}
		}
	}
}

// Run serves on the display's listener until ctx ends; it implements
// display.Runner, so a display.Fanout runs it.
func (d *Display) Run(ctx context.Context) error { return d.Serve(ctx, d.ln) }

// Serve serves the page on ln until ctx ends, then stops every stream and
// returns nil; it returns the server's error if serving fails earlier.
func (d *Display) Serve(ctx context.Context, ln net.Listener) error {
	d.mu.Lock()
	if d.serving || d.closed {
		d.mu.Unlock()
		return errors.New("web: already serving or closed")
	}
	d.serving = true
	d.mu.Unlock()

	srv := &http.Server{
		Handler:           d.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		// Streams end with ctx: their request contexts derive from it.
		BaseContext: func(net.Listener) context.Context { return ctx },
		ErrorLog:    zap.NewStdLog(d.log),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	d.log.Info("web display serving", zap.String("url", "http://"+ln.Addr().String()+"/"))
	select {
	case err := <-done:
		_ = srv.Close() // end the streams still open: nobody owns them now
		return fmt.Errorf("web: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	<-done // http.ErrServerClosed
	return nil
}

// Close stops accepting connections; it may be called more than once.
func (d *Display) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if err := d.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("web: close: %w", err)
	}
	return nil
}

var (
	_ display.Display = (*Display)(nil)
	_ display.Runner  = (*Display)(nil)
)
