package settings

import "strconv"

// Kind is what a Node holds.
type Kind int

// Kinds of Node.
const (
	NullNode    Kind = iota // a key with nothing after it
	StringNode              // a scalar that is none of the below; Text holds it
	IntNode                 // a whole number: Int holds it (TooLarge when it did not fit)
	FloatNode               // a number with a fraction or an exponent
	BoolNode                // true or false: Bool holds it
	MapNode                 // keys and values: Keys
	ListNode                // a sequence: Items
	InvalidNode             // not a value at all, e.g. an unknown alias; Text says what
)

// Node is one value of a configuration file with the line it stands on. It
// is format-neutral: the loader builds it from YAML (anchors and aliases
// already followed), and tests can build it by hand.
type Node struct {
	Kind     Kind
	Line     int    // 1-based; 0 when not known
	Text     string // a scalar as written ("0c2e", "115200", "true")
	Int      int64
	TooLarge bool // an Int beyond int64
	Bool     bool
	Keys     []Key   // Map, in file order
	Items    []*Node // List
}

// Key is one key of a Map with the line it stands on.
type Key struct {
	Name  string
	Line  int
	Value *Node
}

// describe says what n is, for "want …, got …" messages.
func (n *Node) describe() string {
	switch n.Kind {
	case MapNode:
		return "a mapping"
	case ListNode:
		return "a list"
	case NullNode:
		return "nothing"
	case InvalidNode:
		return n.Text
	}
	return strconv.Quote(n.Text)
}

// key returns the key named name, if n is a Map that has it.
func (n *Node) key(name string) (Key, bool) {
	for _, k := range n.Keys {
		if k.Name == name {
			return k, true
		}
	}
	return Key{}, false
}

// Flat returns a mapping of scalars, one key a line from line 1, typed the
// way a YAML loader types an unquoted `key: value`: whole numbers are
// IntNode, other numbers FloatNode, true and false BoolNode, the rest
// StringNode. pairs alternate
// key and value. It is for tests of a driver's settings.
func Flat(pairs ...string) *Node {
	m := &Node{Kind: MapNode, Line: 1}
	for i := 0; i+1 < len(pairs); i += 2 {
		line := i/2 + 1
		v := &Node{Kind: StringNode, Line: line, Text: pairs[i+1]}
		if n, err := strconv.ParseInt(v.Text, 10, 64); err == nil {
			v.Kind, v.Int = IntNode, n
		} else if _, err := strconv.ParseFloat(v.Text, 64); err == nil {
			v.Kind = FloatNode
		} else if v.Text == "true" || v.Text == "false" {
			v.Kind, v.Bool = BoolNode, v.Text == "true"
		}
		m.Keys = append(m.Keys, Key{Name: pairs[i], Line: line, Value: v})
	}
	return m
}
