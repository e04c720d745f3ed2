package vfd

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"golang.org/x/text/encoding/charmap"

	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/scanner/serial/serialtest"
)

// epsonScreen plays an Epson customer display on the far end of a pty: it
// parses the commands it receives and decodes text with CP866 into a 2x20
// picture, as the real device would show it.
type epsonScreen struct {
	cells    [2][Width]rune
	x, y     int
	codepage int
	updates  chan [2]string // the picture after each complete frame
	pty      *serialtest.Pty
}

func newEpsonScreen() *epsonScreen {
	e := &epsonScreen{codepage: -1, updates: make(chan [2]string, 100)}
	e.clear()
	return e
}

func (e *epsonScreen) clear() {
	for y := range e.cells {
		for x := range e.cells[y] {
			e.cells[y][x] = ' '
		}
	}
	e.x, e.y = 0, 0
}

func (e *epsonScreen) picture() [2]string {
	return [2]string{string(e.cells[0][:]), string(e.cells[1][:])}
}

// run reads r until it fails (the pty is closed). Each frame ends with the
// last column of line 2, where the picture is published.
func (e *epsonScreen) run(r io.Reader) {
	buf := make([]byte, 0, 256)
	chunk := make([]byte, 256)
	for {
		n, err := r.Read(chunk)
		buf = append(buf, chunk[:n]...)
		buf = e.parse(buf)
		if err != nil {
			close(e.updates)
			return
		}
	}
}

// parse consumes complete commands and characters from b and returns the
// incomplete rest.
func (e *epsonScreen) parse(b []byte) []byte {
	for len(b) > 0 {
		switch {
		case b[0] == 0x1b && len(b) >= 2 && b[1] == 0x40: // ESC @
			e.clear()
			e.codepage = 0
			b = b[2:]
		case b[0] == 0x1b && len(b) >= 3 && b[1] == 0x74: // ESC t n
			e.codepage = int(b[2])
			b = b[3:]
		case b[0] == 0x1f && len(b) >= 3 && b[1] == 0x43: // US C n
			b = b[3:]
		case b[0] == 0x1f && len(b) >= 4 && b[1] == 0x24: // US $ x y
			e.x, e.y = int(b[2])-1, int(b[3])-1
			b = b[4:]
		case b[0] == 0x0c:
			e.clear()
			b = b[1:]
		case b[0] == 0x1b || b[0] == 0x1f:
			return b // a command not complete yet
		case b[0] < 0x20:
			panic("unexpected control byte in the Epson stream")
		default:
			if e.y < 2 && e.x < Width {
				e.cells[e.y][e.x] = charmap.CodePage866.DecodeByte(b[0])
			}
			e.x++
			if e.y == 1 && e.x == Width {
				e.updates <- e.picture()
			}
			b = b[1:]
		}
	}
	return b
}

// plugScreen plugs an Epson display in behind link, as udev would: a pty
// whose far end an epsonScreen reads. It is unplugged at the test's end if
// not before.
func plugScreen(t testing.TB, link string) *epsonScreen {
	e := newEpsonScreen()
	e.pty = serialtest.New(t, link)
	go e.run(e.pty.Master)
	t.Cleanup(e.unplug)
	return e
}

// unplug pulls the display's cable (the link goes, then both ends of the
// pty) and returns once the reader has ended.
func (e *epsonScreen) unplug() {
	e.pty.Close()
	for range e.updates {
	}
}

func expectPicture(t *testing.T, e *epsonScreen, want [2]string) {
	t.Helper()
	select {
	case got := <-e.updates:
		if got != want {
			t.Fatalf("display shows\n|%s|\n|%s|\nwant\n|%s|\n|%s|", got[0], got[1], want[0], want[1])
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no frame arrived on the pty")
	}
}

// TestPtyRussian runs the real driver (tarm/serial on a pty) and decodes
// what arrives on the other end back to Russian text.
func TestPtyRussian(t *testing.T) {
	link := filepath.Join(t.TempDir(), "display0")
	e := plugScreen(t, link)
	d, err := New(on(link), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	steps := []struct {
		s    display.Screen
		want [2]string
	}{
		{display.Screen{State: display.Ready},
			[2]string{"Покажите QR-код     ", "для оплаты          "}},
		{display.Screen{State: display.Paying, Amount: 123456},
			[2]string{"Оплата              ", "       1 234,56 руб."}},
		{display.Screen{State: display.Declined, Message: "Недостаточно средств на счёте"},
			[2]string{"Отказ в оплате      ", "Недостаточно средств"}},
		{display.Screen{State: display.Paid, Amount: 5},
			[2]string{"Оплачено            ", "           0,05 руб."}},
	}
	for _, st := range steps {
		if err := d.Show(ctx, st.s); err != nil {
			t.Fatal(err)
		}
		expectPicture(t, e, st.want)
	}
	if e.codepage != 17 {
		t.Errorf("code page selected = %d, want 17 (PC866)", e.codepage)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestPtyUnplugReplug pulls the "USB cable" (closes the pty master), checks
// that Show fails, then plugs a new device in under the same stable path and
// checks that the next Show reopens it and initialises it again.
func TestPtyUnplugReplug(t *testing.T) {
	link := filepath.Join(t.TempDir(), "display0")
	e := plugScreen(t, link)
	d, err := New(on(link), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	ready := display.Screen{State: display.Ready, Lang: display.English}
	if err := d.Show(ctx, ready); err != nil {
		t.Fatal(err)
	}
	expectPicture(t, e, [2]string{"Show your QR code   ", "to pay              "})

	e.unplug()
	if err := d.Show(ctx, ready); err == nil {
		t.Fatal("Show on an unplugged display succeeded")
	}

	e2 := plugScreen(t, link) // replug, new tty behind the same link
	if err := d.Show(ctx, display.Screen{State: display.Paid, Amount: 100, Lang: display.English}); err != nil {
		t.Fatalf("Show after replug: %v", err)
	}
	expectPicture(t, e2, [2]string{"Paid                ", "            RUB 1.00"})
	if e2.codepage != 17 {
		t.Errorf("the replugged display was not initialised again (code page %d)", e2.codepage)
	}
}

// TestOpenBackoff checks that a missing port is not opened again before its
// delay has passed, and is opened as soon as it has.
func TestOpenBackoff(t *testing.T) {
	link := filepath.Join(t.TempDir(), "display0")
	d, err := New(on(link), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	now := time.Unix(1000, 0)
	d.now = func() time.Time { return now }
	ctx := context.Background()
	s := display.Screen{State: display.Ready}

	// Each layer says what it knows once: the package, then tarm's
	// "open <port>: …", then the wait.
	if err := d.Show(ctx, s); !errors.Is(err, fs.ErrNotExist) || err.Error() != "vfd: open "+link+": no such file or directory" {
		t.Fatalf("first Show = %v, want not exist", err)
	}
	if err := d.Show(ctx, s); !errors.Is(err, ErrWaiting) || !errors.Is(err, fs.ErrNotExist) ||
		err.Error() != "vfd: open "+link+": no such file or directory (waiting to retry, 250ms left)" {
		t.Fatalf("Show within the delay = %v, want ErrWaiting wrapping the open error", err)
	}
	e := plugScreen(t, link)
	now = now.Add(minReopen)
	if err := d.Show(ctx, s); err != nil {
		t.Fatalf("Show after the delay: %v", err)
	}
	expectPicture(t, e, [2]string{"Покажите QR-код     ", "для оплаты          "})
}

// on returns the default settings of a pole display on port.
func on(port string) Settings {
	s := Defaults
	s.Port.Path = port
	return s
}
