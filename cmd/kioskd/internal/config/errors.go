package config

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a configuration file. Each prints as one
// line: "devices.yaml:12: scanners[0].baud: want a number, got \"fast\"".
type Problem struct {
	File  string // file name as given to Parse or Load
	Line  int    // 1-based line; 0 when the problem has no single place
	Field string // dotted path such as "scanners[0].baud"; empty for the file itself
	Msg   string // what is wrong and, where it helps, what to write instead
	Err   error  // underlying error (an fs or YAML error), when there is one
}

// Error formats the problem as one line.
func (p *Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	if p.Field != "" {
		b.WriteString(": ")
		b.WriteString(p.Field)
	}
	b.WriteString(": ")
	b.WriteString(p.Msg)
	return b.String()
}

// Unwrap returns the underlying error, so errors.Is(err, fs.ErrNotExist)
// works on a missing file.
func (p *Problem) Unwrap() error { return p.Err }

// Error is every problem found in one configuration file. Load and Parse
// return it (as *Error) whenever the file is not usable; callers print
// Problems one per line.
type Error struct {
	Problems []*Problem
}

// Error joins the problems, one per line.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes each problem to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p
	}
	return errs
}
