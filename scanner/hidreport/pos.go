package hidreport

import (
	"errors"
	"fmt"

	"github.com/kioskd/kioskd/scanner/frame"
)

// POSFormat is the byte layout of a HID POS input report.
type POSFormat int

const (
	// Honeywell: byte 0 report id, byte 1 count of valid data bytes (≤ 56),
	// bytes 2–4 AIM id (zero when the scanner sends none), bytes 5–60 data,
	// byte 61 vendor code id, byte 62 reserved, byte 63 bit 0 = more follows.
	Honeywell POSFormat = iota
	// Newland: byte 0 report id, byte 1 count (≤ 56), bytes 2–57 data, byte 62
	// symbology (code) id, byte 63 bit 0 = more follows.
	Newland
)

// String returns the name used in devices.yaml ("honeywell", "newland").
func (f POSFormat) String() string {
	switch f {
	case Honeywell:
		return "honeywell"
	case Newland:
		return "newland"
	}
	return fmt.Sprintf("POSFormat(%d)", int(f))
}

// ReportIDMode says whether reports arrive with their report id byte.
type ReportIDMode int

const (
	// ReportIDAuto takes a 63-byte report as one without the id byte and
	// anything longer as one with it: hidraw and libusb both deliver the id
	// when the descriptor declares one, but some firmwares declare none.
	ReportIDAuto ReportIDMode = iota
	// ReportIDPresent: byte 0 is always the report id.
	ReportIDPresent
	// ReportIDAbsent: the report id byte is never sent (63-byte reports).
	ReportIDAbsent
)

// Report geometry shared by both formats (offsets with the report id byte).
const (
	posReportLen    = 64
	posMaxCount     = 56
	posFlagMore     = 0x01
	defaultReportID = 0x02
	// DefaultMaxPayload bounds a joined multi-report payload. A payment QR is
	// 300–500 bytes; 4 KiB leaves room for any real code and stops a stream of
	// continuation reports that never ends from growing memory.
	DefaultMaxPayload = 4096
)

// Errors Feed returns; the caller logs them and keeps feeding reports.
var (
	// ErrMalformed: the report is too short, has a bad count or an
	// unexpected report id. The report is ignored; a frame in progress is kept.
	ErrMalformed = errors.New("hidreport: malformed report")
	// ErrOverflow: a joined payload went past the size bound. The frame is
	// dropped and reports are skipped until one without the more-follows flag.
	ErrOverflow = errors.New("hidreport: payload too long")
)

// POSConfig configures a POS decoder. The zero value decodes Honeywell
// reports with report id 0x02, auto-detected id byte and a 4 KiB bound.
type POSConfig struct {
	Format     POSFormat
	IDMode     ReportIDMode
	ReportID   byte // expected report id; 0x02 when 0
	MaxPayload int  // DefaultMaxPayload when 0
}

// Result is what one report contributed.
type Result struct {
	// Started is true for the first report of a frame, so the caller can
	// signal FrameStarted before the rest of a long QR arrives.
	Started bool
	// Done is true when the report finished a frame: Data and Symbology are
	// then set.
	Done bool
	// Data is the joined payload without AIM id and trailing CR. It is a new
	// slice the caller owns.
	Data []byte
	// Symbology is "qr", "ean13", … from the AIM or vendor id; empty when
	// unknown.
	Symbology string
	// AIM is the AIM identifier (e.g. "]Q1") when the scanner sent one.
	AIM string
}

// POS joins HID POS reports into scanned codes. It is not safe for
// concurrent use: one reading goroutine owns it.
type POS struct {
	cfg      POSConfig
	buf      []byte
	inFrame  bool
	skipping bool // after ErrOverflow, until the frame's last report
	aim      [3]byte
	hasAIM   bool
}

// NewPOS returns a decoder for cfg.
func NewPOS(cfg POSConfig) *POS {
	if cfg.ReportID == 0 {
		cfg.ReportID = defaultReportID
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = DefaultMaxPayload
	}
	return &POS{cfg: cfg}
}

// Pending reports whether a frame is partly received, so a driver can drop it
// (Reset) when the rest never comes.
func (d *POS) Pending() bool { return d.inFrame || d.skipping }

// Reset drops a partly received frame, e.g. after the device was reopened.
func (d *POS) Reset() {
	d.buf = d.buf[:0]
	d.inFrame, d.skipping, d.hasAIM = false, false, false
}

