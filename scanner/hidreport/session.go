package hidreport

import (
	"errors"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/scanner"
	"github.com/kioskd/kioskd/scanner/frame"
)

// Settings is a validated configuration of a report-reading scanner (the
// scanner/hid and scanner/usb drivers).
type Settings struct {
	Name      string
	VID, PID  uint16
	Serial    string // empty matches any
	Interface int    // -1 matches any
	Keyboard  bool   // keyboard mode; HID POS otherwise
	Layout    string // keyboard mode
	POS       POSConfig
	Frame     frame.Config // keyboard mode: the typed text is framed like a serial line
}

// ParseConfig validates the fields of cfg that the hid and usb drivers use.
// Errors are *scanner.ConfigError naming the field.
func ParseConfig(cfg scanner.Config) (Settings, error) {
	bad := func(field, reason string) (Settings, error) {
		return Settings{}, &scanner.ConfigError{Scanner: cfg.Name, Field: field, Reason: reason}
	}
	s := Settings{Name: cfg.Name, VID: cfg.VID, PID: cfg.PID, Serial: cfg.Serial, Interface: cfg.Interface}
	if cfg.VID == 0 {
		return bad("vid", "required: the USB vendor id in hex, e.g. \"0c2e\" (`kioskd devices` lists it)")
	}
	if cfg.PID == 0 {
		return bad("pid", "required: the USB product id in hex, e.g. \"10d3\"")
	}
	if cfg.Interface < -1 || cfg.Interface > 255 {
		return bad("interface", strconv.Itoa(cfg.Interface)+": want a USB interface number 0–255, or leave it out")
	}
	switch cfg.Mode {
	case "", "pos":
		f, err := ParsePOSFormat(cfg.Report)
		if err != nil {
			return bad("report", err.Error())
		}
		s.POS = POSConfig{Format: f}
		if cfg.Layout != "" {
			return bad("layout", "only for mode: keyboard")
		}
	case "keyboard":
		s.Keyboard = true
		if _, err := LayoutByName(cfg.Layout); err != nil {
			return bad("layout", err.Error())
		}
		s.Layout = cfg.Layout
		if s.Layout == "" {
			s.Layout = "us"
		}
		m, err := frame.ParseMode(cfg.Framing)
		if err != nil {
			return bad("framing", err.Error())
		}
		if cfg.Gap < 0 {
			return bad("gap", "must not be negative")
		}
		s.Frame = frame.Config{Mode: m, Gap: cfg.Gap}
		if cfg.Report != "" {
			return bad("report", "only for mode: pos")
		}
	default:
		return bad("mode", strconv.Quote(cfg.Mode)+": want pos (HID POS reports) or keyboard (boot keyboard)")
	}
	return s, nil
}

// Device returns "vvvv:pppp" (with the serial number when one is set), how
// logs and errors name the device.
func (s Settings) Device() string {
	d := hex4(s.VID) + ":" + hex4(s.PID)
	if s.Serial != "" {
		d += " serial " + strconv.Quote(s.Serial)
	}
	if s.Interface >= 0 {
		d += " interface " + strconv.Itoa(s.Interface)
	}
	return d
}

func hex4(v uint16) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[v>>12], digits[v>>8&15], digits[v>>4&15], digits[v&15]})
}

// MaxWait is how long a driver blocks in one read when no frame is in
// progress: it bounds how late a cancelled context is noticed by drivers
// whose read cannot be cancelled (karalabe/hid), at a few wake-ups a second.
const MaxWait = 250 * time.Millisecond

// staleAfter drops a HID POS frame whose continuation never came (the
// scanner sends all reports of a code within milliseconds).
const staleAfter = time.Second

// Session turns the reports of one open device into scanner events: it owns
// the decoder (and, in keyboard mode, the framer) and reports frame starts
// and codes to a scanner.Handler. The driver's reading goroutine owns it.
type Session struct {
	set  Settings
	log  *zap.Logger
	pos  *POS
	kb   *Keyboard
	fr   *frame.Framer
	text []byte
	last time.Time // arrival of the last report
	bad  int       // malformed reports so far
	snk  sink      // reused so feeding the framer does not allocate
}

// NewSession returns a Session for s. log gets warnings about malformed
// reports, dropped frames and a suspected wrong keyboard layout, never the
// content of a code.
func NewSession(s Settings, log *zap.Logger) *Session {
	if log == nil {
		log = zap.NewNop()
	}
	ss := &Session{set: s, log: log}
	if s.Keyboard {
		ss.kb, _ = NewKeyboard(s.Layout) // validated by ParseConfig
		if ss.kb == nil {
			ss.kb, _ = NewKeyboard("us")
		}
		fc := s.Frame
		fc.Log = log
		ss.fr = frame.New(fc)
	} else {
		ss.pos = NewPOS(s.POS)
	}
	return ss
}

