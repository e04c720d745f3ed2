package vmtest

import (
	"testing"

	"golang.org/x/text/encoding/charmap"
)

func cp866(t *testing.T, s string) []byte {
	t.Helper()
	b, err := charmap.CodePage866.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPoleScreenEpsonCP866(t *testing.T) {
	p := NewPoleScreen()
	var in []byte
	in = append(in, 0x1B, 0x40, 0x1B, 0x74, 17, 0x1F, 0x43, 0x00, 0x0C)
	in = append(in, cp866(t, "Оплачено")...)
	in = append(in, 0x1F, 0x24, 1, 2)
	in = append(in, cp866(t, "123,45 ₽"[:7])...)
	// Split the stream inside an escape sequence, as a serial port may.
	p.Write(in[:4])
	p.Write(in[4:])
	got := p.Lines()
	if got[0] != "Оплачено" || got[1] != "123,45" {
		t.Fatalf("lines = %q", got)
	}
	p.Write([]byte{0x0C})
	if l := p.Lines(); l[0] != "" || l[1] != "" {
		t.Fatalf("after clear: %q", l)
	}
	if !p.Shown("Оплачено") || p.Shown("Отказ") {
		t.Fatal("history must keep the rows shown before the clear, and only those")
	}
}

func TestPoleScreenWrapsLongLine(t *testing.T) {
	p := NewPoleScreen()
	p.Write([]byte("abcdefghijklmnopqrstuvwxyz"))
	if l := p.Lines(); l[0] != "abcdefghijklmnopqrst" || l[1] != "uvwxyz" {
		t.Fatalf("lines = %q", l)
	}
}
