package term

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"unicode/utf8"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/scanner/settings"
)

func init() { settings.Register(display.Drivers, "term", Settings{Output: "stdout"}) }

// Settings is a term display's devices.yaml entry.
type Settings struct {
	Output string // "stdout" or "stderr": kioskd's own stream to draw on
}

// Fields declares the one key, output.
func (s *Settings) Fields() []settings.Field {
	return []settings.Field{settings.Enum("output", &s.Output, "stdout", "stderr")}
}

// Open draws on kioskd's stdout or stderr, as a box when it is a terminal.
func (s Settings) Open(string, *zap.Logger) (display.Display, error) {
	w := os.Stdout
	if s.Output == "stderr" {
		w = os.Stderr
	}
	return New(w, Auto), nil
}

var _ display.Settings = Settings{}

// Mode chooses between the box and plain lines.
type Mode int

// Modes of New.
const (
	Auto  Mode = iota // ANSI when the writer is a terminal, else Plain
	ANSI              // coloured box, redrawn in place
	Plain             // one line per screen
)

// IsTerminal reports whether w is a terminal (a tty or pty).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// Display writes screens to a terminal or a plain stream. It does not close
// the writer, which belongs to the caller (usually os.Stdout).
type Display struct {
	w    io.Writer
	ansi bool

	mu     sync.Mutex
	drawn  int // lines of the box on the terminal, 0 before the first draw
	closed bool
	buf    strings.Builder
}

// New returns a Display writing to w.
func New(w io.Writer, m Mode) *Display {
	ansi := m == ANSI || (m == Auto && IsTerminal(w))
	return &Display{w: w, ansi: ansi}
}

// inner is the width of the box's text area in columns.
const inner = 44

const (
	reset = "\x1b[0m"
	bold  = "\x1b[1m"
)

// colours per tone: border/title colour, and the icon shown before the title.
var tones = map[display.Tone]struct{ color, icon string }{
	display.ToneIdle:    {"\x1b[36m", "▣"},
	display.ToneBusy:    {"\x1b[33m", "…"},
	display.ToneSuccess: {"\x1b[32m", "✔"},
	display.ToneFailure: {"\x1b[31m", "✘"},
	display.ToneWarning: {"\x1b[35m", "!"},
}

// Show draws s. On a terminal the previous box is overwritten in place.
func (d *Display) Show(ctx context.Context, s display.Screen) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("term: display closed")
	}
	d.buf.Reset()
	if d.ansi {
		d.box(s)
	} else {
		d.line(s)
	}
	if _, err := io.WriteString(d.w, d.buf.String()); err != nil {
		return fmt.Errorf("term: write: %w", err)
	}
	return nil
}

func (d *Display) line(s display.Screen) {
	t := display.Long(s)
	fmt.Fprintf(&d.buf, "[%s] %s", s.State, t.Title)
	if t.Amount != "" {
		fmt.Fprintf(&d.buf, " | %s", strings.ReplaceAll(t.Amount, "\u00a0", " "))
	}
	if t.Detail != "" {
		fmt.Fprintf(&d.buf, " | %s", t.Detail)
	}
	d.buf.WriteByte('\n')
}

func (d *Display) box(s display.Screen) {
	t := display.Long(s)
	tone := tones[display.ToneOf(s.State)]
	b := &d.buf
	if d.drawn > 0 {
		fmt.Fprintf(b, "\x1b[%dA", d.drawn) // back to the top of the old box
	}
	rows := []string{
		bold + tone.color + tone.icon + " " + fit(t.Title, inner-2) + reset,
		"",
		bold + pad(fit(strings.ReplaceAll(t.Amount, "\u00a0", " "), inner), inner, true) + reset,
		fit(t.Detail, inner),
	}
	border := tone.color + strings.Repeat("─", inner+2) + reset
	fmt.Fprintf(b, "\r\x1b[2K%s╭%s%s╮%s\n", tone.color, border, tone.color, reset)
	for _, r := range rows {
		fmt.Fprintf(b, "\r\x1b[2K%s│%s %s %s│%s\n", tone.color, reset, pad(r, inner, false), tone.color, reset)
	}
	fmt.Fprintf(b, "\r\x1b[2K%s╰%s%s╯%s\n", tone.color, border, tone.color, reset)
	d.drawn = len(rows) + 2
}

// fit cuts s to w columns (every rune we print is one column wide).
func fit(s string, w int) string {
	if utf8.RuneCountInString(s) <= w {
		return s
	}
	r := []rune(s)
	return string(r[:w-1]) + "…"
}

// pad pads s to w visible columns, ignoring escape sequences.
func pad(s string, w int, right bool) string {
	n := visible(s)
	if n >= w {
		return s
	}
	if right {
		return strings.Repeat(" ", w-n) + s
	}
	return s + strings.Repeat(" ", w-n)
}

func visible(s string) int {
	n, esc := 0, false
	for _, r := range s {
		switch {
		case esc:
			// A CSI sequence ends with a letter: "\x1b[32m", "\x1b[6A".
			esc = !(r >= '@' && r <= '~' && r != '[')
		case r == '\x1b':
			esc = true
		default:
			n++
		}
	}
	return n
}

// Close stops further output; the writer stays open.
func (d *Display) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	return nil
}

var _ display.Display = (*Display)(nil)
