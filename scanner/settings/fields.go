package settings

import (
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Schema is implemented by a pointer to a settings struct: Fields binds
// each of its devices.yaml keys to the struct field it fills. A value that
// is absent or wrong leaves the field as it was, so the struct's starting
// value holds the defaults.
type Schema interface {
	Fields() []Field
}

// Checker is implemented by settings with rules that span keys (a key that
// only goes with another, a default that depends on a third). Check runs
// after every key was decoded, whether or not some were wrong.
type Checker interface {
	Check(*Section)
}

// Field binds one key to the variable its value goes to. Make it with the
// functions of this package (String, Enum, Int, …).
type Field struct {
	Key string
	// decode reads k.Value into the bound variable and reports whether it
	// holds a usable, non-empty value now; problems go to d.
	decode   func(d *Decoder, k Key, path string) bool
	required string
}

// Required makes the key mandatory: when it is absent or empty, msg is the
// problem ("required: the kassa id registered with the service").
func (f Field) Required(msg string) Field {
	f.required = msg
	return f
}

// Custom binds key to a decoder of its own, for values no other Field
// reads (a catalogue, say). decode reports whether it set a usable value;
// its problems go to d, at the lines of n and what n holds.
func Custom(key string, decode func(d *Decoder, n *Node, path string) bool) Field {
	return Field{Key: key, decode: func(d *Decoder, k Key, path string) bool { return decode(d, k.Value, path) }}
}

// Scalar returns the text of a scalar node. ok is false for null (without a
// problem) and for a mapping, a list or an unknown alias (with one: "want
// <want>, got a list").
func (d *Decoder) Scalar(n *Node, path, want string) (text string, ok bool) {
	switch n.Kind {
	case NullNode:
		return "", false
	case MapNode, ListNode, InvalidNode:
		d.Errorf(n.Line, path, "want %s, got %s", want, n.describe())
		return "", false
	}
	return n.Text, true
}

// scalar is a Field that parses the text of a non-empty scalar; parse's
// error text is the problem.
func scalar[T any](key string, dst *T, want string, parse func(string) (T, error)) Field {
	return Custom(key, func(d *Decoder, n *Node, path string) bool {
		s, ok := d.Scalar(n, path, want)
		if !ok || s == "" {
			return false
		}
		v, err := parse(s)
		if err != nil {
			d.Errorf(n.Line, path, "%v", err)
			return false
		}
		*dst = v
		return true
	})
}

// String binds key to a string. Numbers are taken as written, because a
// USB serial number or a kassa id of digits is still a string.
func String(key string, dst *string) Field {
	return scalar(key, dst, "a string", func(s string) (string, error) { return s, nil })
}

// Text binds key to a string that check accepts; check's error text is
// the problem ("want an https:// URL …").
func Text(key string, dst *string, check func(string) error) Field {
	return scalar(key, dst, "a string", func(s string) (string, error) { return s, check(s) })
}

// Enum binds key to one of names.
func Enum(key string, dst *string, names ...string) Field {
	return enum(key, names, func(i int) { *dst = names[i] })
}

// EnumOf binds key to one of values, each written in devices.yaml as its
// String(). The values are the driver's own table, so the list of what is
// allowed exists once.
func EnumOf[T fmt.Stringer](key string, dst *T, values ...T) Field {
	names := make([]string, len(values))
	for i, v := range values {
		names[i] = v.String()
	}
	return enum(key, names, func(i int) { *dst = values[i] })
}

// Indexed binds key to a value of an enum type whose value i is written
// names[i]: the driver's own name table, which its String method reads too.
func Indexed[T ~int](key string, dst *T, names []string) Field {
	return enum(key, names, func(i int) { *dst = T(i) })
}

// NameOf returns names[v], the String of an Indexed enum value, or
// "pkg.Type(v)" for a value outside the table.
func NameOf[T ~int](names []string, v T) string {
	if v < 0 || int(v) >= len(names) {
		return fmt.Sprintf("%T(%d)", v, int(v))
	}
	return names[v]
}

func enum(key string, names []string, set func(i int)) Field {
	want := "one of " + strings.Join(names, ", ")
	return Custom(key, func(d *Decoder, n *Node, path string) bool {
		s, ok := d.Scalar(n, path, want)
		if !ok {
			return false
		}
		i := slices.Index(names, s)
		if i < 0 {
			d.Errorf(n.Line, path, "want %s, got %q", want, s)
			return false
		}
		set(i)
		return true
	})
}

// integer reads a whole number within [lo, hi].
func (d *Decoder) integer(n *Node, path string, lo, hi int64) (int64, bool) {
	switch n.Kind {
	case NullNode:
		return 0, false
	case IntNode:
		switch {
		case n.TooLarge:
			d.Errorf(n.Line, path, "number %s is too large", n.Text)
		case n.Int < lo || n.Int > hi:
			d.Errorf(n.Line, path, "want a number from %d to %d, got %d", lo, hi, n.Int)
		default:
			return n.Int, true
		}
		return 0, false
	case FloatNode:
		d.Errorf(n.Line, path, "want a whole number, got %s", n.Text)
		return 0, false
	}
	d.Errorf(n.Line, path, "want a number, got %s", n.describe())
	return 0, false
}

// Int binds key to a whole number from lo to hi.
func Int[T ~int | ~int64](key string, dst *T, lo, hi T) Field {
	return Custom(key, func(d *Decoder, n *Node, path string) bool {
		v, ok := d.integer(n, path, int64(lo), int64(hi))
		if ok {
			*dst = T(v)
		}
		return ok
	})
}

// Baud binds the key "baud" to a line speed among allowed, the rates the
// driver's devices are sold with.
func Baud(dst *int, allowed ...int) Field {
	return Custom("baud", func(d *Decoder, n *Node, path string) bool {
		v, ok := d.integer(n, path, 1, 1<<32)
		if !ok {
			return false
		}
		if !slices.Contains(allowed, int(v)) {
			rates := make([]string, len(allowed))
			for i, b := range allowed {
				rates[i] = strconv.Itoa(b)
			}
			d.Errorf(n.Line, path, "want a standard speed (%s), got %d", strings.Join(rates, ", "), v)
			return false
		}
		*dst = int(v)
		return true
	})
}

// Bool binds key to true or false.
func Bool(key string, dst *bool) Field {
	return Custom(key, func(d *Decoder, n *Node, path string) bool {
		switch n.Kind {
		case NullNode:
			return false
		case BoolNode:
			*dst = n.Bool
			return true
		}
		d.Errorf(n.Line, path, "want true or false, got %s", n.describe())
		return false
	})
}

// Duration binds key to a positive Go duration ("30s", "2m", "1h30m") or
// whole days ("90d"). A bare number is refused: its unit would be a guess.
func Duration(key string, dst *time.Duration) Field {
	return DurationUpTo(key, dst, 0)
}

// DurationUpTo is Duration with an upper bound; max 0 means none.
func DurationUpTo(key string, dst *time.Duration, max time.Duration) Field {
	return Custom(key, func(d *Decoder, n *Node, path string) bool {
		if n.Kind == IntNode || n.Kind == FloatNode {
			d.Errorf(n.Line, path, "want a duration with a unit like \"30s\" or \"2m\", got %s", n.Text)
			return false
		}
		s, ok := d.Scalar(n, path, `a duration like "30s"`)
		if !ok {
			return false
		}
		v, err := parseDuration(s)
		switch {
		case err != nil:
			d.Errorf(n.Line, path, "want a duration like \"30s\", \"2m\" or \"90d\", got %q", s)
		case v <= 0:
			d.Errorf(n.Line, path, "want a positive duration, got %q", s)
		case max > 0 && v > max:
			d.Errorf(n.Line, path, "want a duration up to %v, got %q", max, s)
		default:
			*dst = v
			return true
		}
		return false
	})
}

func parseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 16)
		if err != nil {
			return 0, err
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// Hex16 binds key to a 16-bit USB id written in hex: "0c2e", "0x0c2e", or
// an unquoted 1200 that YAML took for a decimal number but that was meant
// as hex.
func Hex16(key string, dst *uint16) Field {
	const want = `4 hex digits like "0c2e"`
	return scalar(key, dst, want, func(s string) (uint16, error) {
		h := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
		v, err := strconv.ParseUint(h, 16, 16)
		if err != nil || len(h) == 0 || len(h) > 4 {
			return 0, fmt.Errorf("want %s, got %q", want, s)
		}
		return uint16(v), nil
	})
}

// HostPort binds key to a TCP address "host:port"; with loopback, the host
// must be a loopback address (a page or an API for this machine only).
func HostPort(key string, dst *string, loopback bool) Field {
	return Text(key, dst, func(addr string) error {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("want host:port like 127.0.0.1:8080, got %q", addr)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("want a port from 1 to 65535, got %q", port)
		}
		if ip := net.ParseIP(host); loopback && host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("must be a loopback address like 127.0.0.1:8080, got %q", addr)
		}
		return nil
	})
}

