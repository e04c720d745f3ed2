package qibixx

import (
	"errors"
	"strings"
	"testing"

	"github.com/kioskd/kioskd/payment/vending"
)

func TestParseLine(t *testing.T) {
	good := []struct {
		in   string
		want Line
	}{
		{"c,1", Line{Kind: KindEnabled, On: true}},
		{"c,0", Line{Kind: KindEnabled}},
		{"c,SET,OK", Line{Kind: KindSetOK}},
		{"c,STATUS,INACTIVE", Line{Kind: KindStatus, Reader: vending.ReaderInactive}},
		{"c,STATUS,DISABLED", Line{Kind: KindStatus, Reader: vending.ReaderDisabled}},
		{"c,STATUS,ENABLED", Line{Kind: KindStatus, Reader: vending.ReaderEnabled}},
		{"c,STATUS,IDLE", Line{Kind: KindStatus, Reader: vending.ReaderSessionIdle}},
		{"c,STATUS,IDLE,0", Line{Kind: KindStatus, Reader: vending.ReaderSessionIdle, Amount: "0"}},
		{"c,STATUS,IDLE,99.99", Line{Kind: KindStatus, Reader: vending.ReaderSessionIdle, Amount: "99.99"}},
		{"c,STATUS,VEND,1.00,2", Line{Kind: KindVendRequest, Reader: vending.ReaderVend, Amount: "1.00", Item: 2}},
		{"c,STATUS,VEND,150,65535", Line{Kind: KindVendRequest, Reader: vending.ReaderVend, Amount: "150", Item: 65535}},
		{"c,STATUS,ONLINE", Line{Kind: KindSlave, On: true}},
		{"c,STATUS,OFFLINE", Line{Kind: KindSlave}},
		{"c,VEND,SUCCESS", Line{Kind: KindVendSuccess}},
		{"c,ERR,VEND 3", Line{Kind: KindVendFailure, Text: "VEND 3"}},
		{`c,ERR,"VEND 3"`, Line{Kind: KindVendFailure, Text: "VEND 3"}},
		{`c,ERR,"START -3"`, Line{Kind: KindError, Text: "START -3"}},
		{"c,ERR,VEND 1", Line{Kind: KindError, Text: "VEND 1"}},
		{`c,ERR,"VEND -3"`, Line{Kind: KindError, Text: "VEND -3"}},
		{"c,ERR,a,b", Line{Kind: KindError, Text: "a,b"}},
		{"r,ACK", Line{Kind: KindAck}},
		{"r,NACK", Line{Kind: KindNack}},
		{"v,3.0.1.2,0012ab", Line{Kind: KindVersion, Text: "3.0.1.2"}},
		{"d,STATUS,IDLE", Line{Kind: KindOtherMode}},
		{"x,ACK", Line{Kind: KindOtherMode}},
	}
	for _, tc := range good {
		got, err := ParseLine([]byte(tc.in))
		if err != nil || got != tc.want {
			t.Errorf("ParseLine(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}

	bad := []struct {
		in   string
		kind error
	}{
		{"", ErrUnknownLine},
		{"c", ErrMalformedLine},
		{"c,2", ErrUnknownLine},
		{"c,1,1", ErrMalformedLine},
		{"c,SET,NO", ErrMalformedLine},
		{"c,STATUS", ErrMalformedLine},
		{"c,STATUS,ENABLED,1", ErrMalformedLine},
		{"c,STATUS,IDLE,x", ErrMalformedLine},
		{"c,STATUS,VEND,1.00", ErrMalformedLine},  // truncated: no item
		{"c,STATUS,VEND,1.00,", ErrMalformedLine}, // truncated: empty item
		{"c,STATUS,VEND,1.,2", ErrMalformedLine},  // no decimals after the point
		{"c,STATUS,VEND,-1,2", ErrMalformedLine},  // negative
		{"c,STATUS,VEND,1e3,2", ErrMalformedLine}, // not a decimal
		{"c,STATUS,VEND,1.00,65536", ErrMalformedLine},
		{"c,STATUS,VEND,1.00,2,3", ErrMalformedLine},
		{"c,STATUS,VEND,12345678901,2", ErrMalformedLine},
		{"c,STATUS,VE", ErrUnknownLine}, // truncated keyword
		{"c,STATUS,REVALUE", ErrUnknownLine},
		{"c,VEND,SUCCES", ErrMalformedLine},
		{"c,VEND,SUCCESS,1", ErrMalformedLine},
		{"c,ERR", ErrMalformedLine},
		{"c,ERR,", ErrMalformedLine},
		{`c,ERR,""`, ErrMalformedLine},
		{"c,FOO", ErrUnknownLine},
		{"C,VEND,1.00", ErrUnknownLine}, // our own command echoed back
		{"r,ACK,1", ErrUnknownLine},
		{"v", ErrMalformedLine},
		{"hello", ErrUnknownLine},
		{"c,STATUS,ENABLED\r", ErrMalformedLine},
		{"c,VEND,SUCCESS\x00", ErrMalformedLine},
		{"c,STATUS,\xffENABLED", ErrMalformedLine},
	}
	for _, tc := range bad {
		got, err := ParseLine([]byte(tc.in))
		var le *LineError
		if !errors.Is(err, tc.kind) || !errors.As(err, &le) {
			t.Errorf("ParseLine(%q) = %+v, %v; want an error wrapping %v", tc.in, got, err, tc.kind)
			continue
		}
		if !strings.HasPrefix(err.Error(), "qibixx: ") || le.Key() == "" {
			t.Errorf("ParseLine(%q) error %q key %q: want a qibixx: message and a key", tc.in, err, le.Key())
		}
	}
}

// TestLineErrorKeys: garbage of any content shares one key, so logging once
// per key stays bounded; distinct problems keep distinct keys.
func TestLineErrorKeys(t *testing.T) {
	key := func(s string) string {
		_, err := ParseLine([]byte(s))
		var le *LineError
		if !errors.As(err, &le) {
			t.Fatalf("ParseLine(%q): %v", s, err)
		}
		return le.Key()
	}
	if key("\x01abc") != key("zz\xfe") {
		t.Error("two kinds of noise have different keys")
	}
	if key("c,FOO,1") != key("c,FOO,2") {
		t.Error("one unknown line with different values has different keys")
	}
	if key("c,FOO") == key("c,BAR") {
		t.Error("two different unknown lines share a key")
	}
	if key("c,STATUS,VEND,1.00") == key("c,STATUS,IDLE,x") {
		t.Error("two different malformed lines share a key")
	}
}

func TestSplitter(t *testing.T) {
	var sp splitter
	var lines []string
	over := 0
	feed := func(s string) {
		sp.feed([]byte(s), func(b []byte) { lines = append(lines, string(b)) }, func() { over++ })
	}
	feed("c,1\nc,STATUS,EN")
	if !sp.partial() {
		t.Error("partial() = false with half a line buffered")
	}
	feed("ABLED\r\n\n\r\nr,ACK\n")
	want := []string{"c,1", "c,STATUS,ENABLED", "r,ACK"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("lines = %q, want %q", lines, want)
	}
	if sp.partial() {
		t.Error("partial() = true after a complete line")
	}

	// An endless line: dropped up to the next newline, reported once, and
	// the next line is read normally.
	lines = nil
	feed(strings.Repeat("x", 10*MaxLineLen))
	feed(strings.Repeat("y", 3*MaxLineLen) + "\nc,VEND,SUCCESS\n")
	if over != 1 || len(lines) != 1 || lines[0] != "c,VEND,SUCCESS" {
		t.Errorf("after garbage: oversize reported %d times, lines %q", over, lines)
	}
	// Exactly MaxLineLen bytes still fit.
	lines = nil
	feed(strings.Repeat("z", MaxLineLen) + "\n")
	if over != 1 || len(lines) != 1 || len(lines[0]) != MaxLineLen {
		t.Errorf("a line of MaxLineLen: oversize %d, lines %d", over, len(lines))
	}
	feed("c,ST")
	sp.reset()
	if sp.partial() {
		t.Error("partial() after reset")
	}
}
