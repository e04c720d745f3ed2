package config

import (
	"os"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse: it must never panic, and it
// must return either a config or problems, never both or neither.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte("kassa: &a\n  id: *a\n"))
	f.Add([]byte("scanners:\n  - {driver: hid, vid: 0x, pid: \"\"}\n"))
	if b, err := os.ReadFile("../../../../devices.yaml"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data)
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v", c != nil, err)
		}
	})
}
