package web

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/zap/zaptest"

	"github.com/kioskd/kioskd/display"
)

const chromium = "/usr/bin/chromium"

// shown is what the page renders, read back from the DOM.
type shown struct {
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Amount string `json:"amount"`
	BG     string `json:"bg"`
}

// pollFor returns a predicate that is false until the page shows state with
// the given background colour (after the CSS transition), then the rendered
// texts.
func pollFor(state, bg string) string {
	return fmt.Sprintf(`(() => {
		const b = document.body;
		if (b.dataset.state !== %q || b.classList.contains("offline")) return false;
		const bg = getComputedStyle(b).backgroundColor;
		if (bg !== %q) return false;
		const a = document.getElementById("amount");
		return {title: document.getElementById("title").textContent,
			detail: document.getElementById("detail").textContent,
			amount: a.hidden ? "" : a.textContent, bg: bg};
	})()`, state, bg)
}

// TestBrowser drives Debian's chromium with chromedp: the page must show each
// pushed screen, texts and colour, within 1 s, and come back by itself after
// the agent restarts.
func TestBrowser(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("skipping the real-browser test: %s not found (%v); apt-get install chromium to run it (in CI it always runs)", chromium, err)
		}
		t.Fatalf("CI is set but %s is missing: %v", chromium, err)
	}
	d, stop := start(t, "127.0.0.1:0")
	defer stop()
	addr := d.Addr()

	dir := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.WindowSize(1024, 600),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	// The first Run starts the browser: no timeout on its context.
	if err := chromedp.Do(bctx, chromedp.Navigate(d.URL())); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	ready := within(t, bctx, 5*time.Second, "ready", "rgb(18, 38, 63)")
	if ready.Title != "Покажите QR-код" || ready.Amount != "" {
		t.Errorf("ready page = %+v", ready)
	}

	steps := []struct {
		s    display.Screen
		bg   string
		want shown
		shot string
	}{
		{display.Screen{State: display.Paying, Amount: 123456}, "rgb(29, 43, 74)",
			shown{Title: "Идёт оплата", Amount: "1\u00a0234,56\u00a0₽", Detail: "Подождите, пожалуйста"}, ""},
		{display.Screen{State: display.Paid, Amount: 123456}, "rgb(15, 123, 58)",
			shown{Title: "Оплата прошла", Amount: "1\u00a0234,56\u00a0₽", Detail: "Спасибо за покупку!"}, "paid.png"},
		{display.Screen{State: display.Declined, Amount: 990, Message: "Недостаточно средств"}, "rgb(179, 38, 30)",
			shown{Title: "Оплата не прошла", Amount: "9,90\u00a0₽", Detail: "Недостаточно средств"}, "declined.png"},
		{display.Screen{State: display.Ready, Lang: display.English}, "rgb(18, 38, 63)",
			shown{Title: "Show your QR code", Detail: "Hold the QR code from the app to the scanner"}, ""},
	}
	for _, st := range steps {
		start := time.Now()
		if err := d.Show(context.Background(), st.s); err != nil {
			t.Fatal(err)
		}
		got := within(t, bctx, time.Second, st.s.State.String(), st.bg)
		t.Logf("%s rendered %v after Show", st.s.State, time.Since(start).Round(time.Millisecond))
		st.want.BG = st.bg
		if got != st.want {
			t.Errorf("%s: page shows %+v, want %+v", st.s.State, got, st.want)
		}
		if st.shot != "" {
			png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, st.shot)
			if err := os.WriteFile(path, png, 0o644); err != nil {
				t.Fatal(err)
			}
			if keep := os.Getenv("KIOSKD_SCREENSHOTS"); keep != "" {
				// A copy to look at after the run; the temp dir is removed.
				if err := os.WriteFile(filepath.Join(keep, st.shot), png, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("screenshot %s (%d bytes)", path, len(png))
		}
	}

	// Restart the "agent": a new display on the same address. The page's
	// EventSource must reconnect and show the new screen by itself.
	stop()
	d2, stop2 := start(t, addr)
	defer stop2()
	if err := d2.Show(context.Background(), display.Screen{State: display.Offline}); err != nil {
		t.Fatal(err)
	}
	if got := within(t, bctx, 5*time.Second, "offline", "rgb(138, 75, 0)"); got.Title != "Оплата QR недоступна" {
		t.Errorf("after reconnect the page shows %+v", got)
	}
}

// start serves a display on addr; stop ends it and may be called again.
func start(t *testing.T, addr string) (d *Display, stop func()) {
	t.Helper()
	d, err := New(Settings{Listen: addr}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	return d, func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			d.Close()
		})
	}
}

// within waits at most limit for the page to show state in colour bg.
func within(t *testing.T, bctx context.Context, limit time.Duration, state, bg string) shown {
	t.Helper()
	ctx, cancel := context.WithTimeout(bctx, limit)
	defer cancel()
	got, err := chromedp.Run(ctx, chromedp.Poll[shown](pollFor(state, bg),
		chromedp.WithPollingInterval(5*time.Millisecond), chromedp.WithPollingTimeout(limit)))
	if err != nil {
		cur, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.dataset.state + " " + getComputedStyle(document.body).backgroundColor + " " + document.body.className`))
		t.Fatalf("page did not show %s (%s) within %v: %v; it shows %q", state, bg, limit, err, cur)
	}
	return got
}
