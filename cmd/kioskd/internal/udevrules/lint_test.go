package udevrules

import (
	"fmt"
	"regexp"
	"strings"
)

// lint is a checker for udev rules files after udev(7), for machines whose
// udevadm has no `verify`. It checks each rule's syntax (KEY[{attr}]OP"value"
// separated by commas), that every key is known and used with an operator
// it accepts, the values of MODE and of substitutions, and that every GOTO
// has its LABEL further down.
func lint(data []byte) []string {
	var errs []string
	var gotos []struct {
		line  int
		label string
	}
	labels := map[string]int{}
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		no := i + 1
		text := lines[i]
		for strings.HasSuffix(text, "\\") && i+1 < len(lines) { // continuation
			i++
			text = strings.TrimSuffix(text, "\\") + lines[i]
		}
		text = strings.TrimSpace(text)
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		pairs, err := splitRule(text)
		if err != nil {
			errs = append(errs, fmt.Sprintf("line %d: %v", no, err))
			continue
		}
		hasMatch, hasAction := false, false
		for _, p := range pairs {
			if err := checkPair(p); err != nil {
				errs = append(errs, fmt.Sprintf("line %d: %s: %v", no, p.key, err))
			}
			if p.op == "==" || p.op == "!=" {
				hasMatch = true
			} else {
				hasAction = true
			}
			switch p.key {
			case "GOTO":
				gotos = append(gotos, struct {
					line  int
					label string
				}{no, p.value})
			case "LABEL":
				if _, dup := labels[p.value]; dup {
					errs = append(errs, fmt.Sprintf("line %d: LABEL %q defined twice", no, p.value))
				}
				labels[p.value] = no
			}
		}
		if !hasAction && hasMatch {
			errs = append(errs, fmt.Sprintf("line %d: rule only matches and does nothing", no))
		}
	}
	for _, g := range gotos {
		if at, ok := labels[g.label]; !ok || at < g.line {
			errs = append(errs, fmt.Sprintf("line %d: GOTO %q has no LABEL after it", g.line, g.label))
		}
	}
	return errs
}

type pair struct{ key, attr, op, value string }

var pairRE = regexp.MustCompile(`^([A-Z_]+)(\{([^{}]+)\})?(==|!=|\+=|-=|:=|=)"`)

// splitRule splits a rule into its key/value pairs.
func splitRule(s string) ([]pair, error) {
	var out []pair
	for {
		m := pairRE.FindStringSubmatch(s)
		if m == nil {
			return nil, fmt.Errorf("cannot parse %q: want KEY==\"value\" or KEY=\"value\"", s)
		}
		s = s[len(m[0]):]
		end := strings.IndexByte(s, '"')
		if end < 0 {
			return nil, fmt.Errorf("unterminated value for %s", m[1])
		}
		out = append(out, pair{key: m[1], attr: m[3], op: m[4], value: s[:end]})
		s = strings.TrimLeft(s[end+1:], " \t")
		if s == "" {
			return out, nil
		}
		if s[0] != ',' {
			return nil, fmt.Errorf("want a comma after %s, got %q", m[1], s)
		}
		s = strings.TrimLeft(s[1:], " \t")
		if s == "" {
			return nil, fmt.Errorf("trailing comma")
		}
	}
}

const (
	match  = 1 << iota // == !=
	assign             // = (and := where allowed)
	add                // += -=
)

// keys lists each key's operators and whether it takes {attr}, from udev(7).
var keys = map[string]struct {
	ops  int
	attr bool
}{
	"ACTION": {match, false}, "DEVPATH": {match, false}, "KERNEL": {match, false}, "KERNELS": {match, false},
	"SUBSYSTEM": {match, false}, "SUBSYSTEMS": {match, false}, "DRIVER": {match, false}, "DRIVERS": {match, false},
	"ATTRS": {match, true}, "TAGS": {match, false}, "TEST": {match, true}, "PROGRAM": {match, false},
	"RESULT": {match, false}, "CONST": {match, true},
	"ATTR": {match | assign, true}, "SYSCTL": {match | assign, true}, "ENV": {match | assign | add, true},
	"TAG": {match | assign | add, false}, "SYMLINK": {match | assign | add, false}, "NAME": {match | assign, false},
	"OWNER": {assign, false}, "GROUP": {assign, false}, "MODE": {assign, false}, "SECLABEL": {assign | add, true},
	"RUN": {assign | add, true}, "LABEL": {assign, false}, "GOTO": {assign, false}, "IMPORT": {match | assign, true},
	"OPTIONS": {assign | add, false},
}

var (
	modeRE  = regexp.MustCompile(`^0?[0-7]{3}$`)
	substRE = regexp.MustCompile(`\$(kernel|number|devpath|id|driver|major|minor|result|parent|name|links|root|sys|devnode|\$)|\$(attr|env)\{[^{}]+\}|%[knpbMmcPrSNE%]|%[sE]\{[^{}]+\}`)
)

func checkPair(p pair) error {
	k, ok := keys[p.key]
	if !ok {
		return fmt.Errorf("unknown key")
	}
	if k.attr != (p.attr != "") && p.key != "RUN" && p.key != "IMPORT" {
		if k.attr {
			return fmt.Errorf("needs {attribute}")
		}
		return fmt.Errorf("takes no {attribute}")
	}
	var kind int
	switch p.op {
	case "==", "!=":
		kind = match
	case "=", ":=":
		kind = assign
	case "+=", "-=":
		kind = add
	}
	if k.ops&kind == 0 {
		return fmt.Errorf("operator %s not allowed", p.op)
	}
	if p.key == "IMPORT" && kind == assign && !strings.Contains("program builtin file db cmdline parent", p.attr) {
		return fmt.Errorf("unknown import type %q", p.attr)
	}
	if p.key == "MODE" && !modeRE.MatchString(p.value) {
		return fmt.Errorf("mode %q is not octal", p.value)
	}
	// Substitutions: every $ or % must start a known one.
	rest := substRE.ReplaceAllString(p.value, "")
	if kind != match && (strings.Contains(rest, "$") || (strings.Contains(rest, "%") && p.key != "RUN")) {
		return fmt.Errorf("bad substitution in %q", p.value)
	}
	return nil
}
