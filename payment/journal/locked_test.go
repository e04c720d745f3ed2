package journal

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// A journal another Open holds (as another kioskd would) is refused with
// ErrLocked and the file's name, not bbolt's bare "timeout".
func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	j := open(t, path)
	defer j.Close()
	_, err := Open(path)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second open: %v", err)
	}
}