// Report processes one report read at time at. Empty reports (zero-length
// packets) are ignored.
func (s *Session) Report(r []byte, at time.Time, h scanner.Handler) {
	if len(r) == 0 {
		return
	}
	s.last = at
	if s.kb != nil {
		var err error
		s.text, err = s.kb.Feed(s.text[:0], r)
		if err != nil {
			s.malformed(err, len(r))
		}
		s.snk = sink{s, h}
		if len(s.text) > 0 {
			s.fr.Feed(s.text, at, &s.snk)
		} else {
			// Key releases carry no text but still mark time passing.
			s.fr.Expire(at, &s.snk)
		}
		return
	}
	res, err := s.pos.Feed(r)
	switch {
	case errors.Is(err, ErrOverflow):
		s.log.Warn("HID POS code longer than the bound dropped", zap.Int("max_bytes", DefaultMaxPayload))
	case err != nil:
		s.malformed(err, len(r))
	}
	if res.Started {
		h.FrameStarted(s.set.Name, at)
	}
	if res.Done && len(res.Data) > 0 {
		h.CodeRead(scanner.Code{Data: res.Data, Source: s.set.Name, Time: at, Symbology: res.Symbology})
	}
}

func (s *Session) malformed(err error, n int) {
	s.bad++
	fields := []zap.Field{zap.Error(err), zap.Int("report_bytes", n), zap.Int("count", s.bad)}
	if s.bad > 1 {
		s.log.Debug("malformed report ignored", fields...)
		return
	}
	switch {
	case s.kb == nil && n <= 9:
		fields = append(fields, zap.String("hint", "short reports look like a keyboard: set mode: keyboard, or switch the scanner to HID POS"))
	case s.kb != nil && n >= 63:
		fields = append(fields, zap.String("hint", "64-byte reports look like HID POS: set mode: pos"))
	}
	s.log.Warn("malformed report ignored", fields...)
}

// Busy reports whether a frame is in progress, so a driver whose reads can
// block indefinitely (gousb) knows it must wake up for Idle.
func (s *Session) Busy() bool {
	if s.fr != nil {
		_, ok := s.fr.Deadline()
		return ok
	}
	return s.pos.Pending()
}

// Wait returns how long the driver may block for the next report before it
// must call Idle: until the keyboard framer's gap deadline, at most MaxWait.
func (s *Session) Wait(now time.Time) time.Duration {
	w := MaxWait
	if s.fr != nil {
		if dl, ok := s.fr.Deadline(); ok {
			w = min(w, max(dl.Sub(now), time.Millisecond))
		}
	}
	return w
}

// Idle is called when no report came for a while (a read timed out): it
// ends a keyboard frame by the gap and drops a HID POS frame whose remaining
// reports never came.
func (s *Session) Idle(now time.Time, h scanner.Handler) {
	if s.fr != nil {
		s.snk = sink{s, h}
		s.fr.Expire(now, &s.snk)
		return
	}
	if s.pos.Pending() && now.Sub(s.last) >= staleAfter {
		s.log.Warn("incomplete HID POS code dropped: its last report never came")
		s.pos.Reset()
	}
}

// sink adapts a scanner.Handler to the framer.
type sink struct {
	s *Session
	h scanner.Handler
}

// FrameStarted passes the framer's frame start on with the scanner's name.
func (k *sink) FrameStarted(at time.Time) { k.h.FrameStarted(k.s.set.Name, at) }

// FrameDone delivers the frame as a Code, then checks the layout: the
// payment waits for nothing that only serves the log.
func (k *sink) FrameDone(f frame.Frame) {
	k.h.CodeRead(scanner.Code{
		Data:      append([]byte(nil), f.Data...),
		Source:    k.s.set.Name,
		Time:      f.End,
		Symbology: f.Symbology,
	})
	if hint := k.s.kb.Check(f.Data); hint != nil {
		// Content is never logged: it may be a payment QR.
		k.s.log.Warn("wrong keyboard layout?", zap.Error(hint), zap.String("layout", hint.Layout),
			zap.Bool("caps_lock", hint.CapsLock), zap.Strings("fits", hint.Fits))
	}
	k.s.kb.FrameDone()
}
