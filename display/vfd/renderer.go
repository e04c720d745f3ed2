package vfd

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/scanner/settings"
)

// Defaults of Options.
const (
	DefaultCommandSet = "epson"
	DefaultCodepage   = "cp866"
)

// Options selects the command set and the code page.
type Options struct {
	CommandSet string // one of CommandSets(); DefaultCommandSet when empty
	Codepage   string // one of Codepages(); DefaultCodepage when empty
	CodepageN  int    // n of ESC t n; 0: the code page's usual number; -1: none
}

// Fields declares command_set, codepage and codepage_table.
func (o *Options) Fields() []settings.Field {
	return []settings.Field{
		settings.Enum("command_set", &o.CommandSet, CommandSets()...),
		settings.Enum("codepage", &o.Codepage, Codepages()...),
		settings.Int("codepage_table", &o.CodepageN, -1, 255),
	}
}

func (o Options) withDefaults() Options {
	if o.CommandSet == "" {
		o.CommandSet = DefaultCommandSet
	}
	if o.Codepage == "" {
		o.Codepage = DefaultCodepage
	}
	return o
}

// Validate reports the first option outside the tables, for options made
// in code (devices.yaml's are checked by Fields when they are read).
func (o Options) Validate() error {
	o = o.withDefaults()
	if _, ok := commandSets[o.CommandSet]; !ok {
		return fmt.Errorf("vfd: unknown command set %q (known: %s)", o.CommandSet, strings.Join(CommandSets(), ", "))
	}
	if _, ok := codepages[o.Codepage]; !ok {
		return fmt.Errorf("vfd: unknown code page %q (known: %s)", o.Codepage, strings.Join(Codepages(), ", "))
	}
	if o.CodepageN < -1 || o.CodepageN > 255 {
		return fmt.Errorf("vfd: code page number %d is not a byte (0..255, or -1 for no code page command)", o.CodepageN)
	}
	return nil
}

// CommandSets returns the names of the command sets, sorted.
func CommandSets() []string { return slices.Sorted(maps.Keys(commandSets)) }

// Codepages returns the names of the code pages, sorted.
func Codepages() []string { return slices.Sorted(maps.Keys(codepages)) }

// Renderer writes screens to a pole display behind any io.Writer. The first
// Show (and the first after Reset) sends the initialisation sequence; every
// Show sends both lines in full.
type Renderer struct {
	w      io.Writer
	set    commandSet
	cp     codepage
	cpN    int
	inited bool
	buf    []byte
}

// NewRenderer returns a Renderer writing to w, or the options' error.
func NewRenderer(w io.Writer, o Options) (*Renderer, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	r := &Renderer{w: w, set: commandSets[o.CommandSet], cp: codepages[o.Codepage]}
	r.cpN = r.cp.n
	if o.CodepageN != 0 {
		r.cpN = o.CodepageN
	}
	if !r.set.codepage {
		r.cpN = -1
	}
	return r, nil
}

// Frame returns the bytes Show would write for s, without writing them.
// The slice is reused by the next call.
func (r *Renderer) Frame(s display.Screen) []byte {
	b := r.buf[:0]
	if !r.inited {
		b = r.set.init(b, r.cpN)
	}
	lines := Layout(s)
	var l1, l2 [Width]byte
	b = r.set.frame(b, encode(l1[:0], r.cp.cm, lines[0]), encode(l2[:0], r.cp.cm, lines[1]))
	r.buf = b
	return b
}

// Show writes s in one Write call. ctx is checked before writing; the write
// itself goes to the kernel's tty buffer, which takes a frame (about 50
// bytes) at once.
func (r *Renderer) Show(ctx context.Context, s display.Screen) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b := r.Frame(s)
	n, err := r.w.Write(b)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		r.inited = false                  // the display may have lost its state too
		return fmt.Errorf("vfd: %w", err) // a port's *fs.PathError says "write <port>: …"
	}
	r.inited = true
	return nil
}

// Reset makes the next Show initialise the display again, as after a
// reconnect.
func (r *Renderer) Reset() { r.inited = false }
