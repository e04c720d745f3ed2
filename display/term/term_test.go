package term

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/scanner/settings"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func TestPlain(t *testing.T) {
	var buf bytes.Buffer
	d := New(&buf, Auto) // a buffer is no terminal: plain lines
	ctx := context.Background()
	for _, s := range []display.Screen{
		{State: display.Ready},
		{State: display.Paid, Amount: 123456},
		{State: display.Declined, Message: "Card blocked", Lang: display.English, Amount: 100},
	} {
		if err := d.Show(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	want := "[ready] Покажите QR-код | Поднесите QR-код из приложения к сканеру\n" +
		"[paid] Оплата прошла | 1 234,56 ₽ | Спасибо за покупку!\n" +
		"[declined] Payment declined | RUB 1.00 | Card blocked\n"
	if buf.String() != want {
		t.Errorf("plain output:\n%s\nwant:\n%s", buf.String(), want)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Show(ctx, display.Screen{}); err == nil {
		t.Error("Show after Close succeeded")
	}
}

// TestANSIGolden keeps the exact escape sequences of two consecutive boxes
// (the second redraws over the first) in testdata/box.golden.
func TestANSIGolden(t *testing.T) {
	var buf bytes.Buffer
	d := New(&buf, ANSI)
	ctx := context.Background()
	for _, s := range []display.Screen{{State: display.Paying, Amount: 12345}, {State: display.Paid, Amount: 12345}} {
		if err := d.Show(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join("testdata", "box.golden")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("ANSI output differs from %s:\n%q", path, buf.String())
	}
	// Every line of the box is the same width on screen.
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if n := visible(strings.ReplaceAll(l, "\r", "")); n != inner+4 {
			t.Errorf("line %q is %d columns", l, n)
		}
	}
}

// TestTerminalDetected writes to a real pty: the display must notice it is
// a terminal and draw the box, then redraw it in place.
func TestTerminalDetected(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer slave.Close()
	d := New(slave, Auto)
	if !d.ansi {
		t.Fatal("a pty was not taken for a terminal")
	}
	got := make(chan []byte)
	go func() {
		// Read what two boxes take; the pty turns \n into \r\n.
		var b bytes.Buffer
		buf := make([]byte, 4096)
		for b.Len() < 2000 {
			n, err := master.Read(buf)
			b.Write(buf[:n])
			if err != nil || bytes.Count(b.Bytes(), []byte("╯")) == 2 {
				break
			}
		}
		got <- b.Bytes()
	}()
	ctx := context.Background()
	_ = d.Show(ctx, display.Screen{State: display.Paying, Amount: 12345})
	_ = d.Show(ctx, display.Screen{State: display.Paid, Amount: 12345})
	select {
	case b := <-got:
		s := string(b)
		for _, want := range []string{"\x1b[32m", "Оплата прошла", "123,45 ₽", "\x1b[6A"} {
			if !strings.Contains(s, want) {
				t.Errorf("terminal output lacks %q:\n%q", want, s)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing arrived on the pty")
	}
	if IsTerminal(io.Discard) {
		t.Error("io.Discard taken for a terminal")
	}
}

// mode: lines keeps a terminal to one line per screen, for when other
// output shares it (the vending demo's machine).
func TestModeKey(t *testing.T) {
	var d settings.Decoder
	e, ok := display.Drivers.Decode(&d, settings.Flat("driver", "term", "mode", "lines"), "displays[0]")
	if !ok || len(d.Problems()) > 0 || e.Settings.(Settings).Mode != Plain || Plain.String() != "lines" {
		t.Fatalf("decoded %+v, problems %+v", e, d.Problems())
	}
	d = settings.Decoder{}
	display.Drivers.Decode(&d, settings.Flat("driver", "term", "mode", "fancy"), "displays[0]")
	if p := d.Problems(); len(p) != 1 || p[0].Msg != `want one of auto, box, lines, got "fancy"` {
		t.Errorf("problems %+v", p)
	}
}
