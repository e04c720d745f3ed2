package vmtest

import "testing"

func TestUSKeyStrokes(t *testing.T) {
	ks, err := USKeyStrokes(`{"A":1}` + "\r")
	if err != nil {
		t.Fatal(err)
	}
	want := []KeyStroke{{"bracket_left", true}, {"apostrophe", true}, {"a", true},
		{"apostrophe", true}, {"semicolon", true}, {"1", false}, {"bracket_right", true}, {"ret", false}}
	if len(ks) != len(want) {
		t.Fatalf("got %v", ks)
	}
	for i := range want {
		if ks[i] != want[i] {
			t.Fatalf("stroke %d = %v, want %v", i, ks[i], want[i])
		}
	}
	if _, err := USKeyStrokes("Ж"); err == nil {
		t.Fatal("Cyrillic has no US key, want an error")
	}
	// "AB" shares one Shift press; "a" releases it.
	g := InputEventGroups([]KeyStroke{{"a", true}, {"b", true}, {"a", false}})
	if n := []int{len(g[0]), len(g[1]), len(g[2])}; len(g) != 3 || n[0] != 3 || n[1] != 2 || n[2] != 3 {
		t.Fatalf("event groups = %v", g)
	}
}
