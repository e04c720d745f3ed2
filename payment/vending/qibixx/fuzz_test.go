package qibixx

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseLine feeds arbitrary bytes through the splitter and the parser:
// nothing panics, memory stays bounded, every line is either understood or
// reported as unknown or malformed, and only the exact spellings of vend
// results become vend results.
func FuzzParseLine(f *testing.F) {
	for _, s := range []string{
		"c,STATUS,VEND,1.00,2\n", "c,VEND,SUCCESS\n", "c,ERR,VEND 3\n", "c,ERR,\"START -3\"\n",
		"c,STATUS,IDLE,0\r\n", "r,ACK\n", "v,1.2.3.4,abc\n", "c,STATUS,VE\n", "\x00\xff\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var sp splitter
		sp.feed(data, func(line []byte) {
			if len(line) > MaxLineLen {
				t.Fatalf("line of %d bytes passed the splitter", len(line))
			}
			if bytes.IndexByte(line, '\n') >= 0 {
				t.Fatalf("line %q contains a newline", line)
			}
			l, err := ParseLine(line)
			if err != nil {
				if !errors.Is(err, ErrUnknownLine) && !errors.Is(err, ErrMalformedLine) {
					t.Fatalf("ParseLine(%q): unclassified error %v", line, err)
				}
				return
			}
			switch l.Kind {
			case KindVendSuccess:
				if string(line) != "c,VEND,SUCCESS" {
					t.Fatalf("%q read as a vend success", line)
				}
			case KindVendFailure:
				if s := string(line); s != "c,ERR,VEND 3" && s != `c,ERR,"VEND 3"` {
					t.Fatalf("%q read as a vend failure", line)
				}
			case KindVendRequest:
				if _, err := (Money{ScaleFactor: 1, DecimalPlaces: 2}).Kopecks(l.Amount); err != nil &&
					!errors.Is(err, ErrNotRepresentable) {
					t.Fatalf("%q: a parsed amount %q does not convert: %v", line, l.Amount, err)
				}
			}
		}, func() {})
	})
}
