package hidreport

import (
	"bytes"
	"errors"
	"testing"

	"github.com/kioskd/kioskd/scanner/internal/hidtest"
)

func TestPOSJoinsMultiReportQR(t *testing.T) {
	qr := paymentQR(500)
	withCR := append(append([]byte(nil), qr...), '\r')
	tests := []struct {
		name    string
		cfg     POSConfig
		reports [][]byte
		sym     string
		aim     string
	}{
		{"honeywell AIM ]Q1 and CR", POSConfig{}, hidtest.Honeywell(withCR, "]Q1", 's', true), "qr", "]Q1"},
		{"honeywell without AIM", POSConfig{}, hidtest.Honeywell(qr, "", 's', true), "qr", ""},
		{"honeywell without AIM or code id", POSConfig{}, hidtest.Honeywell(qr, "", 0, true), "", ""},
		{"honeywell without report id, auto", POSConfig{}, hidtest.Honeywell(withCR, "]Q1", 's', false), "qr", "]Q1"},
		{"honeywell without report id, configured", POSConfig{IDMode: ReportIDAbsent}, hidtest.Honeywell(qr, "]Q1", 's', false), "qr", "]Q1"},
		{"newland", POSConfig{Format: Newland}, hidtest.Newland(withCR, 'Q'), "qr", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.reports) != 9 {
				t.Fatalf("test data: %d reports, want 9", len(tc.reports))
			}
			d := NewPOS(tc.cfg)
			for i, r := range tc.reports {
				res, err := d.Feed(r)
				if err != nil {
					t.Fatalf("report %d: %v", i, err)
				}
				if res.Started != (i == 0) {
					t.Errorf("report %d: Started=%v", i, res.Started)
				}
				last := i == len(tc.reports)-1
				if res.Done != last {
					t.Fatalf("report %d: Done=%v", i, res.Done)
				}
				if last {
					if !bytes.Equal(res.Data, qr) {
						t.Fatalf("data:\n got %q\nwant %q", res.Data, qr)
					}
					if res.Symbology != tc.sym || res.AIM != tc.aim {
						t.Errorf("symbology %q aim %q, want %q %q", res.Symbology, res.AIM, tc.sym, tc.aim)
					}
				}
				if d.Pending() == last {
					t.Errorf("report %d: Pending=%v", i, d.Pending())
				}
			}
		})
	}
}

