package vmtest

import (
	"strings"

	"golang.org/x/text/encoding/charmap"
)

// PoleScreen emulates a 2x20 customer display speaking the Epson ESC/POS
// customer-display command set with code page 866, so the bytes a vfd driver
// sends can be checked as the text a customer would read.
type PoleScreen struct {
	rows, cols int
	cells      [][]rune
	x, y       int
	pending    []byte // an escape sequence split across writes
	history    []string
}

// NewPoleScreen returns a blank 2x20 screen.
func NewPoleScreen() *PoleScreen {
	p := &PoleScreen{rows: 2, cols: 20}
	p.clear()
	return p
}

func (p *PoleScreen) clear() {
	p.remember()
	p.cells = make([][]rune, p.rows)
	for i := range p.cells {
		p.cells[i] = []rune(strings.Repeat(" ", p.cols))
	}
	p.x, p.y = 0, 0
}

// seqLen tells how long the command starting at b[0] is: 0 when b is not a
// command, -1 when more bytes are needed.
func seqLen(b []byte) int {
	need := func(n int) int {
		if len(b) < n {
			return -1
		}
		return n
	}
	switch b[0] {
	case 0x1B:
		if len(b) < 2 {
			return -1
		}
		switch b[1] {
		case 0x40: // ESC @ initialize
			return 2
		default: // ESC t n (code page), ESC R n, ESC = n: one parameter
			return need(3)
		}
	case 0x1F:
		if len(b) < 2 {
			return -1
		}
		switch b[1] {
		case 0x24: // US $ x y cursor position
			return need(4)
		case 0x01, 0x02, 0x03: // overwrite / vertical / horizontal scroll mode
			return 2
		default: // US X n brightness, US C n cursor, …
			return need(3)
		}
	}
	return 0
}

// Write feeds display bytes; it never fails.
func (p *PoleScreen) Write(b []byte) (int, error) {
	n := len(b)
	buf := append(p.pending, b...)
	p.pending = nil
	for len(buf) > 0 {
		l := seqLen(buf)
		if l < 0 {
			p.pending = append([]byte(nil), buf...)
			break
		}
		if l > 0 {
			p.command(buf[:l])
			buf = buf[l:]
			continue
		}
		c := buf[0]
		buf = buf[1:]
		switch c {
		case 0x0C:
			p.clear()
		case 0x0B:
			p.x, p.y = 0, 0
		case 0x0D:
			p.x = 0
		case 0x0A:
			if p.y < p.rows-1 {
				p.y++
			}
		default:
			if c < 0x20 {
				continue
			}
			r := charmap.CodePage866.DecodeByte(c)
			if p.x >= p.cols { // overwrite mode wraps to the next line
				p.x = 0
				if p.y < p.rows-1 {
					p.y++
				}
			}
			p.cells[p.y][p.x] = r
			p.x++
		}
	}
	return n, nil
}

func (p *PoleScreen) command(b []byte) {
	switch {
	case b[0] == 0x1B && b[1] == 0x40:
		p.clear()
	case b[0] == 0x1F && b[1] == 0x24:
		x, y := int(b[2])-1, int(b[3])-1
		if x >= 0 && x < p.cols && y >= 0 && y < p.rows {
			p.x, p.y = x, y
		}
	}
}

// remember keeps the rows shown before a clear, so a screen that was only
// up briefly (paid, then ready again) can still be checked.
func (p *PoleScreen) remember() {
	if p.cells == nil {
		return
	}
	for _, l := range p.Lines() {
		if l != "" {
			p.history = append(p.history, l)
		}
	}
	if len(p.history) > 256 { // bounded: a long run shows many screens
		p.history = p.history[len(p.history)-256:]
	}
}

// Shown tells whether a row containing text is on the screen now or was on
// it before one of the clears since the screen was created.
func (p *PoleScreen) Shown(text string) bool {
	for _, l := range append(p.Lines(), p.history...) {
		if strings.Contains(l, text) {
			return true
		}
	}
	return false
}

// Lines returns the screen rows with trailing spaces removed.
func (p *PoleScreen) Lines() []string {
	out := make([]string, p.rows)
	for i, r := range p.cells {
		out[i] = strings.TrimRight(string(r), " ")
	}
	return out
}
