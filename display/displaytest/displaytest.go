package displaytest

import (
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.golden files from the current output")

// Golden returns the golden file at path, after writing got into it when
// the test runs with -update. The test compares (and shows the difference
// its own way).
func Golden(t testing.TB, path string, got []byte) []byte {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it; review the diff)", err)
	}
	return want
}

// Counter is a writer (and a zapcore.WriteSyncer) that counts the bytes
// written to it and keeps none.
type Counter struct{ N int64 }

// Write counts b.
func (c *Counter) Write(b []byte) (int, error) { c.N += int64(len(b)); return len(b), nil }

// Sync does nothing.
func (c *Counter) Sync() error { return nil }
