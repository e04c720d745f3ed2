package display_test

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/display/term"
	"github.com/kioskd/kioskd/display/vfd"
	"github.com/kioskd/kioskd/display/web"
	"github.com/kioskd/kioskd/scanner/serial/serialtest"
)

// TestFanoutRealDrivers runs a Fanout over real drivers: a pole display
// whose port does not exist yet and a web display. The web page must get
// every screen while the pole display is down; once the pole display is
// plugged in, the Fanout's retry brings it the current screen without any
// new Show.
func TestFanoutRealDrivers(t *testing.T) {
	log := zaptest.NewLogger(t)
	link := filepath.Join(t.TempDir(), "display0")
	poleSet := vfd.Defaults
	poleSet.Port.Path = link
	pole, err := display.New(display.Config{Name: "pole", Driver: "vfd", Settings: poleSet}, log)
	if err != nil {
		t.Fatal(err)
	}
	page, err := display.New(display.Config{Name: "page", Driver: "web", Settings: web.Settings{Listen: "127.0.0.1:0"}}, log)
	if err != nil {
		t.Fatal(err)
	}
	status := make(chan string, 10)
	f := display.NewFanout(log, display.FanoutOptions{
		RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond,
		Status: func(name string, up bool, _ error) {
			if up {
				status <- name + " up"
			} else {
				status <- name + " down"
			}
		},
	}, display.Target{Name: "pole", Display: pole}, display.Target{Name: "page", Display: page})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer display.StartFanout(t, f)()

	sctx, stopStream := context.WithCancel(ctx)
	defer stopStream()
	req, _ := http.NewRequestWithContext(sctx, http.MethodGet, page.(*web.Display).URL()+"events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	waitData := func(want string) {
		t.Helper()
		for lines.Scan() {
			if strings.HasPrefix(lines.Text(), "data: ") && strings.Contains(lines.Text(), want) {
				return
			}
		}
		t.Fatalf("stream ended before %q", want)
	}

	f.Show(display.Screen{State: display.Paying, Amount: 100})
	waitData(`"state":"paying"`)
	f.Show(display.Screen{State: display.Paid, Amount: 100})
	waitData(`"state":"paid"`)
	seen := map[string]bool{}
	for !seen["pole down"] || !seen["page up"] {
		select {
		case s := <-status:
			seen[s] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("status events so far: %v", seen)
		}
	}

	// Plug the pole display in: a pty behind the stable path.
	master := serialtest.New(t, link).Master
	for !seen["pole up"] {
		select {
		case s := <-status:
			seen[s] = true
		case <-time.After(10 * time.Second):
			t.Fatal("pole display never came up after it was plugged in")
		}
	}
	// The retried screen is the newest one: "Оплачено" in CP866.
	const paid = "\x8e\xaf\xab\xa0\xe7\xa5\xad\xae"
	var got []byte
	_ = master.SetReadDeadline(time.Now().Add(10 * time.Second))
	for !strings.Contains(string(got), paid) {
		buf := make([]byte, 256)
		n, err := master.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("pole display got %q, then %v; want the paid screen", got, err)
		}
	}
	for _, st := range f.Stats() {
		if !st.Up || !st.Known {
			t.Errorf("stats %+v, want up", st)
		}
	}
}

// Several flow states map to one screen (releasing and paying to "paying";
// paid, confirming and completed to "paid"): the terminal prints each
// screen once, and a screen shown again after another one is printed again.
func TestFanoutShowsAScreenOnce(t *testing.T) {
	out, err := os.Create(filepath.Join(t.TempDir(), "term.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	printed := func() string { b, _ := os.ReadFile(out.Name()); return string(b) }
	f := display.NewFanout(zaptest.NewLogger(t), display.FanoutOptions{},
		display.Target{Name: "term", Display: term.New(out, term.Plain)})
	defer display.StartFanout(t, f)()
	seq := []display.Screen{
		{State: display.Paying, Amount: 100}, {State: display.Paying, Amount: 100},
		{State: display.Paid, Amount: 100}, {State: display.Paid, Amount: 100}, {State: display.Paid, Amount: 100},
		{State: display.Ready},
	}
	lines := func() []string { return strings.Split(strings.TrimSpace(printed()), "\n") }
	for i, s := range seq {
		f.Show(s)
		// Wait until the Fanout has taken s (shown or skipped) before the next.
		deadline := time.Now().Add(10 * time.Second)
		for f.Stats()[0].Shown+f.Stats()[0].Skipped < uint64(i+1) {
			if time.Now().After(deadline) {
				t.Fatalf("screen %d not taken; output:\n%s", i, printed())
			}
			time.Sleep(time.Millisecond)
		}
	}
	if got := lines(); len(got) != 3 {
		t.Fatalf("printed %d lines, want 3 (paying, paid, ready):\n%s", len(got), printed())
	}
	f.Show(display.Screen{State: display.Paying, Amount: 100}) // not the current screen: printed again
	deadline := time.Now().Add(10 * time.Second)
	for len(lines()) != 4 {
		if time.Now().After(deadline) {
			t.Fatalf("a screen shown again after another was not printed:\n%s", printed())
		}
		time.Sleep(time.Millisecond)
	}
}
