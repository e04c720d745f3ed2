package vfd

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kioskd/kioskd/display"
)

// Width is the number of columns of a pole display line.
const Width = 20

// Layout returns the two lines of s for a 2x20 display, each exactly Width
// runes: the title on the first line; on the second the service's message
// when there is one (it explains a decline), else the amount right-aligned,
// else the hint. Lines too long are cut after a whole word and end in "..".
func Layout(s display.Screen) [2]string {
	t := display.Short(s)
	t.Title, t.Detail = plain(t.Title), plain(t.Detail)
	line2 := t.Detail
	switch {
	case strings.TrimSpace(s.Message) != "":
		line2 = shorten(t.Detail, Width)
	case t.Amount != "":
		line2 = rightAlign(amountFit(t.Amount), Width)
	default:
		line2 = shorten(line2, Width)
	}
	return [2]string{pad(shorten(t.Title, Width), Width), pad(line2, Width)}
}

// shorten collapses white space and cuts s to at most w runes after the
// last whole word that fits, adding ".." when there is room for it: the
// words matter more than the mark. Only a single word longer than the line
// is split.
func shorten(s string, w int) string {
	s = strings.Join(strings.FieldsFunc(s, unicode.IsSpace), " ")
	if utf8.RuneCountInString(s) <= w {
		return s
	}
	const mark = ".."
	r := []rune(s)
	// r[:i] ends a whole word when r[i] is a space; r[w] exists because s
	// is longer than w.
	cut := -1
	for i := w; i > 0; i-- {
		if r[i] == ' ' {
			cut = i
			break
		}
	}
	if cut < 0 {
		return string(r[:w-len(mark)]) + mark
	}
	head := strings.TrimRightFunc(string(r[:cut]), func(r rune) bool {
		return unicode.IsSpace(r) || strings.ContainsRune(",;:-", r)
	})
	if utf8.RuneCountInString(head)+len(mark) <= w {
		head += mark
	}
	return head
}

// amountFit keeps an amount within a line; it drops the digit grouping
// before anything else and never cuts digits.
func amountFit(a string) string {
	if utf8.RuneCountInString(a) <= Width {
		return a
	}
	parts := strings.Fields(a)
	var b strings.Builder
	for i, p := range parts {
		if i == len(parts)-1 && !strings.ContainsAny(p, "0123456789") {
			b.WriteByte(' ')
		}
		b.WriteString(p)
	}
	if a = b.String(); utf8.RuneCountInString(a) <= Width {
		return a
	}
	// Larger than any sale a kiosk takes: show a mark, never wrong digits.
	return strings.Repeat("#", Width)
}

func pad(s string, w int) string {
	if n := utf8.RuneCountInString(s); n < w {
		return s + strings.Repeat(" ", w-n)
	}
	return s
}

func rightAlign(s string, w int) string {
	if n := utf8.RuneCountInString(s); n < w {
		return strings.Repeat(" ", w-n) + s
	}
	return s
}

// fallbacks replace typographic characters that pole display code pages
// lack, so a service message with «quotes» or a dash still reads well.
var fallbacks = strings.NewReplacer(
	"«", `"`, "»", `"`, "„", `"`, "“", `"`, "”", `"`, "‘", "'", "’", "'",
	"–", "-", "—", "-", "−", "-", "…", "...", "\u00a0", " ", "₽", "руб.", "№", "N")

func plain(s string) string { return fallbacks.Replace(s) }
