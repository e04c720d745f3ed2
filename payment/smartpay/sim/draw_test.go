package sim

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDrawQR(t *testing.T) {
	art, err := DrawQR(`{"id_loyalty":"u","encrypted":"AAAA","sign":"BBBB"}`)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(art, "\n"), "\n")
	width := utf8.RuneCountInString(lines[0])
	// Two module rows per line, quiet zone included: roughly square.
	if width < 21 || len(lines) != (width+1)/2 {
		t.Fatalf("%d lines of %d", len(lines), width)
	}
	for i, l := range lines {
		if utf8.RuneCountInString(l) != width {
			t.Fatalf("line %d has %d cells, want %d", i, utf8.RuneCountInString(l), width)
		}
	}
	if !strings.HasPrefix(lines[0], "████") {
		t.Fatalf("quiet zone not light: %q", lines[0])
	}
}
