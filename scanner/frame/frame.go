package frame

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/scanner/settings"
)

// Mode selects what ends a frame.
type Mode int

// Framing modes, as named in devices.yaml.
const (
	Auto Mode = iota // CR, LF, CRLF, a complete JSON object, or the gap
	CR               // CR only; a frame left without it is dropped after the gap
	LF               // LF only; likewise
	CRLF             // CR LF only; likewise
	Gap              // the inter-character gap only
)

var modeNames = [...]string{"auto", "cr", "lf", "crlf", "gap"}

// String returns the devices.yaml name of m.
func (m Mode) String() string { return settings.NameOf(modeNames[:], m) }

// maxGap bounds the gap a configuration may ask for: beyond it a scan
// would wait for seconds on every frame without a terminator.
const maxGap = 10 * time.Second

// Fields declares the devices.yaml keys of framing, for the drivers that
// frame a byte stream: framing (auto by default) and gap (DefaultGap).
func (c *Config) Fields() []settings.Field {
	return []settings.Field{
		settings.Indexed("framing", &c.Mode, modeNames[:]),
		settings.DurationUpTo("gap", &c.Gap, maxGap),
	}
}

// Defaults of Config.
const (
	DefaultGap = 50 * time.Millisecond
	// DefaultJSONGap is the gap that ends a frame in Auto mode while a JSON
	// object is still open. Its closing brace ends the frame at once, so
	// waiting longer costs nothing on a good read, and a keyboard-mode scanner
	// (1–19 ms a key, more on a loaded host) no longer splits a QR in two.
	DefaultJSONGap = time.Second
	DefaultMaxSize = 4096 // a Smart Pay QR is 300–600 bytes
)

// Config tunes a Framer. The zero value is auto framing with the defaults.
type Config struct {
	Mode    Mode
	Gap     time.Duration // inter-character gap that ends a frame; DefaultGap when 0
	JSONGap time.Duration // Auto mode, inside an open JSON object: DefaultJSONGap when 0
	MaxSize int           // longest frame kept, in bytes after stripping; DefaultMaxSize when 0
	Log     *zap.Logger   // oversize and incomplete frames are logged (sizes only, never content)
}

// Reason says what ended a frame.
type Reason int

// What can end a frame.
const (
	BySuffix Reason = iota // CR, LF or CRLF
	ByJSON                 // the closing brace of a complete JSON object
	ByGap                  // no byte for Config.Gap
)

