package qibixx

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/kioskd/kioskd/payment/vending"
)

// Kind is what an adapter → host line reports.
type Kind int

// Line kinds. The provenance of each spelling is in doc.go.
const (
	KindEnabled     Kind = iota + 1 // c,1 / c,0: the cashless slave was switched on / off (Line.On)
	KindSetOK                       // c,SET,OK: a C,SETCONF was accepted
	KindStatus                      // c,STATUS,INACTIVE|DISABLED|ENABLED|IDLE[,<funds>]
	KindSlave                       // c,STATUS,ONLINE|OFFLINE (Line.On): the slave's own state, some firmware
	KindVendRequest                 // c,STATUS,VEND,<amount>,<item>
	KindVendSuccess                 // c,VEND,SUCCESS
	KindVendFailure                 // c,ERR,VEND 3: the VMC reports a failed vend
	KindError                       // c,ERR,<text>: any other error; never a vend result
	KindAck                         // r,ACK: the VMC sent the slave a command
	KindNack                        // r,NACK
	KindVersion                     // v,<version>,<cpu id>: answer to V, the liveness probe
	KindOtherMode                   // d,… x,… m,… f,… l,… h,…: another mode of the adapter, not ours
)

var kindNames = [...]string{"", "enabled", "set_ok", "status", "slave", "vend_request", "vend_success",
	"vend_failure", "error", "ack", "nack", "version", "other_mode"}

// String returns the kind's label.
func (k Kind) String() string {
	if k <= 0 || int(k) >= len(kindNames) {
		return fmt.Sprintf("Kind(%d)", int(k))
	}
	return kindNames[k]
}

// Line is one parsed adapter → host line.
type Line struct {
	Kind   Kind
	Reader vending.ReaderState // KindStatus, KindVendRequest (ReaderVend)
	// Amount is the decimal amount as the adapter wrote it (syntax checked,
	// see Money.Kopecks): the price of KindVendRequest, the funds of a
	// KindStatus IDLE line ("" when the line has none).
	Amount string
	Item   int    // KindVendRequest: the VMC's item number, 0–65535
	On     bool   // KindEnabled, KindSlave
	Text   string // KindError, KindVendFailure: the error, unquoted; KindVersion: the version
}

// Errors wrapped by *LineError.
var (
	// ErrUnknownLine: a line this package does not know. It is logged and
	// ignored, never read as a vend result.
	ErrUnknownLine = errors.New("qibixx: unknown line")
	// ErrMalformedLine: a known line with missing, extra or invalid fields,
	// or with bytes that are not printable ASCII (noise, a truncated line).
	ErrMalformedLine = errors.New("qibixx: malformed line")
)

// LineError reports a line that was not understood.
type LineError struct {
	Kind   error  // ErrUnknownLine or ErrMalformedLine
	Reason string // what is wrong
	Line   string // the line, quoted and cut to 64 bytes for logs
	key    string
}

// Error says what was wrong with which line.
func (e *LineError) Error() string {
	return fmt.Sprintf("%v %s: %s", e.Kind, e.Line, e.Reason)
}

// Unwrap returns Kind.
func (e *LineError) Unwrap() error { return e.Kind }

// Key groups errors of one kind for logging once: the kind, the reason and
// the line's first two fields.
func (e *LineError) Key() string { return e.key }

// Field limits. The MDB price is at most 32 bits of money units, whose
// decimal form has at most 10 digits; the adapter prints at most 3 decimals.
const (
	maxAmountDigits   = 10
	maxAmountDecimals = 6
	maxItem           = 65535
)

// ParseLine parses one adapter → host line without its line ending. Errors
// are *LineError wrapping ErrUnknownLine or ErrMalformedLine.
func ParseLine(b []byte) (Line, error) {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			e := lineErr(b, ErrMalformedLine, fmt.Sprintf("byte 0x%02x is not printable ASCII", c))
			e.key = "noise" // one key for all noise, whatever its bytes
			return Line{}, e
		}
	}
	f := strings.Split(string(b), ",")
	switch f[0] {
	case "c":
		return parseCashless(b, f)
	case "r":
		switch {
		case len(f) == 2 && f[1] == "ACK":
			return Line{Kind: KindAck}, nil
		case len(f) == 2 && f[1] == "NACK":
			return Line{Kind: KindNack}, nil
		}
	case "v":
		if len(f) >= 2 && f[1] != "" {
			return Line{Kind: KindVersion, Text: f[1]}, nil
		}
		return Line{}, lineErr(b, ErrMalformedLine, "want v,<version>,<cpu id>")
	case "d", "x", "m", "f", "l", "h":
		return Line{Kind: KindOtherMode}, nil
	}
	return Line{}, lineErr(b, ErrUnknownLine, "not a line of the cashless slave")
}

