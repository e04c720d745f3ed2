package frame

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// recorder is a Sink that keeps copies of what it is given.
type recorder struct {
	starts []time.Time
	frames []Frame
}

func (r *recorder) FrameStarted(at time.Time) { r.starts = append(r.starts, at) }
func (r *recorder) FrameDone(f Frame) {
	f.Data = bytes.Clone(f.Data)
	r.frames = append(r.frames, f)
}

func (r *recorder) data() []string {
	var out []string
	for _, f := range r.frames {
		out = append(out, string(f.Data))
	}
	return out
}

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

const qr = `{"id_loyalty":"42","encrypted":"QUJD\/+=}{\"x","sign":"TUVZ"}`

// chunk is one read: bytes that arrived at t0+after.
type chunk struct {
	after time.Duration
	b     string
}

func TestFramerRecorded(t *testing.T) {
	cases := []struct {
		name   string
		cfg    Config
		reads  []chunk
		expire time.Duration // call Expire at t0+expire when > 0
		want   []string
		by     []Reason
		starts int
		stats  Stats
	}{
		{name: "cr", reads: []chunk{{0, "4600123456789\r"}}, want: []string{"4600123456789"}, by: []Reason{BySuffix}, starts: 1},
		{name: "lf", reads: []chunk{{0, "abc\ndef\n"}}, want: []string{"abc", "def"}, starts: 2},
		{name: "crlf is one terminator", reads: []chunk{{0, "abc\r\n"}, {time.Millisecond, "def\r"}, {2 * time.Millisecond, "\n"}},
			want: []string{"abc", "def"}, starts: 2},
		{name: "json ends at once", reads: []chunk{{0, qr}}, want: []string{qr}, by: []Reason{ByJSON}, starts: 1},
		{name: "json then suffix swallowed", reads: []chunk{{0, qr + "\r\n"}, {time.Millisecond, "\r"}}, want: []string{qr}, starts: 1},
		{name: "json back to back", reads: []chunk{{0, `{"a":{"b":"}"}}{"c":1}`}}, want: []string{`{"a":{"b":"}"}}`, `{"c":1}`}, by: []Reason{ByJSON, ByJSON}, starts: 2},
		{name: "cr inside json does not cut it", reads: []chunk{{0, "{\"a\":\r\n\"b\"}\r"}}, want: []string{`{"a":"b"}`}, by: []Reason{ByJSON}, starts: 1},
		{name: "aim qr", reads: []chunk{{0, "]Q1" + qr}}, want: []string{qr}, by: []Reason{ByJSON}, starts: 1},
		{name: "aim split across reads", reads: []chunk{{0, "]"}, {time.Millisecond, "E"}, {2 * time.Millisecond, "09780201379624\r"}}, want: []string{"9780201379624"}, starts: 1},
		{name: "not an aim id", reads: []chunk{{0, "]}1abc\r]x\r"}}, want: []string{"]}1abc", "]x"}, starts: 2},
		{name: "control characters stripped", reads: []chunk{{0, "\x02ab\x1bc\x7f\x03\r"}}, want: []string{"abc"}, starts: 1},
		{name: "only control characters", reads: []chunk{{0, "\x02\x03\r"}}, starts: 1, stats: Stats{Empty: 1}},
		{name: "gap ends a frame", reads: []chunk{{0, "abc"}}, expire: 50 * time.Millisecond, want: []string{"abc"}, by: []Reason{ByGap}, starts: 1},
		{name: "gap not yet passed", reads: []chunk{{0, "abc"}}, expire: 49 * time.Millisecond, starts: 1},
		{name: "gap noticed at the next read", reads: []chunk{{0, "abc"}, {80 * time.Millisecond, "def\r"}}, want: []string{"abc", "def"}, by: []Reason{ByGap, BySuffix}, starts: 2},
		{name: "slow bytes within the gap", reads: []chunk{{0, "a"}, {40 * time.Millisecond, "b"}, {80 * time.Millisecond, "c"}}, expire: 129 * time.Millisecond, starts: 1},
		{name: "broken json ends by the json gap", reads: []chunk{{0, `{"a":"b`}, {time.Millisecond, "\r"}}, expire: DefaultJSONGap + 10*time.Millisecond, want: []string{`{"a":"b`}, by: []Reason{ByGap}, starts: 1},
		{name: "open json outlasts the short gap", reads: []chunk{{0, `{"a":"b`}}, expire: 500 * time.Millisecond, starts: 1},
		// A keyboard-mode scanner on a loaded host pauses mid-QR for longer
		// than the gap; the object's closing brace still ends the frame.
		{name: "json paused mid-object stays whole", reads: []chunk{{0, `{"a":`}, {300 * time.Millisecond, `"b"}`}}, want: []string{`{"a":"b"}`}, by: []Reason{ByJSON}, starts: 1},
		{name: "gap mode ignores json", cfg: Config{Mode: Gap}, reads: []chunk{{0, `{"a":`}, {300 * time.Millisecond, `"b"}`}}, expire: time.Second, want: []string{`{"a":`, `"b"}`}, starts: 2},
		{name: "custom gap", cfg: Config{Gap: 200 * time.Millisecond}, reads: []chunk{{0, "a"}, {150 * time.Millisecond, "b"}}, expire: 350 * time.Millisecond, want: []string{"ab"}, starts: 1},
		{name: "cr mode", cfg: Config{Mode: CR}, reads: []chunk{{0, "a\nb\r" + qr + "\r"}}, want: []string{"ab", qr}, by: []Reason{BySuffix, BySuffix}, starts: 2},
		{name: "cr mode drops a frame without suffix", cfg: Config{Mode: CR}, reads: []chunk{{0, "abc\n"}}, expire: time.Second, starts: 1, stats: Stats{Incomplete: 1}},
		{name: "lf mode", cfg: Config{Mode: LF}, reads: []chunk{{0, "a\rb\n"}}, want: []string{"ab"}, starts: 1},
		{name: "crlf mode", cfg: Config{Mode: CRLF}, reads: []chunk{{0, "a\rb\nc\r"}, {time.Millisecond, "\nd\r\n"}}, want: []string{"abc", "d"}, starts: 2},
		{name: "gap mode", cfg: Config{Mode: Gap}, reads: []chunk{{0, "ab\r\ncd" + qr}}, expire: time.Second, want: []string{"abcd" + qr}, by: []Reason{ByGap}, starts: 1},
		{name: "oversize discarded to the terminator", cfg: Config{MaxSize: 8}, reads: []chunk{{0, "0123456789"}, {time.Millisecond, "0123\rabc\r12345678\r"}},
			want: []string{"abc", "12345678"}, starts: 3, stats: Stats{Oversize: 1}},
		{name: "oversize json", cfg: Config{MaxSize: 8}, reads: []chunk{{0, `{"a":"0123456789"}`}, {time.Millisecond, "\nok\r"}},
			want: []string{"ok"}, starts: 2, stats: Stats{Oversize: 1}},
		{name: "oversize ended by gap", cfg: Config{MaxSize: 4, Mode: Gap}, reads: []chunk{{0, "123456"}, {time.Second, "ab"}}, expire: 2 * time.Second,
			want: []string{"ab"}, starts: 2, stats: Stats{Oversize: 1}},
		{name: "utf-8 kept", reads: []chunk{{0, "Привет\r"}}, want: []string{"Привет"}, starts: 1},
		// Identifiers a scanner set-up puts before the data, and suffixes after.
		{name: "honeywell code id", reads: []chunk{{0, "s" + qr + "\r"}}, want: []string{qr}, by: []Reason{ByJSON}, starts: 1},
		{name: "newland code id then aim", reads: []chunk{{0, "Q]Q1" + qr + "\r\n"}}, want: []string{qr}, starts: 1},
		{name: "aim then honeywell code id", reads: []chunk{{0, "]Q1s" + qr + "\r"}}, want: []string{qr}, starts: 1},
		{name: "zebra symbol code id", reads: []chunk{{0, "P01" + qr + "\r"}}, want: []string{qr}, starts: 1},
		{name: "datalogic label id before and after", reads: []chunk{{0, "QR" + qr + "QR\r"}}, want: []string{qr}, starts: 2, stats: Stats{Trailers: 1}},
		{name: "code id letters elsewhere are data", reads: []chunk{{0, "s123\rQR code\rP01\rQ\r"}}, want: []string{"s123", "QR code", "P01", "Q"}, starts: 4},
		{name: "custom suffix after json dropped", reads: []chunk{{0, qr + "END\x03\r"}, {time.Millisecond, "abc\r"}}, want: []string{qr, "abc"}, starts: 3, stats: Stats{Trailers: 1}},
		{name: "stx etx around json", reads: []chunk{{0, "\x02" + qr + "\x03\r"}}, want: []string{qr}, starts: 2, stats: Stats{Empty: 1}},
		{name: "aim starts the next frame right after json", reads: []chunk{{0, qr + "]Q1" + qr}}, want: []string{qr, qr}, by: []Reason{ByJSON, ByJSON}, starts: 2},
		{name: "after the gap it is a frame again", reads: []chunk{{0, qr}, {60 * time.Millisecond, "abc\r"}}, want: []string{qr, "abc"}, starts: 2},
		{name: "without a terminator it is a frame", reads: []chunk{{0, qr + "abc"}}, expire: time.Second, want: []string{qr, "abc"}, by: []Reason{ByJSON, ByGap}, starts: 2},
		{name: "eci protocol", reads: []chunk{{0, "]Q2\\000026" + strings.ReplaceAll(qr, `\`, `\\`) + "\r"}}, want: []string{qr}, by: []Reason{ByJSON}, starts: 1},
		{name: "eci protocol split in escapes", reads: []chunk{{0, "]Q2\\0000"}, {time.Millisecond, "26{\"a\":\"b\\"}, {2 * time.Millisecond, `\\\"}`}}, want: []string{`{"a":"b\\"}`}, by: []Reason{ByJSON}, starts: 1},
		{name: "eci designator without aim", reads: []chunk{{0, "\\000026" + strings.ReplaceAll(qr, `\`, `\\`) + "\r"}}, want: []string{qr}, starts: 1},
		{name: "eci in plain data", reads: []chunk{{0, "]Q2abc\\000003def\\\\g\r"}}, want: []string{`abcdef\g`}, starts: 1},
		{name: "eci escape cut short", reads: []chunk{{0, "]Q2ab\\12\r"}}, want: []string{`ab\12`}, starts: 1},
		{name: "no eci without the modifier", reads: []chunk{{0, "]Q1a\\\\b\r"}}, want: []string{`a\\b`}, starts: 1},
		{name: "bom and pretty json", reads: []chunk{{0, "\xEF\xBB\xBF{\r\n  \"a\": 1\r\n}\r\n"}}, want: []string{"\xEF\xBB\xBF{  \"a\": 1}"}, by: []Reason{ByJSON}, starts: 1},
		{name: "longest lead-in", reads: []chunk{{0, "]Q1P01\\000026" + strings.Repeat(" ", maxPad) + "{}"}}, want: []string{strings.Repeat(" ", maxPad) + "{}"}, by: []Reason{ByJSON}, starts: 1},
		{name: "longest lead-in that is not one", reads: []chunk{{0, "]Q1P01\\000026" + strings.Repeat(" ", maxPad) + "x\r"}}, want: []string{"P01\\000026" + strings.Repeat(" ", maxPad) + "x"}, starts: 1},
		{name: "too many spaces for a lead-in", reads: []chunk{{0, "s" + strings.Repeat(" ", maxPad+1) + "{}\r"}}, want: []string{"s" + strings.Repeat(" ", maxPad+1) + "{}"}, starts: 1},
		{name: "spaces before json", reads: []chunk{{0, "  {\"a\":\r\n1}\r"}}, want: []string{`  {"a":1}`}, by: []Reason{ByJSON}, starts: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := New(c.cfg)
			r := &recorder{}
			for _, ch := range c.reads {
				f.Feed([]byte(ch.b), t0.Add(ch.after), r)
			}
			if c.expire > 0 {
				f.Expire(t0.Add(c.expire), r)
			}
			if got := r.data(); strings.Join(got, "|") != strings.Join(c.want, "|") || len(got) != len(c.want) {
				t.Errorf("frames = %q, want %q", got, c.want)
			}
			for i, by := range c.by {
				if i < len(r.frames) && r.frames[i].By != by {
					t.Errorf("frame %d ended by %v, want %v", i, r.frames[i].By, by)
				}
			}
			if len(r.starts) != c.starts {
				t.Logf("frames %q", r.data())
				t.Errorf("%d frame starts, want %d", len(r.starts), c.starts)
			}
			st := f.Stats()
			st.Frames = 0
			if st != c.stats {
				t.Errorf("stats = %+v, want %+v", st, c.stats)
			}
			if f.Stats().Frames != uint64(len(c.want)) {
				t.Errorf("Stats.Frames = %d", f.Stats().Frames)
			}
		})
	}
}

func TestFramerAIMAndTimes(t *testing.T) {
	f := New(Config{})
	r := &recorder{}
	f.Feed([]byte("]Q1{\"a\""), t0, r)
	f.Feed([]byte(":1}"), t0.Add(10*time.Millisecond), r)
	f.Feed([]byte("]E4"+"96385074\r"), t0.Add(time.Second), r)
	if len(r.frames) != 2 {
		t.Fatalf("frames: %q", r.data())
	}
	q := r.frames[0]
	if q.AIM != "]Q1" || q.Symbology != "qr" || !q.Start.Equal(t0) || !q.End.Equal(t0.Add(10*time.Millisecond)) {
		t.Errorf("qr frame = %+v", q)
	}
	if e := r.frames[1]; e.AIM != "]E4" || e.Symbology != "ean8" || string(e.Data) != "96385074" {
		t.Errorf("ean8 frame = %+v", e)
	}
	if len(r.starts) != 2 || !r.starts[0].Equal(t0) {
		t.Errorf("starts = %v", r.starts)
	}
}

func TestFramerDeadline(t *testing.T) {
	f := New(Config{Gap: 30 * time.Millisecond})
	if _, ok := f.Deadline(); ok {
		t.Fatal("deadline while idle")
	}
	r := &recorder{}
	f.Feed([]byte("ab"), t0, r)
	f.Feed([]byte("c"), t0.Add(20*time.Millisecond), r)
	if d, ok := f.Deadline(); !ok || !d.Equal(t0.Add(50*time.Millisecond)) {
		t.Fatalf("deadline = %v, %v", d, ok)
	}
	f.Feed([]byte("\r"), t0.Add(21*time.Millisecond), r)
	if _, ok := f.Deadline(); ok {
		t.Fatal("deadline after the frame ended")
	}
	f.Feed([]byte("x"), t0.Add(time.Second), r)
	f.Reset()
	if _, ok := f.Deadline(); ok || len(r.frames) != 1 {
		t.Fatalf("after Reset: frames %q", r.data())
	}
}

// TestFramerSplitAnywhere feeds a recorded QR scan one byte per read, the
// way a slow USB-serial bridge delivers it.
func TestFramerSplitAnywhere(t *testing.T) {
	in := "]Q1" + qr + "\r\n" + "4600123456789\r\n"
	f := New(Config{})
	r := &recorder{}
	for i := range len(in) {
		f.Feed([]byte{in[i]}, t0.Add(time.Duration(i)*time.Millisecond), r)
	}
	if got := r.data(); len(got) != 2 || got[0] != qr || got[1] != "4600123456789" {
		t.Fatalf("frames = %q", got)
	}
	if r.frames[0].By != ByJSON || r.frames[0].Symbology != "qr" {
		t.Errorf("qr frame = %+v", r.frames[0])
	}
}

// TestFramerEndlessGarbageAllocatesNothing feeds 10 MB without a terminator:
// no frame, one oversize, and no allocation per read.
func TestFramerEndlessGarbageAllocatesNothing(t *testing.T) {
	f := New(Config{})
	r := &recorder{}
	chunk := bytes.Repeat([]byte("garbage-"), 512) // 4 KiB
	at := t0
	for range 10 << 20 / len(chunk) {
		f.Feed(chunk, at, r)
		at = at.Add(time.Millisecond)
	}
	if len(r.frames) != 0 || f.Stats().Oversize != 1 || cap(f.buf) != DefaultMaxSize {
		t.Fatalf("frames %d, stats %+v, cap %d", len(r.frames), f.Stats(), cap(f.buf))
	}
	allocs := testing.AllocsPerRun(100, func() {
		f.Feed(chunk, at, r)
		at = at.Add(time.Millisecond)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per 4 KiB read of garbage, want 0", allocs)
	}
}

// BenchmarkFramerQR measures framing one 400-byte JSON QR with its AIM id
// and CRLF, fed as a serial driver reads it.
func BenchmarkFramerQR(b *testing.B) {
	in := []byte("]Q1{\"id_loyalty\":\"42\",\"encrypted\":\"" + strings.Repeat("QUJD", 85) + "\",\"sign\":\"TUVZ\"}\r\n")
	f := New(Config{})
	r := &countSink{}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		f.Feed(in, t0, r)
	}
	if r.frames == 0 {
		b.Fatal("no frame")
	}
}

type countSink struct{ frames int }

func (c *countSink) FrameStarted(time.Time) {}
func (c *countSink) FrameDone(Frame)        { c.frames++ }

// The identifiers a scanner sent are reported beside the payload.
func TestFramerIdentifiers(t *testing.T) {
	for _, c := range []struct {
		in, aim, code, sym string
	}{
		{"]Q1" + qr, "]Q1", "", "qr"},
		{"s" + qr, "", "s", "qr"},
		{"Q]Q1" + qr, "]Q1", "Q", "qr"},
		{"]Q1s" + qr, "]Q1", "s", "qr"},
		{"P0Q" + qr, "", "P0Q", "qr"},
		{"]E04600123456789\r", "]E0", "", "ean13"},
		{"s123\r", "", "", ""},
	} {
		r := &recorder{}
		New(Config{}).Feed([]byte(c.in), t0, r)
		if len(r.frames) != 1 {
			t.Errorf("%q: %d frames", c.in, len(r.frames))
			continue
		}
		if f := r.frames[0]; f.AIM != c.aim || f.CodeID != c.code || f.Symbology != c.sym {
			t.Errorf("%q: aim %q code %q symbology %q, want %q %q %q", c.in, f.AIM, f.CodeID, f.Symbology, c.aim, c.code, c.sym)
		}
	}
}

func TestUndoECI(t *testing.T) {
	for _, c := range []struct{ aim, in, want string }{
		{"]Q2", `\000026{"a":"\\\\"}`, `{"a":"\\"}`},
		{"", `\000026{"a":"\\\\"}`, `{"a":"\\"}`}, // the designator before an object says it
		{"]Q1", `{"a":"\\\\"}`, `{"a":"\\\\"}`},
		{"", `\000026abc\\`, `\000026abc\\`}, // without the AIM id, only before an object
		{"]Q6", `ab\12`, `ab\12`},
	} {
		if got := string(UndoECI(c.aim, []byte(c.in))); got != c.want {
			t.Errorf("UndoECI(%q, %q) = %q, want %q", c.aim, c.in, got, c.want)
		}
	}
}
