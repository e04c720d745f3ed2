package vfd

import (
	"golang.org/x/text/encoding/charmap"
)

// codepage is a character set a display can be switched to, with the usual
// n of the Epson "ESC t n" command for it. The numbers come from the ESC/POS
// code page table and vary by model (unconfirmed): Options.CodepageN overrides.
type codepage struct {
	cm *charmap.Charmap
	n  int
}

var codepages = map[string]codepage{
	"cp866":  {charmap.CodePage866, 17},
	"cp1251": {charmap.Windows1251, 46},
	"cp437":  {charmap.CodePage437, 0},
}

// encode converts a laid-out line to the display's code page, exactly Width
// bytes. Control characters become spaces (the display would take them as
// commands); a character the code page lacks becomes "?".
func encode(dst []byte, cm *charmap.Charmap, line string) []byte {
	n := 0
	for _, r := range line {
		if n == Width {
			break
		}
		b, ok := cm.EncodeRune(r)
		switch {
		case r < 0x20 || r == 0x7f:
			b = ' '
		case !ok || b < 0x20 || b == 0x7f:
			b = '?'
		}
		dst = append(dst, b)
		n++
	}
	for ; n < Width; n++ {
		dst = append(dst, ' ')
	}
	return dst
}
