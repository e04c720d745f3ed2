package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// decoder walks the YAML tree and collects problems instead of stopping at
// the first one.
type decoder struct {
	file    string
	probs   []*Problem
	anchors map[string]ast.Node
}

// entry is one key of a mapping, with its dotted path for messages.
type entry struct {
	key   string
	path  string
	keyN  ast.Node
	value ast.Node
}

func line(n ast.Node) int {
	if n == nil {
		return 0
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Line
	}
	return 0
}

func (d *decoder) problem(at int, field, format string, args ...any) {
	d.probs = append(d.probs, &Problem{File: d.file, Line: at, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// resolve looks through tags, anchors and aliases to the node that holds the
// value, so devices.yaml may reuse blocks with &anchor / *alias.
func (d *decoder) resolve(n ast.Node) ast.Node {
	for range 16 { // bounded: an alias chain cannot loop forever
		switch v := n.(type) {
		case *ast.TagNode:
			n = v.Value
		case *ast.AnchorNode:
			if v.Name != nil {
				d.anchors[v.Name.GetToken().Value] = v.Value
			}
			n = v.Value
		case *ast.AliasNode:
			name := ""
			if v.Value != nil {
				name = v.Value.GetToken().Value
			}
			target, ok := d.anchors[name]
			if !ok {
				return v // reported by the caller as an unknown alias
			}
			n = target
		default:
			return n
		}
	}
	return n
}

func describe(n ast.Node) string {
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.NullNode:
		return "nothing"
	case *ast.AliasNode:
		return "an unknown alias"
	}
	if tk := n.GetToken(); tk != nil {
		return strconv.Quote(tk.Value)
	}
	return n.Type().String()
}

// mapping returns the keys of a mapping node in file order. A null node (a
// key with nothing under it) is an empty mapping.
func (d *decoder) mapping(n ast.Node, path string) []entry {
	n = d.resolve(n)
	var values []*ast.MappingValueNode
	switch v := n.(type) {
	case nil, *ast.NullNode:
		return nil
	case *ast.MappingNode:
		values = v.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{v}
	default:
		d.problem(line(n), path, "want a mapping of keys, got %s", describe(n))
		return nil
	}
	out := make([]entry, 0, len(values))
	for _, mv := range values {
		if _, ok := mv.Key.(*ast.MergeKeyNode); ok {
			d.problem(line(mv.Key), path, "merge keys (<<) are not supported; repeat the keys")
			continue
		}
		k := mv.Key.GetToken().Value
		p := k
		if path != "" {
			p = path + "." + k
		}
		out = append(out, entry{key: k, path: p, keyN: mv.Key, value: mv.Value})
	}
	return out
}

// unknown reports a key the schema does not have, suggesting the closest
// known one because most unknown keys are typos.
func (d *decoder) unknown(e entry, known ...string) {
	msg := "unknown key"
	if s := closest(e.key, known); s != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", s)
	}
	d.problem(line(e.keyN), e.path, "%s", msg)
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

func (d *decoder) sequence(e entry) []ast.Node {
	n := d.resolve(e.value)
	switch v := n.(type) {
	case nil, *ast.NullNode:
		return nil
	case *ast.SequenceNode:
		return v.Values
	}
	d.problem(line(n), e.path, "want a list (lines starting with \"- \"), got %s", describe(n))
	return nil
}

// scalar returns the source text of a scalar value. ok is false (and a
// problem recorded) for mappings, lists and unknown aliases.
func (d *decoder) scalar(e entry, want string) (s string, null, ok bool) {
	n := d.resolve(e.value)
	switch n.(type) {
	case nil, *ast.NullNode:
		return "", true, true
	case *ast.MappingNode, *ast.MappingValueNode, *ast.SequenceNode, *ast.AliasNode:
		d.problem(line(n), e.path, "want %s, got %s", want, describe(n))
		return "", false, false
	}
	return n.GetToken().Value, false, true
}

// str reads a string. Numbers are taken as written, because a USB serial
// number or a kassa id of digits is still a string to us.
func (d *decoder) str(e entry) string {
	s, _, _ := d.scalar(e, "a string")
	return s
}

// enum reads a string that must be one of allowed.
func (d *decoder) enum(e entry, allowed ...string) string {
	s, null, ok := d.scalar(e, "one of "+strings.Join(allowed, ", "))
	if !ok || null {
		return ""
	}
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	d.problem(line(e.value), e.path, "want one of %s, got %q", strings.Join(allowed, ", "), s)
	return ""
}

// integer reads a whole number within [lo, hi]. ok is false when the key is
// null or wrong, so the caller keeps its default.
func (d *decoder) integer(e entry, lo, hi int64) (int64, bool) {
	n := d.resolve(e.value)
	switch v := n.(type) {
	case nil, *ast.NullNode:
		return 0, false
	case *ast.IntegerNode:
		var x int64
		switch iv := v.Value.(type) {
		case int64:
			x = iv
		case uint64:
			if iv > math.MaxInt64 {
				d.problem(line(n), e.path, "number %s is too large", v.GetToken().Value)
				return 0, false
			}
			x = int64(iv)
		default:
			d.problem(line(n), e.path, "want a number, got %q", v.GetToken().Value)
			return 0, false
		}
		if x < lo || x > hi {
			d.problem(line(n), e.path, "want a number from %d to %d, got %d", lo, hi, x)
			return 0, false
		}
		return x, true
	case *ast.FloatNode:
		d.problem(line(n), e.path, "want a whole number, got %s", v.GetToken().Value)
		return 0, false
	}
	d.problem(line(n), e.path, "want a number, got %s", describe(n))
	return 0, false
}

func (d *decoder) boolean(e entry) (bool, bool) {
	n := d.resolve(e.value)
	switch v := n.(type) {
	case nil, *ast.NullNode:
		return false, false
	case *ast.BoolNode:
		return v.Value, true
	}
	d.problem(line(n), e.path, "want true or false, got %s", describe(n))
	return false, false
}

// duration reads a Go duration ("30s", "2m", "1h30m") or whole days ("90d").
// A bare number is refused: its unit would be a guess.
func (d *decoder) duration(e entry) (time.Duration, bool) {
	n := d.resolve(e.value)
	switch n.(type) {
	case nil, *ast.NullNode:
		return 0, false
	case *ast.IntegerNode, *ast.FloatNode:
		d.problem(line(n), e.path, "want a duration with a unit like \"30s\" or \"2m\", got %s", n.GetToken().Value)
		return 0, false
	}
	s, _, ok := d.scalar(e, "a duration like \"30s\"")
	if !ok {
		return 0, false
	}
	dur, err := parseDuration(s)
	if err != nil {
		d.problem(line(n), e.path, "want a duration like \"30s\", \"2m\" or \"90d\", got %q", s)
		return 0, false
	}
	if dur <= 0 {
		d.problem(line(n), e.path, "want a positive duration, got %q", s)
		return 0, false
	}
	return dur, true
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

// hex16 reads a USB id written as hex ("0c2e", "0x0c2e", or an unquoted
// 1200 that YAML took for a decimal number but the user meant as hex).
func (d *decoder) hex16(e entry) (uint16, bool) {
	s, null, ok := d.scalar(e, "4 hex digits like \"0c2e\"")
	if !ok || null {
		return 0, false
	}
	h := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	v, err := strconv.ParseUint(h, 16, 16)
	if err != nil || len(h) == 0 || len(h) > 4 {
		d.problem(line(e.value), e.path, "want 4 hex digits like \"0c2e\", got %q", s)
		return 0, false
	}
	return uint16(v), true
}