// A scanner set to send the AIM ECI protocol (]Q2) escapes the data; the
// decoder hands on the payload itself.
func TestPOSUndoesECI(t *testing.T) {
	qr := []byte(`{"id_loyalty":"a\\b","encrypted":"QUJD\/RA==","sign":"TUVZ"}`)
	sent := append([]byte(`\000026`), bytes.ReplaceAll(qr, []byte(`\`), []byte(`\\`))...)
	d := NewPOS(POSConfig{})
	var res Result
	for _, r := range hidtest.Honeywell(append(sent, '\r'), "]Q2", 's', true) {
		var err error
		if res, err = d.Feed(r); err != nil {
			t.Fatal(err)
		}
	}
	if !res.Done || !bytes.Equal(res.Data, qr) || res.AIM != "]Q2" {
		t.Fatalf("got %+v (%q), want %q", res, res.Data, qr)
	}
}

func TestPOSSingleReportsAndSymbologies(t *testing.T) {
	tests := []struct {
		aim    string
		codeID byte
		want   string
	}{
		{"]E0", 'd', "ean13"},
		{"]E4", 'D', "ean8"},
		{"]C0", 'j', "code128"},
		{"]d1", 'w', "datamatrix"},
		{"", 'j', "code128"}, // vendor id when no AIM
		{"]X0", 's', "qr"},   // unknown AIM: fall back to vendor id
		{"]X0", '?', ""},     // neither known
	}
	d := NewPOS(POSConfig{})
	for _, tc := range tests {
		rs := hidtest.Honeywell([]byte("4006381333931"), tc.aim, tc.codeID, true)
		res, err := d.Feed(rs[0])
		if err != nil || !res.Started || !res.Done {
			t.Fatalf("%q: res %+v err %v", tc.aim, res, err)
		}
		if string(res.Data) != "4006381333931" || res.Symbology != tc.want {
			t.Errorf("%q/%c: got %q %q, want %q", tc.aim, tc.codeID, res.Data, res.Symbology, tc.want)
		}
	}
}

func TestPOSDataWithoutAIMField(t *testing.T) {
	// Some firmwares leave the AIM field out altogether: data right after
	// the count byte.
	r := make([]byte, 64)
	r[0], r[1] = 0x02, 5
	copy(r[2:], "hello")
	r[61] = 's'
	res, err := NewPOS(POSConfig{}).Feed(r)
	if err != nil || string(res.Data) != "hello" || res.Symbology != "qr" {
		t.Fatalf("got %+v %v", res, err)
	}
}

func TestPOSGarbage(t *testing.T) {
	qr := paymentQR(200)
	rs := hidtest.Honeywell(qr, "]Q1", 's', true)
	d := NewPOS(POSConfig{})

	if _, err := d.Feed(rs[0]); err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), rs[1]...)
	bad[1] = 57
	wrongID := append([]byte(nil), rs[1]...)
	wrongID[0] = 0xFD
	for name, r := range map[string][]byte{"count 57": bad, "wrong id": wrongID, "short": rs[1][:10]} {
		if _, err := d.Feed(r); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
	// Zero-length packets between reports are skipped.
	if res, err := d.Feed(nil); err != nil || res.Started || res.Done {
		t.Fatalf("ZLP: %+v %v", res, err)
	}
	var got Result
	for _, r := range rs[1:] {
		res, err := d.Feed(r)
		if err != nil {
			t.Fatal(err)
		}
		got = res
	}
	if !got.Done || !bytes.Equal(got.Data, qr) {
		t.Fatalf("frame after garbage: %+v", got)
	}
}

func TestPOSEndlessContinuationIsBounded(t *testing.T) {
	d := NewPOS(POSConfig{})
	r := hidtest.Honeywell(bytes.Repeat([]byte("A"), 112), "]Q1", 's', true)[0] // more-follows set
	overflows := 0
	for i := 0; i < 100000; i++ {
		res, err := d.Feed(r)
		if errors.Is(err, ErrOverflow) {
			overflows++
		} else if err != nil {
			t.Fatal(err)
		}
		if res.Done {
			t.Fatal("endless frame reported as done")
		}
		if cap(d.buf) > 2*DefaultMaxPayload {
			t.Fatalf("buffer grew to %d", cap(d.buf))
		}
	}
	if overflows != 1 {
		t.Fatalf("%d overflows, want 1 (then skip to the frame's end)", overflows)
	}
	// The last report of the overlong frame ends the skipping; the next
	// frame decodes normally.
	end := hidtest.Honeywell([]byte("tail"), "]Q1", 's', true)[0]
	if res, err := d.Feed(end); err != nil || res.Done {
		t.Fatalf("end of skipped frame: %+v %v", res, err)
	}
	if d.Pending() {
		t.Fatal("still pending after the skipped frame ended")
	}
	res, err := d.Feed(hidtest.Honeywell([]byte("next"), "]Q1", 's', true)[0])
	if err != nil || !res.Done || string(res.Data) != "next" {
		t.Fatalf("next frame: %+v %v", res, err)
	}
}

func TestPOSResetDropsPartialFrame(t *testing.T) {
	d := NewPOS(POSConfig{})
	rs := hidtest.Honeywell(paymentQR(300), "]Q1", 's', true)
	for _, r := range rs[:3] {
		if _, err := d.Feed(r); err != nil {
			t.Fatal(err)
		}
	}
	d.Reset()
	res, err := d.Feed(hidtest.Honeywell([]byte("x"), "]Q1", 's', true)[0])
	if err != nil || !res.Started || string(res.Data) != "x" {
		t.Fatalf("after reset: %+v %v", res, err)
	}
}
