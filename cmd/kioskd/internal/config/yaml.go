package config

import (
	"errors"
	"fmt"
	"math"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"github.com/kioskd/kioskd/scanner/settings"
)

// document parses data as one YAML document and returns its body as a
// settings.Node, with anchors and aliases followed. Syntax errors and what
// the format allows but devices.yaml does not (several documents, merge
// keys) are reported on d; the body is nil when there is nothing to read.
func document(d *settings.Decoder, data []byte) *settings.Node {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		syntax(d, err)
		return nil
	}
	if len(f.Docs) != 1 || f.Docs[0].Body == nil {
		if len(f.Docs) > 1 {
			d.Errorf(line(f.Docs[1]), "", "more than one YAML document; keep one")
		} else {
			d.Errorf(0, "", "the file is empty; see the example devices.yaml")
		}
		return nil
	}
	c := converter{d: d, anchors: map[string]*settings.Node{}}
	return c.node(f.Docs[0].Body, 0, "")
}

// syntax turns a go-yaml error into a problem with its line.
func syntax(d *settings.Decoder, err error) {
	var ye interface {
		GetToken() *token.Token
		GetMessage() string
	}
	if errors.As(err, &ye) {
		at := 0
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			at = tk.Position.Line
		}
		d.Errorf(at, "", "YAML syntax: %s", ye.GetMessage())
		return
	}
	d.Errorf(0, "", "YAML syntax: %v", err)
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

func text(n ast.Node) string {
	if n == nil {
		return ""
	}
	if tk := n.GetToken(); tk != nil {
		return tk.Value
	}
	return ""
}

// converter turns go-yaml's syntax tree into settings.Nodes. An anchor is
// recorded once its value is converted, so an alias can only name what
// came before it: no cycles.
type converter struct {
	d       *settings.Decoder
	anchors map[string]*settings.Node
}

// node converts n; at is the line to use when n has none (a key without a
// value), path names it in problems.
func (c *converter) node(n ast.Node, at int, path string) *settings.Node {
	if l := line(n); l > 0 {
		at = l
	}
	out := &settings.Node{Line: at, Text: text(n)}
	switch v := n.(type) {
	case nil, *ast.NullNode:
		out.Kind = settings.NullNode
	case *ast.TagNode:
		return c.node(v.Value, at, path)
	case *ast.AnchorNode:
		out = c.node(v.Value, at, path)
		c.anchors[text(v.Name)] = out
	case *ast.AliasNode:
		if target, ok := c.anchors[text(v.Value)]; ok {
			return target
		}
		out.Kind, out.Text = settings.InvalidNode, "an unknown alias"
	case *ast.IntegerNode:
		out.Kind = settings.IntNode
		switch iv := v.Value.(type) {
		case int64:
			out.Int = iv
		case uint64:
			out.Int, out.TooLarge = int64(min(iv, math.MaxInt64)), iv > math.MaxInt64
		default:
			out.Kind = settings.StringNode
		}
	case *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		out.Kind = settings.FloatNode
	case *ast.BoolNode:
		out.Kind, out.Bool = settings.BoolNode, v.Value
	case *ast.StringNode:
		out.Kind, out.Text = settings.StringNode, v.Value
	case *ast.LiteralNode:
		out.Kind = settings.StringNode
		if v.Value != nil {
			out.Text = v.Value.Value
		}
	case *ast.MappingNode:
		out.Kind = settings.MapNode
		for _, mv := range v.Values {
			c.pair(out, mv, path)
		}
	case *ast.MappingValueNode:
		out.Kind = settings.MapNode
		c.pair(out, v, path)
	case *ast.SequenceNode:
		out.Kind = settings.ListNode
		for i, item := range v.Values {
			out.Items = append(out.Items, c.node(item, at, fmt.Sprintf("%s[%d]", path, i)))
		}
	default:
		out.Kind = settings.StringNode
	}
	return out
}

func (c *converter) pair(m *settings.Node, mv *ast.MappingValueNode, path string) {
	if mv == nil || mv.Key == nil {
		return
	}
	at := line(mv.Key)
	if _, merge := mv.Key.(*ast.MergeKeyNode); merge {
		c.d.Errorf(at, path, "merge keys (<<) are not supported; repeat the keys")
		return
	}
	k := text(mv.Key)
	p := k
	if path != "" {
		p = path + "." + k
	}
	m.Keys = append(m.Keys, settings.Key{Name: k, Line: at, Value: c.node(mv.Value, at, p)})
}
