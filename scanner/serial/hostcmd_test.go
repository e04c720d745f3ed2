package serial

import (
	"bytes"
	"testing"
)

var ack = []byte{0x04, 0xD0, 0x00, 0x00, 0xFF, 0x2C}

func TestSSIPacketGolden(t *testing.T) {
	for _, c := range []struct {
		got, want []byte
	}{
		{SSIPacket(0xE9), []byte{0x04, 0xE9, 0x04, 0x00, 0xFF, 0x0F}},
		{SSIPacket(0xEA), []byte{0x04, 0xEA, 0x04, 0x00, 0xFF, 0x0E}},
		{SSIPacket(0xE6, 0x00), []byte{0x05, 0xE6, 0x04, 0x00, 0x00, 0xFF, 0x11}},
		{SSIPacket(0xE4), []byte{0x04, 0xE4, 0x04, 0x00, 0xFF, 0x14}},
	} {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("SSIPacket = % X, want % X", c.got, c.want)
		}
	}
}

func TestSSIFilter(t *testing.T) {
	nak := []byte{0x05, 0xD1, 0x00, 0x00, 0x01, 0xFF, 0x29} // cause 01: checksum failure
	badCk := []byte{0x04, 0xD0, 0x00, 0x00, 0xFF, 0x2D}
	in := bytes.Join([][]byte{[]byte("ab"), ack, []byte("cd"), nak, badCk, []byte("\r")}, nil)
	want := bytes.Join([][]byte{[]byte("abcd"), badCk, []byte("\r")}, nil)
	var f ssiFilter
	if got := f.filter(bytes.Clone(in)); !bytes.Equal(got, want) {
		t.Errorf("whole: % X, want % X", got, want)
	}
	for step := 1; step < len(in); step++ {
		var f ssiFilter
		var got []byte
		for i := 0; i < len(in); i += step {
			got = append(got, f.filter(bytes.Clone(in[i:min(i+step, len(in))]))...)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("step %d: % X, want % X", step, got, want)
		}
	}
}

// FuzzSSIFilter: however the stream is split into reads, the filter gives
// the same bytes, and it only ever removes bytes.
func FuzzSSIFilter(f *testing.F) {
	f.Add(append([]byte("12\x04"), ack...), uint8(2))
	f.Add([]byte{0x05, 0xD1, 0x00, 0x00, 0x01, 0xFF, 0x29, 0x04}, uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, split uint8) {
		var whole ssiFilter
		w := whole.filter(bytes.Clone(in))
		var parts ssiFilter
		var p []byte
		step := int(split%8) + 1
		for i := 0; i < len(in); i += step {
			p = append(p, parts.filter(bytes.Clone(in[i:min(i+step, len(in))]))...)
		}
		if !bytes.Equal(w, p) || whole.n != parts.n {
			t.Fatalf("split changed the output: % X vs % X", w, p)
		}
		if len(w)+whole.n > len(in) {
			t.Fatalf("filter added bytes")
		}
	})
}
