package hidreport

import (
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/scanner"
	"github.com/kioskd/kioskd/scanner/frame"
	"github.com/kioskd/kioskd/scanner/settings"
)

// Settings is the devices.yaml entry of a report-reading scanner, shared
// by the scanner/hid and scanner/usb drivers: which USB device, and how
// its reports are decoded. Its keys, defaults and rules are declared here.
type Settings struct {
	Name         string // Code.Source; set by the driver's Opener
	settings.USB        // vid, pid, serial, interface
	Mode         Mode
	Layout       string       // keyboard mode: a name of LayoutNames
	POS          POSConfig    // pos mode
	Frame        frame.Config // keyboard mode: the typed text is framed like a serial line
}

// Defaults are the settings of an entry that gives only vid and pid: any
// serial number and interface, HID POS with Honeywell reports; a keyboard
// types in the us layout.
var Defaults = Settings{USB: settings.USB{Interface: -1}, Layout: "us"}

// Fields declares the keys of a hid or usb scanner.
func (s *Settings) Fields() []settings.Field {
	return append(append(s.USB.Fields(),
		settings.Int("interface", &s.Interface, 0, 255),
		settings.Indexed("mode", &s.Mode, modeNames[:]),
		settings.Enum("layout", &s.Layout, LayoutNames()...),
		settings.EnumOf("report", &s.POS.Format, Honeywell, Newland),
	), s.Frame.Fields()...)
}

// Check requires the USB identity and refuses the keys of the other mode.
func (s *Settings) Check(sec *settings.Section) {
	s.USB.Validate(sec, true)
	if sec.Failed("mode") {
		return // which keys go with it cannot be told
	}
	if s.Mode == POSMode && sec.Has("layout") {
		sec.Errorf("layout", "only used with mode: keyboard")
	}
	if s.Mode == KeyboardMode && sec.Has("report") {
		sec.Errorf("report", "only used with mode: pos")
	}
}

// Opens describes the device for `kioskd udev-rules` and `kioskd check`;
// kind is the node the driver opens (HIDRaw, USBDevice).
func (s Settings) Opens(kind settings.ResourceKind) settings.Resource {
	return settings.Resource{Kind: kind, USB: s.USB, Mode: s.Mode.String(), Keyboard: s.Mode == KeyboardMode}
}

// Mode is how a scanner sends its codes over USB.
type Mode int

// Modes of a report-reading scanner, as named in devices.yaml.
const (
	POSMode      Mode = iota // HID POS reports, usage page 0x8C: fast
	KeyboardMode             // a boot keyboard typing the code: slow
)

var modeNames = [...]string{"pos", "keyboard"}

// String returns "pos" or "keyboard".
func (m Mode) String() string { return settings.NameOf(modeNames[:], m) }

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
	if s.Mode == KeyboardMode {
		ss.kb, _ = NewKeyboard(s.Layout) // one of LayoutNames, by Fields
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
