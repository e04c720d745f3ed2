package qibixx

import (
	"errors"
	"testing"
)

func TestMoney(t *testing.T) {
	cases := []struct {
		scale, places int
		unit          int64
		line          string // as the adapter writes it
		kopecks       int64
		format        string // as we write it back
	}{
		{1, 2, 1, "1.50", 150, "1.50"},
		{1, 2, 1, "1.5", 150, "1.50"},
		{1, 2, 1, "0", 0, "0.00"},
		{1, 2, 1, "655.35", 65535, "655.35"},
		{1, 2, 1, "1.500", 150, "1.50"},
		{5, 2, 5, "0.05", 5, "0.05"},
		{1, 1, 10, "2.3", 230, "2.3"},
		{1, 0, 100, "150", 15000, "150"},
		{10, 0, 1000, "20", 2000, "20"},
		{10, 3, 1, "0.010", 1, "0.010"},
		{1, 2, 1, "99999999.99", 9999999999, "99999999.99"},
	}
	for _, c := range cases {
		m, err := NewMoney(c.scale, c.places)
		if err != nil {
			t.Fatalf("NewMoney(%d, %d): %v", c.scale, c.places, err)
		}
		if m.Unit() != c.unit {
			t.Errorf("%+v: Unit = %d, want %d", m, m.Unit(), c.unit)
		}
		k, err := m.Kopecks(c.line)
		if err != nil || k != c.kopecks {
			t.Errorf("%+v: Kopecks(%q) = %d, %v; want %d", m, c.line, k, err, c.kopecks)
		}
		s, err := m.Format(c.kopecks)
		if err != nil || s != c.format {
			t.Errorf("%+v: Format(%d) = %q, %v; want %q", m, c.kopecks, s, err, c.format)
		}
		if back, err := m.Kopecks(s); err != nil || back != c.kopecks {
			t.Errorf("%+v: Format then Kopecks: %d, %v", m, back, err)
		}
	}
}

func TestMoneyRefusesInexactAmounts(t *testing.T) {
	m5, _ := NewMoney(5, 2) // 5 kopecks a unit
	m1, _ := NewMoney(1, 2)
	r1, _ := NewMoney(1, 0) // 1 ruble a unit
	for _, c := range []struct {
		m    Money
		line string
	}{
		{m1, "1.505"}, // half a kopeck
		{m1, "0.001"}, // a tenth of a kopeck
		{m5, "1.52"},  // not a multiple of 5 kopecks
		{r1, "1.50"},  // not whole rubles
	} {
		if k, err := c.m.Kopecks(c.line); !errors.Is(err, ErrNotRepresentable) {
			t.Errorf("%+v: Kopecks(%q) = %d, %v; want ErrNotRepresentable", c.m, c.line, k, err)
		}
	}
	for _, c := range []struct {
		m Money
		k int64
	}{{m5, 152}, {r1, 150}, {m1, -1}} {
		if s, err := c.m.Format(c.k); !errors.Is(err, ErrNotRepresentable) {
			t.Errorf("%+v: Format(%d) = %q, %v; want ErrNotRepresentable", c.m, c.k, s, err)
		}
	}
	for _, bad := range []string{"", "1.", ".5", "-1", "1,5", "1e2", "12345678901"} {
		if _, err := m1.Kopecks(bad); err == nil || errors.Is(err, ErrNotRepresentable) {
			t.Errorf("Kopecks(%q) = %v; want a syntax error", bad, err)
		}
	}
}

func TestMoneyValidate(t *testing.T) {
	for _, c := range []struct{ scale, places int }{{0, 2}, {256, 2}, {1, -1}, {1, 4}, {1, 3}, {15, 3}} {
		if _, err := NewMoney(c.scale, c.places); err == nil {
			t.Errorf("NewMoney(%d, %d) accepted", c.scale, c.places)
		}
	}
}