// DevicePath binds key to an absolute path of a device node.
func DevicePath(key string, dst *string) Field {
	return Text(key, dst, func(p string) error {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("want an absolute device path, got %q", p)
		}
		return nil
	})
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$`)

// Name binds key to a device name: it ends up in /dev/kiosk links, metric
// labels and log fields, so it stays short and plain.
func Name(key string, dst *string) Field {
	return Text(key, dst, func(s string) error {
		if !nameRE.MatchString(s) {
			return fmt.Errorf("want up to 32 letters, digits, - or _, got %q", s)
		}
		return nil
	})
}

// Sub binds key to a section of its own, whose keys s declares.
func Sub(key string, s Schema) Field {
	return Field{Key: key, decode: func(d *Decoder, k Key, path string) bool {
		sec := &Section{Path: path, Line: k.Line}
		fields := s.Fields()
		return d.decodeMap(k.Value, sec, s, fields, func(u Key) { d.unknown(u, join(path, u.Name), keysOf(fields)) })
	}}
}

// List binds key to a list whose entries item decodes; path is "key[i]".
func List(key string, item func(d *Decoder, n *Node, path string)) Field {
	return Custom(key, func(d *Decoder, n *Node, path string) bool {
		switch n.Kind {
		case NullNode:
			return false
		case ListNode:
			for i, it := range n.Items {
				item(d, it, fmt.Sprintf("%s[%d]", path, i))
			}
			return len(n.Items) > 0
		}
		d.Errorf(n.Line, path, "want a list (lines starting with \"- \"), got %s", n.describe())
		return false
	})
}
