package hidreport

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kioskd/kioskd/scanner/internal/hidtest"
	"github.com/kioskd/kioskd/scanner/scannertest"
	"github.com/kioskd/kioskd/scanner/settings"
)

// TestSettings decodes entries with the hidreport keys, as devices.yaml is
// read: defaults, values, and one problem per bad or misplaced key.
func TestSettings(t *testing.T) {
	decode := func(pairs ...string) (Settings, []settings.Problem) {
		var d settings.Decoder
		var s Settings = Defaults
		d.Decode(settings.Flat(pairs...), "s", 1, &s)
		return s, d.Problems()
	}
	s, p := decode("vid", "0c2e", "pid", "10d3")
	if len(p) > 0 || s.Mode != POSMode || s.POS.Format != Honeywell || s.USB.String() != "0c2e:10d3" {
		t.Fatalf("%+v %v", s, p)
	}
	s, p = decode("vid", "0c2e", "pid", "10d3", "serial", "X1", "interface", "2", "mode", "keyboard", "layout", "de")
	if len(p) > 0 || s.Mode != KeyboardMode || s.Layout != "de" || s.USB.String() != `0c2e:10d3 serial "X1" interface 2` {
		t.Fatalf("%+v %v", s, p)
	}
	for key, pairs := range map[string][]string{
		"vid":       {"pid", "10d3"},
		"pid":       {"vid", "0c2e"},
		"interface": {"vid", "0c2e", "pid", "10d3", "interface", "300"},
		"mode":      {"vid", "0c2e", "pid", "10d3", "mode", "wedge"},
		"report":    {"vid", "0c2e", "pid", "10d3", "report", "zebra"},
		"layout":    {"vid", "0c2e", "pid", "10d3", "layout", "de"}, // pos mode
	} {
		if _, p := decode(pairs...); len(p) != 1 || p[0].Path != "s."+key {
			t.Errorf("%s: problems %+v, want one on s.%s", key, p, key)
		}
	}
	if _, p := decode("vid", "0c2e", "pid", "10d3", "mode", "keyboard", "layout", "dvorak"); len(p) != 1 ||
		p[0].Msg != `want one of `+strings.Join(LayoutNames(), ", ")+`, got "dvorak"` {
		t.Errorf("dvorak: %+v", p)
	}
}

func TestSessionPOS(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	s := NewSession(Settings{Name: "side", POS: POSConfig{}}, zap.New(core))
	var rec scannertest.Recorder
	qr := paymentQR(500)
	t0 := time.Unix(1000, 0)
	for i, r := range hidtest.Honeywell(qr, "]Q1", 's', true) {
		s.Report(r, t0.Add(time.Duration(i)*time.Millisecond), &rec)
		s.Report(nil, t0, &rec) // ZLP after each full report
	}
	codes := rec.Codes()
	if len(rec.Starts()) != 1 || len(codes) != 1 {
		t.Fatalf("starts %d codes %d", len(rec.Starts()), len(codes))
	}
	c := codes[0]
	if !bytes.Equal(c.Data, qr) || c.Source != "side" || c.Symbology != "qr" || !c.Time.Equal(t0.Add(8*time.Millisecond)) {
		t.Fatalf("code %+v", c)
	}
	if rec.Starts()[0].At != t0 {
		t.Errorf("start at %v", rec.Starts()[0].At)
	}

	// A keyboard report on a POS session: one warning with a hint.
	s.Report([]byte{0, 0, 4, 0, 0, 0, 0, 0}, t0, &rec)
	s.Report([]byte{0, 0, 0, 0, 0, 0, 0, 0}, t0, &rec)
	if w := logs.FilterMessage("malformed report ignored").FilterLevelExact(zap.WarnLevel).All(); len(w) != 1 ||
		!strings.Contains(w[0].ContextMap()["hint"].(string), "keyboard") {
		t.Errorf("warnings %+v", w)
	}

	// A frame whose last report never comes is dropped after a second.
	rs := hidtest.Honeywell(qr, "]Q1", 's', true)
	if s.Busy() {
		t.Fatal("busy between frames")
	}
	s.Report(rs[0], t0, &rec)
	if !s.Busy() {
		t.Fatal("not busy inside a frame")
	}
	s.Idle(t0.Add(500*time.Millisecond), &rec)
	if !s.pos.Pending() {
		t.Fatal("dropped too early")
	}
	s.Idle(t0.Add(time.Second), &rec)
	if s.pos.Pending() || logs.FilterMessageSnippet("incomplete HID POS code").Len() != 1 {
		t.Fatal("stale frame kept")
	}
	if s.Wait(t0) != MaxWait {
		t.Errorf("wait %v", s.Wait(t0))
	}
	for _, e := range logs.All() {
		for k, v := range e.ContextMap() {
			if s, ok := v.(string); ok && strings.Contains(s, "encrypted") {
				t.Errorf("log %q field %s carries content", e.Message, k)
			}
		}
	}
}

func TestSessionKeyboard(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	set := Defaults
	set.Name, set.VID, set.PID, set.Mode, set.Layout = "wedge", 1, 2, KeyboardMode, "de"
	s := NewSession(set, zap.New(core))
	var rec scannertest.Recorder
	qr := string(paymentQR(400))
	t0 := time.Unix(2000, 0)
	at := t0
	// A JSON QR ends at its closing brace: no Enter needed.
	for _, r := range hidtest.KeyReports(typer("de", qr)...) {
		s.Report(r, at, &rec)
		at = at.Add(2 * time.Millisecond)
	}
	codes := rec.Codes()
	if len(codes) != 1 || string(codes[0].Data) != qr || len(rec.Starts()) != 1 {
		t.Fatalf("codes %+v starts %d", codes, len(rec.Starts()))
	}
	// A non-JSON code typed without Enter ends by the gap.
	rec.Reset()
	for _, r := range hidtest.KeyReports(typer("de", "4006381333931")...) {
		s.Report(r, at, &rec)
		at = at.Add(2 * time.Millisecond)
	}
	if w := s.Wait(at); !s.Busy() || w <= 0 || w > 50*time.Millisecond {
		t.Fatalf("wait %v during a frame", w)
	}
	s.Idle(at.Add(40*time.Millisecond), &rec) // the last key went down 6 ms before at
	if len(rec.Codes()) != 0 {
		t.Fatal("frame ended before the gap")
	}
	s.Idle(at.Add(60*time.Millisecond), &rec)
	if c := rec.Codes(); len(c) != 1 || string(c[0].Data) != "4006381333931" {
		t.Fatalf("gap frame %+v", c)
	}

	// The QR typed by a scanner set to us: delivered (the flow rejects it)
	// and logged as a wrong layout, without its content.
	rec.Reset()
	for _, r := range hidtest.KeyReports(typer("us", qr+"\r")...) {
		s.Report(r, at, &rec)
		at = at.Add(2 * time.Millisecond)
	}
	if len(rec.Codes()) != 1 {
		t.Fatalf("codes %d", len(rec.Codes()))
	}
	w := logs.FilterMessage("wrong keyboard layout?").All()
	if len(w) != 1 {
		t.Fatalf("layout warnings: %d; code %q", len(w), rec.Codes()[0].Data[:20])
	}
	fits, _ := w[0].ContextMap()["fits"].([]interface{})
	if len(fits) == 0 || fits[0] != "us" {
		t.Errorf("fits %v", w[0].ContextMap()["fits"])
	}
	for _, e := range logs.All() {
		for _, v := range e.ContextMap() {
			if s, ok := v.(string); ok && strings.Contains(s, "7712345") {
				t.Errorf("log %q carries the code", e.Message)
			}
		}
	}
}