func parseCashless(b []byte, f []string) (Line, error) {
	if len(f) < 2 {
		return Line{}, lineErr(b, ErrMalformedLine, "no fields after c")
	}
	malformed := func(want string) (Line, error) {
		return Line{}, lineErr(b, ErrMalformedLine, "want "+want)
	}
	switch f[1] {
	case "0", "1":
		if len(f) != 2 {
			return malformed("c,0 or c,1")
		}
		return Line{Kind: KindEnabled, On: f[1] == "1"}, nil
	case "SET":
		if len(f) != 3 || f[2] != "OK" {
			return malformed("c,SET,OK")
		}
		return Line{Kind: KindSetOK}, nil
	case "VEND":
		if len(f) != 3 || f[2] != "SUCCESS" {
			return malformed("c,VEND,SUCCESS")
		}
		return Line{Kind: KindVendSuccess}, nil
	case "ERR":
		if len(f) < 3 {
			return malformed("c,ERR,<text>")
		}
		text := strings.Join(f[2:], ",")
		if len(text) >= 2 && text[0] == '"' && text[len(text)-1] == '"' {
			text = text[1 : len(text)-1]
		}
		if text == "" {
			return malformed("c,ERR,<text>")
		}
		if text == "VEND 3" {
			return Line{Kind: KindVendFailure, Text: text}, nil
		}
		return Line{Kind: KindError, Text: text}, nil
	case "STATUS":
		return parseStatus(b, f, malformed)
	}
	return Line{}, lineErr(b, ErrUnknownLine, "unknown c line")
}

func parseStatus(b []byte, f []string, malformed func(string) (Line, error)) (Line, error) {
	if len(f) < 3 {
		return malformed("c,STATUS,<state>")
	}
	simple := map[string]vending.ReaderState{
		"INACTIVE": vending.ReaderInactive,
		"DISABLED": vending.ReaderDisabled,
		"ENABLED":  vending.ReaderEnabled,
	}
	if st, ok := simple[f[2]]; ok {
		if len(f) != 3 {
			return malformed("c,STATUS," + f[2] + " without further fields")
		}
		return Line{Kind: KindStatus, Reader: st}, nil
	}
	switch f[2] {
	case "IDLE":
		switch {
		case len(f) == 3:
			return Line{Kind: KindStatus, Reader: vending.ReaderSessionIdle}, nil
		case len(f) == 4 && validAmount(f[3]):
			return Line{Kind: KindStatus, Reader: vending.ReaderSessionIdle, Amount: f[3]}, nil
		}
		return malformed("c,STATUS,IDLE[,<funds>]")
	case "VEND":
		if len(f) != 5 || !validAmount(f[3]) {
			return malformed("c,STATUS,VEND,<amount>,<item>")
		}
		item, ok := parseItem(f[4])
		if !ok {
			return malformed("c,STATUS,VEND,<amount>,<item> with item 0–65535")
		}
		return Line{Kind: KindVendRequest, Reader: vending.ReaderVend, Amount: f[3], Item: item}, nil
	case "ONLINE", "OFFLINE":
		if len(f) != 3 {
			return malformed("c,STATUS," + f[2] + " without further fields")
		}
		return Line{Kind: KindSlave, On: f[2] == "ONLINE"}, nil
	}
	return Line{}, lineErr(b, ErrUnknownLine, "unknown status")
}

// validAmount accepts digits with an optional decimal point: 1, 1.5, 1.50.
func validAmount(s string) bool {
	whole, frac, dot := strings.Cut(s, ".")
	if !digits(whole, maxAmountDigits) {
		return false
	}
	return !dot || digits(frac, maxAmountDecimals)
}

func digits(s string, most int) bool {
	if s == "" || len(s) > most {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func parseItem(s string) (int, bool) {
	if !digits(s, 5) {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n <= maxItem
}

// lineErr builds a LineError whose key keeps distinct problems apart
// without letting a stream of varying garbage make endless keys: the key
// has the first two fields only, cut short.
func lineErr(b []byte, kind error, reason string) *LineError {
	shown := b
	if len(shown) > 64 {
		shown = shown[:64]
	}
	head := string(b)
	if i := strings.IndexByte(head, ','); i >= 0 {
		if j := strings.IndexByte(head[i+1:], ','); j >= 0 {
			head = head[:i+1+j]
		}
	}
	if len(head) > 16 {
		head = head[:16]
	}
	return &LineError{Kind: kind, Reason: reason, Line: strconv.Quote(string(shown)),
		key: fmt.Sprintf("%v|%s|%q", kind, reason, head)}
}