// String returns "suffix", "json" or "gap".
func (r Reason) String() string {
	switch r {
	case BySuffix:
		return "suffix"
	case ByJSON:
		return "json"
	case ByGap:
		return "gap"
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// Frame is one finished frame.
type Frame struct {
	// Data is the payload without the scanner's identifiers (AIM id, a
	// vendor code id before a JSON object, ECI escapes), control characters
	// and terminator. It is only valid during the Sink call: copy it to
	// keep it.
	Data      []byte
	AIM       string    // "]Q1" when the scanner sent one, else ""
	CodeID    string    // the vendor code id stripped before a JSON object ("s", "P01"…), else ""
	Symbology string    // "qr", "ean13"… from the AIM identifier or code id, else ""
	Start     time.Time // arrival of the first byte
	End       time.Time // arrival of the last byte
	By        Reason
}

// Sink receives what a Framer finds. Both are called synchronously from
// Feed or Expire.
type Sink interface {
	// FrameStarted reports the first byte of a new frame. A stray CR or LF
	// between frames does not start one.
	FrameStarted(at time.Time)
	// FrameDone reports a finished, non-empty frame.
	FrameDone(Frame)
}

// Stats counts what a Framer did, for metrics.
type Stats struct {
	Frames     uint64 // frames delivered
	Oversize   uint64 // frames discarded for exceeding MaxSize
	Incomplete uint64 // frames discarded for lack of the configured suffix
	Empty      uint64 // frames that held nothing but stripped bytes
	Trailers   uint64 // suffixes dropped after a JSON object (a custom suffix, a trailing label id)
}

type state int

const (
	idle       state = iota
	inFrame          // collecting a frame
	discarding       // dropping an oversize frame up to the next terminator
)

// Framer cuts a byte stream into frames. It is not safe for concurrent use:
// one driver goroutine owns it.
type Framer struct {
	cfg   Config
	log   *zap.Logger
	buf   []byte // capacity MaxSize, never grown
	state state
	start time.Time
	last  time.Time // arrival of the last byte of the current frame
	prev  byte      // last raw byte seen in this frame (for CRLF)

	leadDone     bool   // the identifiers before the payload are known
	payloadStart int    // bytes of identifiers at the start of buf
	aimAt        int    // offset of the AIM id in buf, -1 when none
	code         string // vendor code id before a JSON object
	eci          bool   // the payload follows the AIM ECI protocol
	esc          eciDecoder
	json         bool // payload is a JSON object being tracked
	depth        int
	inString     bool
	escaped      bool

	jsonEnded bool      // the last frame was a JSON object and no terminator followed yet
	jsonEnd   time.Time // ...its closing brace's arrival
	afterJSON bool      // this frame began right after a JSON object's closing brace

	stats Stats
	aim   string // last AIM id seen, reused to save an allocation per frame
}

// New returns a Framer for cfg.
func New(cfg Config) *Framer {
	if cfg.Gap <= 0 {
		cfg.Gap = DefaultGap
	}
	if cfg.JSONGap <= 0 {
		cfg.JSONGap = DefaultJSONGap
	}
	cfg.JSONGap = max(cfg.JSONGap, cfg.Gap)
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = DefaultMaxSize
	}
	log := cfg.Log
	if log == nil {
		log = zap.NewNop()
	}
	return &Framer{cfg: cfg, log: log, buf: make([]byte, 0, cfg.MaxSize), aimAt: -1}
}

// Stats returns the counters so far.
func (f *Framer) Stats() Stats { return f.stats }

// Reset drops a partial frame, e.g. after the device was reopened.
func (f *Framer) Reset() {
	f.toIdle()
	f.jsonEnded = false
}

// Deadline returns when the current frame ends by the gap if no byte comes
// first; ok is false when no frame is in progress. A driver waits for data
// at most until then and calls Expire.
func (f *Framer) Deadline() (t time.Time, ok bool) {
	if f.state == idle {
		return time.Time{}, false
	}
	return f.last.Add(f.gap()), true
}

// gap is the pause that ends the current frame: longer while an Auto frame
// holds an unfinished JSON object, whose closing brace will end it.
func (f *Framer) gap() time.Duration {
	if f.cfg.Mode == Auto && f.json && f.depth > 0 {
		return f.cfg.JSONGap
	}
	return f.cfg.Gap
}

// Expire ends the current frame if the gap has passed by now: in Auto and
// Gap mode it is delivered, in the suffix modes it is dropped as incomplete.
func (f *Framer) Expire(now time.Time, s Sink) {
	if f.state == idle || now.Sub(f.last) < f.gap() {
		return
	}
	switch {
	case f.state == discarding:
		f.toIdle()
	case f.cfg.Mode == Auto || f.cfg.Mode == Gap:
		f.finish(ByGap, s)
	default:
		f.stats.Incomplete++
		f.log.Warn("scanner frame without its suffix dropped",
			zap.Stringer("framing", f.cfg.Mode), zap.Int("bytes", len(f.buf)))
		f.toIdle()
	}
}

// Feed processes bytes that arrived at time at, reporting frame starts and
// finished frames to s. A frame in progress whose gap passed before at is
// ended first.
func (f *Framer) Feed(p []byte, at time.Time, s Sink) {
	f.Expire(at, s)
	for _, b := range p {
		f.feedByte(b, at, s)
	}
}

func isTerminator(b byte) bool { return b == '\r' || b == '\n' }

func isControl(b byte) bool { return b < 0x20 || b == 0x7f }

func (f *Framer) feedByte(b byte, at time.Time, s Sink) {
	switch f.state {
	case idle:
		if isTerminator(b) {
			f.jsonEnded = false
			return // the LF of a CRLF, or a suffix after a JSON frame
		}
		f.afterJSON = f.jsonEnded && at.Sub(f.jsonEnd) < f.cfg.Gap && b != '{' && b != ']'
		f.jsonEnded = false
		f.state = inFrame
		f.start = at
		s.FrameStarted(at)
	case discarding:
		f.last = at
		if f.endsFrame(b) {
			f.toIdle()
		}
		f.prev = b
		return
	}
	f.last = at
	prev := f.prev
	f.prev = b

	if isControl(b) {
		if !f.json && f.endsFrameAfter(prev, b) {
			f.finish(BySuffix, s)
		}
		return
	}
	if f.leadDone {
		f.payloadByte(b, s)
		return
	}
	if len(f.buf) == f.cfg.MaxSize {
		f.oversize()
		return
	}
	f.buf = append(f.buf, b)
	if l := parseLead(f.buf, false); l.kind != leadUndecided {
		f.takeLead(l, s)
	}
}

// takeLead applies the identifiers found before the payload: they stay in
// buf before payloadStart, and the payload bytes read so far go through
// the ECI decoding and JSON tracking like those that follow.
func (f *Framer) takeLead(l lead, s Sink) {
	f.leadDone = true
	f.payloadStart, f.aimAt, f.code = l.skip, l.aim, l.code
	f.eci = l.eci || (l.aim >= 0 && eciModifier(f.buf[l.aim+1], f.buf[l.aim+2]))
	f.json = f.cfg.Mode == Auto && l.kind == leadJSON
	if l.kind == leadJSON {
		f.afterJSON = false // the next object, not a suffix
	}
	var held [maxLead]byte // the lead-in's grammar bounds what is read before it is decided
	tail := append(held[:0], f.buf[l.skip:]...)
	f.buf = f.buf[:l.skip]
	for _, c := range tail {
		if f.state != inFrame {
			return // the JSON object ended (or the frame was too long)
		}
		f.payloadByte(c, s)
	}
}

// payloadByte adds a payload byte, decoding ECI escapes when the frame
// follows that protocol.
func (f *Framer) payloadByte(b byte, s Sink) {
	if !f.eci {
		f.push(b, s)
		return
	}
	var out [eciHeld + 1]byte
	for _, c := range f.esc.feed(b, out[:0]) {
		if f.state != inFrame || !f.push(c, s) {
			return
		}
	}
}

// push appends one payload byte and tracks the JSON object; it reports
// whether the frame goes on.
func (f *Framer) push(c byte, s Sink) bool {
	if len(f.buf) == f.cfg.MaxSize {
		f.oversize()
		return false
	}
	f.buf = append(f.buf, c)
	if f.json && f.trackJSON(c) {
		f.finish(ByJSON, s)
		return false
	}
	return true
}

// endsFrame reports whether b alone terminates a frame in this mode; it is
// used while discarding, where CRLF needs no pairing.
func (f *Framer) endsFrame(b byte) bool {
	switch f.cfg.Mode {
	case Auto:
		return isTerminator(b)
	case CR:
		return b == '\r'
	case LF, CRLF:
		return b == '\n'
	}
	return false
}

// endsFrameAfter reports whether control byte b, following prev, ends a frame.
func (f *Framer) endsFrameAfter(prev, b byte) bool {
	if f.cfg.Mode == CRLF {
		return prev == '\r' && b == '\n'
	}
	return f.endsFrame(b)
}

// trackJSON follows the braces of a JSON object outside strings and reports
// whether b closed the outermost one.
func (f *Framer) trackJSON(b byte) bool {
	if f.inString {
		switch {
		case f.escaped:
			f.escaped = false
		case b == '\\':
			f.escaped = true
		case b == '"':
			f.inString = false
		}
		return false
	}
	switch b {
	case '"':
		f.inString = true
	case '{':
		f.depth++
	case '}':
		f.depth--
		return f.depth == 0
	}
	return false
}

func (f *Framer) oversize() {
	f.stats.Oversize++
	if n := f.stats.Oversize; n == 1 || n%100 == 0 {
		f.log.Warn("scanner frame too long; discarding up to the next terminator",
			zap.Int("max_bytes", f.cfg.MaxSize), zap.Uint64("oversize_frames", n))
	}
	start, last, prev := f.start, f.last, f.prev
	f.toIdle()
	f.state, f.start, f.last, f.prev = discarding, start, last, prev
}

func (f *Framer) finish(by Reason, s Sink) {
	if !f.leadDone {
		// The frame ended inside what could still have been identifiers.
		f.takeLead(parseLead(f.buf, true), s)
		if f.state != inFrame {
			return
		}
	}
	if f.eci {
		// An escape cut short by the end of the frame is kept as sent.
		var out [eciHeld]byte
		for _, c := range f.esc.flush(out[:0]) {
			if len(f.buf) < f.cfg.MaxSize {
				f.buf = append(f.buf, c)
			}
		}
	}
	if len(f.buf) <= f.payloadStart {
		f.stats.Empty++
		f.toIdle()
		return
	}
	if by == BySuffix && f.afterJSON {
		// Bytes between a JSON object's closing brace and the terminator
		// are the scanner's suffix (a custom suffix, a trailing label id),
		// not a code of their own.
		f.stats.Trailers++
		f.toIdle()
		return
	}
	fr := Frame{Data: f.buf[f.payloadStart:], CodeID: f.code, Start: f.start, End: f.last, By: by}
	if f.aimAt >= 0 {
		id := f.buf[f.aimAt : f.aimAt+3]
		if string(id) != f.aim {
			f.aim = string(id) // kept: a scanner repeats its ids
		}
		fr.AIM = f.aim
		fr.Symbology = Symbology(id[1], id[2])
	}
	if fr.Symbology == "" && f.code != "" {
		fr.Symbology = "qr" // every code id we strip is a QR code's
	}
	f.stats.Frames++
	s.FrameDone(fr)
	f.toIdle()
	if by == ByJSON {
		f.jsonEnded, f.jsonEnd = true, fr.End
	}
}

func (f *Framer) toIdle() {
	f.buf = f.buf[:0]
	f.state = idle
	f.prev = 0
	f.leadDone, f.payloadStart, f.aimAt, f.code, f.eci = false, 0, -1, "", false
	f.esc = eciDecoder{}
	f.json, f.depth, f.inString, f.escaped = false, 0, false, false
	f.afterJSON = false
}

func isLetter(b byte) bool { return b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' }
func isDigit(b byte) bool  { return b >= '0' && b <= '9' }

// Symbology names the symbology of an AIM identifier "]" + code + modifier
// (ISO/IEC 15424), or returns "" for codes we do not name.
func Symbology(code, modifier byte) string {
	switch code {
	case 'Q':
		return "qr"
	case 'd':
		return "datamatrix"
	case 'z':
		return "aztec"
	case 'L':
		return "pdf417"
	case 'C':
		return "code128"
	case 'A':
		return "code39"
	case 'G':
		return "code93"
	case 'F':
		return "codabar"
	case 'I':
		return "itf"
	case 'e':
		return "gs1-databar"
	case 'E':
		if modifier == '4' {
			return "ean8"
		}
		return "ean13"
	}
	return ""
}
