package journal

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestNewRefund(t *testing.T) {
	j, err := Open(filepath.Join(t.TempDir(), "j.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	now := time.Now()
	a, existed, err := j.NewRefund("p1", 100, "k1", now)
	if err != nil || existed || a.RequestID != "k1" {
		t.Fatalf("first: %+v %v %v", a, existed, err)
	}
	b, existed, err := j.NewRefund("p1", 100, "k1", now)
	if err != nil || !existed || b.ID != a.ID {
		t.Fatalf("repeat: %+v %v %v, want refund %s", b, existed, err, a.ID)
	}
	if _, _, err := j.NewRefund("p1", 200, "k1", now); !errors.Is(err, ErrRequestReused) {
		t.Fatalf("reused key with another amount: %v", err)
	}
	c, existed, err := j.NewRefund("p1", 100, "", now)
	d, existed2, err2 := j.NewRefund("p1", 100, "", now)
	if err != nil || err2 != nil || existed || existed2 || c.ID == d.ID || c.ID == a.ID {
		t.Fatalf("no key must always make a new refund: %s %s (%v %v)", c.ID, d.ID, err, err2)
	}
	if rs, _ := j.Refunds(false); len(rs) != 3 {
		t.Fatalf("%d refunds stored, want 3", len(rs))
	}
}
