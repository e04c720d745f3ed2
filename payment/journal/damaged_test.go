package journal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A truncated or corrupt journal is refused with an error that names the
// file and says what to do, never opened as a fresh journal that forgets
// the payments it held; a file of zero bytes (its creation never reached
// the disk) starts fresh.
func TestDamagedJournalRefused(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "journal.db")
	j := open(t, src)
	for i := range 200 {
		s, err := j.NewSale(fmt.Appendf(nil, `{"sale":%d,"pad":"%0200d"}`, i, i), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		s.PurchaseID, s.Phase = fmt.Sprint("P-", i), SaleReleased
		if err := j.PutSale(s); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	good, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	page := os.Getpagesize()
	damage := map[string]func([]byte) []byte{
		"truncated in the header": func(b []byte) []byte { return b[:100] },
		"truncated to one page":   func(b []byte) []byte { return b[:page] },
		"truncated to two pages":  func(b []byte) []byte { return b[:2*page] },
		"truncated to half":       func(b []byte) []byte { return b[:len(b)/2] },
		"both meta pages zeroed":  func(b []byte) []byte { return zero(b, 0, 2*page) },
		"a data page zeroed":      func(b []byte) []byte { return zero(b, 5*page, page) },
		"garbage in the middle": func(b []byte) []byte {
			c := append([]byte(nil), b...)
			for i := len(c) / 2; i < len(c)/2+3000; i++ {
				c[i] = byte(i * 7)
			}
			return c
		},
	}
	for name, f := range damage {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".db")
		if err := os.WriteFile(path, f(good), 0o600); err != nil {
			t.Fatal(err)
		}
		j, err := Open(path)
		if err == nil {
			j.Close()
			t.Errorf("%s: opened", name)
			continue
		}
		if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "move it aside") {
			t.Errorf("%s: %v", name, err)
		}
	}
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	j, err = Open(empty)
	if err != nil {
		t.Fatalf("a zero-byte journal: %v", err)
	}
	j.Close()
}

func zero(b []byte, off, n int) []byte {
	c := append([]byte(nil), b...)
	copy(c[off:off+n], make([]byte, n))
	return c
}
