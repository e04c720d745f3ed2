package settings

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a value: where it is and what to write
// instead.
type Problem struct {
	Line int    // 1-based; 0 when the problem has no single place
	Path string // dotted path such as "scanners[0].baud"
	Msg  string
	// Missing is set when a required key or section is absent, so a tool
	// that needs only part of a file (`kioskd udev-rules`) can let it pass.
	Missing bool
}

// Decoder reads Nodes through Fields and collects every problem instead of
// stopping at the first one. The zero value is ready to use.
type Decoder struct {
	problems []Problem
}

// Errorf records a problem at line for path.
func (d *Decoder) Errorf(line int, path, format string, args ...any) {
	d.problems = append(d.problems, Problem{Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Problems returns what was found so far, in the order it was found.
func (d *Decoder) Problems() []Problem { return d.problems }

// Decode reads n, which must be a mapping (or nothing), into s: each key
// through its Field, then s.Check when s is a Checker. Unknown keys are
// problems with a "did you mean" for the likely typo. path and line name
// the section in messages ("" and the document's first line for a whole
// file).
func (d *Decoder) Decode(n *Node, path string, line int, s Schema) {
	sec := &Section{d: d, Path: path, Line: line}
	fields := s.Fields()
	d.decodeMap(n, sec, s, fields, func(k Key) { d.unknown(k, join(path, k.Name), keysOf(fields)) })
}

// Section is the mapping being decoded, as a Checker sees it: it tells
// which keys were given and reports problems at their lines.
type Section struct {
	d      *Decoder
	Path   string // "scanners[0]", "kassa"
	Line   int    // line of the section's key, or of a list entry's first key
	Name   string // a Registry entry's name (see Registry); "" elsewhere
	Driver string // a Registry entry's driver; "" elsewhere

	given  map[string]int  // key → line
	failed map[string]bool // keys whose value was reported
}

// Has reports whether the key was written in the section, whatever its
// value.
func (s *Section) Has(key string) bool {
	_, ok := s.given[key]
	return ok
}

// Failed reports whether a problem was already reported for the key's
// value, so a rule between keys does not pile a second message on it.
func (s *Section) Failed(key string) bool { return s.failed[key] }

// Errorf reports a problem with key (the section itself when key is ""),
// at the key's line when it was given and at the section's line otherwise.
func (s *Section) Errorf(key, format string, args ...any) {
	line, ok := s.given[key]
	if !ok || key == "" {
		line = s.Line
	}
	s.d.Errorf(line, join(s.Path, key), format, args...)
}

// decodeMap decodes the keys of n through fields and runs the required
// checks and s's Check. unknown is called for each key no field has.
func (d *Decoder) decodeMap(n *Node, sec *Section, s Schema, fields []Field, unknown func(Key)) bool {
	switch n.Kind {
	case NullNode:
	case MapNode:
	default:
		d.Errorf(n.Line, sec.Path, "want a mapping of keys, got %s", n.describe())
		return false
	}
	sec.d = d
	sec.given = make(map[string]int, len(n.Keys))
	sec.failed = map[string]bool{}
	byKey := make(map[string]int, len(fields))
	for i, f := range fields {
		byKey[f.Key] = i
	}
	set := make([]bool, len(fields))
	for _, k := range n.Keys {
		sec.given[k.Name] = k.Line
		i, ok := byKey[k.Name]
		if !ok {
			unknown(k)
			continue
		}
		before := len(d.problems)
		set[i] = fields[i].decode(d, k, join(sec.Path, k.Name))
		sec.failed[k.Name] = len(d.problems) > before
	}
	for i, f := range fields {
		if f.required == "" || set[i] || sec.failed[f.Key] {
			continue
		}
		line, given := sec.given[f.Key]
		if !given {
			line = sec.Line
		}
		d.problems = append(d.problems, Problem{Line: line, Path: join(sec.Path, f.Key), Msg: f.required, Missing: !given})
	}
	if c, ok := s.(Checker); ok {
		c.Check(sec)
	}
	return true
}

// unknown reports a key the schema does not have, suggesting the closest
// known one because most unknown keys are typos.
func (d *Decoder) unknown(k Key, path string, known []string) {
	msg := "unknown key"
	if s := closest(k.Name, known); s != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", s)
	}
	d.Errorf(k.Line, path, "%s", msg)
}

// closest returns the known key within edit distance 2 of k, if any.
func closest(k string, known []string) string {
	best, bestD := "", 3
	for _, c := range known {
		if dist := editDistance(k, c); dist < bestD {
			best, bestD = c, dist
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func join(path, key string) string {
	switch {
	case key == "":
		return path
	case path == "":
		return key
	}
	return path + "." + key
}

func keysOf(fields []Field) []string {
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.Key
	}
	return keys
}

// orList writes names as "a, b or c".
func orList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