// Feed decodes one input report. Empty reports (zero-length packets, read
// timeouts) return a zero Result and no error. Errors wrap ErrMalformed or
// ErrOverflow; the decoder stays usable after them.
func (d *POS) Feed(report []byte) (Result, error) {
	if len(report) == 0 {
		return Result{}, nil
	}
	r, err := d.normalize(report)
	if err != nil {
		return Result{}, err
	}
	count := int(r[1])
	if count > posMaxCount {
		return Result{}, fmt.Errorf("%w: count %d > %d", ErrMalformed, count, posMaxCount)
	}
	more := r[63]&posFlagMore != 0

	var data []byte
	var aim [3]byte
	hasAIM := false
	var codeID byte
	switch d.cfg.Format {
	case Newland:
		data = r[2 : 2+count]
		codeID = r[62]
	default:
		switch {
		case r[2] == ']':
			copy(aim[:], r[2:5])
			hasAIM = true
			data = r[5 : 5+count]
		case r[2] == 0 && r[3] == 0 && r[4] == 0:
			data = r[5 : 5+count]
		default:
			// No AIM field at all: the data starts right after the count.
			data = r[2 : 2+count]
		}
		codeID = r[61]
	}

	var res Result
	if d.skipping {
		if !more {
			d.skipping = false
		}
		return res, nil
	}
	if !d.inFrame {
		d.inFrame = true
		res.Started = true
		d.buf = d.buf[:0]
		d.aim, d.hasAIM = aim, hasAIM
	}
	if len(d.buf)+len(data) > d.cfg.MaxPayload {
		d.buf = d.buf[:0]
		d.inFrame = false
		d.skipping = more
		return res, fmt.Errorf("%w: more than %d bytes", ErrOverflow, d.cfg.MaxPayload)
	}
	d.buf = append(d.buf, data...)
	if more {
		return res, nil
	}

	d.inFrame = false
	payload := d.buf
	if n := len(payload); n > 0 && payload[n-1] == '\r' {
		payload = payload[:n-1]
	}
	res.Done = true
	if d.hasAIM {
		res.AIM = string(d.aim[:])
		res.Symbology = frame.Symbology(d.aim[1], d.aim[2])
	}
	res.Data = frame.UndoECI(res.AIM, append([]byte(nil), payload...))
	if res.Symbology == "" {
		if d.cfg.Format == Newland {
			res.Symbology = newlandSymbology(codeID)
		} else {
			res.Symbology = honeywellSymbology(codeID)
		}
	}
	d.buf = d.buf[:0]
	return res, nil
}

// normalize returns the report as a 64-byte slice with the id byte at 0.
func (d *POS) normalize(report []byte) ([]byte, error) {
	withID := true
	switch d.cfg.IDMode {
	case ReportIDAbsent:
		withID = false
	case ReportIDAuto:
		withID = len(report) != posReportLen-1
	}
	if !withID {
		if len(report) < posReportLen-1 {
			return nil, fmt.Errorf("%w: %d bytes, want 63", ErrMalformed, len(report))
		}
		var r [posReportLen]byte
		r[0] = d.cfg.ReportID
		copy(r[1:], report)
		return r[:], nil
	}
	if len(report) < posReportLen {
		return nil, fmt.Errorf("%w: %d bytes, want 64", ErrMalformed, len(report))
	}
	if report[0] != d.cfg.ReportID {
		return nil, fmt.Errorf("%w: report id 0x%02x, want 0x%02x", ErrMalformed, report[0], d.cfg.ReportID)
	}
	return report[:posReportLen], nil
}

// Code ids (the vendor's symbology letter) and what they name. Honeywell
// (byte 61) and Newland (byte 62, defaults of its 2D engines; documented
// per model) share most letters and differ for QR and Data Matrix.
var (
	sharedCodeIDs = map[byte]string{'z': "aztec", 'r': "pdf417", 'j': "code128", 'b': "code39",
		'd': "ean13", 'D': "ean8", 'c': "upca", 'E': "upce", 'e': "itf"}
	honeywellCodeIDs = map[byte]string{'s': "qr", 'w': "datamatrix"}
	newlandCodeIDs   = map[byte]string{'Q': "qr", 'u': "datamatrix"}
)

func honeywellSymbology(c byte) string { return symbology(honeywellCodeIDs, c) }

func newlandSymbology(c byte) string { return symbology(newlandCodeIDs, c) }

// symbology names code id c with the vendor's own letters first; "" when
// the id is not known.
func symbology(own map[byte]string, c byte) string {
	if s, ok := own[c]; ok {
		return s
	}
	return sharedCodeIDs[c]
}
