package command

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
)

// tmpl is one template of the study: an argument, an environment value or
// a file. It executes over the point's parameters (by name) and the
// reserved names work, study_dir and root.
type tmpl struct {
	src    string
	t      *template.Template
	static bool   // no actions: the text is the result
	parts  []part // text and plain {{.name}} only: rendered without reflection
}

// part is a piece of a simple template: text, or the value of a name.
type part struct {
	text, name string
}

// newTmpl parses text. Functions available in templates:
//
//	json X      X encoded as JSON (strings quoted and escaped)
//	path X      X made absolute against the study folder ("" stays "")
//	add, sub, mul, div X Y   arithmetic; integers stay integers (div truncates)
func newTmpl(name, text, studyDir string) (*tmpl, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(funcs(studyDir)).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("template: %v", strings.TrimPrefix(err.Error(), "template: "))
	}
	return &tmpl{src: text, t: t, static: !strings.Contains(text, "{{"), parts: simpleParts(t)}, nil
}

// simpleParts returns the pieces of a template made of text and {{.name}}
// actions only, or nil.
func simpleParts(t *template.Template) []part {
	if len(t.Templates()) != 1 || t.Tree == nil {
		return nil
	}
	var parts []part
	for _, n := range t.Tree.Root.Nodes {
		switch x := n.(type) {
		case *parse.TextNode:
			parts = append(parts, part{text: string(x.Text)})
		case *parse.ActionNode:
			p := x.Pipe
			if len(p.Decl) > 0 || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
				return nil
			}
			f, ok := p.Cmds[0].Args[0].(*parse.FieldNode)
			if !ok || len(f.Ident) != 1 {
				return nil
			}
			parts = append(parts, part{name: f.Ident[0]})
		default:
			return nil
		}
	}
	return parts
}

// exec renders the template into b.
func (t *tmpl) exec(b *strings.Builder, data map[string]any) error {
	if t.static {
		b.WriteString(t.src)
		return nil
	}
	if t.parts != nil {
		for _, p := range t.parts {
			if p.name == "" {
				b.WriteString(p.text)
				continue
			}
			v, ok := data[p.name]
			if !ok {
				return fmt.Errorf("template %q: no value for %s", t.src, p.name)
			}
			// as text/template prints a value
			switch x := v.(type) {
			case string:
				b.WriteString(x)
			case int64:
				b.WriteString(strconv.FormatInt(x, 10))
			default:
				fmt.Fprint(b, x)
			}
		}
		return nil
	}
	if err := t.t.Execute(b, data); err != nil {
		return fmt.Errorf("template %q: %v", t.src, err)
	}
	return nil
}

// render returns the template's text for a point.
func (t *tmpl) render(data map[string]any) (string, error) {
	if t.static {
		return t.src, nil
	}
	var b strings.Builder
	err := t.exec(&b, data)
	return b.String(), err
}

// check reports references to names that are neither parameters nor
// reserved names, so a typo fails when the study loads, not per point.
func (t *tmpl) check(known map[string]bool) error {
	var unknown []string
	var walk func(n parse.Node, top bool)
	ref := func(name string) {
		if !known[name] && !slices.Contains(unknown, name) {
			unknown = append(unknown, name)
		}
	}
	walk = func(n parse.Node, top bool) {
		switch x := n.(type) {
		case nil:
		case *parse.ListNode:
			if x == nil {
				return
			}
			for _, c := range x.Nodes {
				walk(c, top)
			}
		case *parse.ActionNode:
			walk(x.Pipe, top)
		case *parse.PipeNode:
			if x == nil {
				return
			}
			for _, c := range x.Cmds {
				walk(c, top)
			}
		case *parse.CommandNode:
			for _, a := range x.Args {
				walk(a, top)
			}
		case *parse.FieldNode:
			if top && len(x.Ident) > 0 {
				ref(x.Ident[0])
			}
		case *parse.VariableNode:
			if len(x.Ident) > 1 && x.Ident[0] == "$" {
				ref(x.Ident[1])
			}
		case *parse.ChainNode:
			walk(x.Node, top)
		case *parse.IfNode:
			walk(x.Pipe, top)
			walk(x.List, top)
			walk(x.ElseList, top)
		case *parse.RangeNode:
			walk(x.Pipe, top)
			walk(x.List, false) // dot is the element inside
			walk(x.ElseList, top)
		case *parse.WithNode:
			walk(x.Pipe, top)
			walk(x.List, false)
			walk(x.ElseList, top)
		case *parse.TemplateNode:
			walk(x.Pipe, top)
		}
	}
	for _, tt := range t.t.Templates() {
		if tt.Tree != nil {
			walk(tt.Tree.Root, true)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	names := make([]string, 0, len(known))
	for k := range known {
		names = append(names, k)
	}
	sort.Strings(names)
	return fmt.Errorf("template %q uses %s, which is not a parameter (known: %s)", t.src, strings.Join(unknown, ", "), strings.Join(names, ", "))
}

func funcs(studyDir string) template.FuncMap {
	return template.FuncMap{
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
		"path": func(v any) string {
			s := fmt.Sprint(v)
			if s == "" || filepath.IsAbs(s) {
				return s
			}
			return filepath.Join(studyDir, s)
		},
		"add": arith(func(a, b int64) (int64, error) { return a + b, nil }, func(a, b float64) float64 { return a + b }),
		"sub": arith(func(a, b int64) (int64, error) { return a - b, nil }, func(a, b float64) float64 { return a - b }),
		"mul": arith(func(a, b int64) (int64, error) { return a * b, nil }, func(a, b float64) float64 { return a * b }),
		"div": arith(func(a, b int64) (int64, error) {
			if b == 0 {
				return 0, fmt.Errorf("division by zero")
			}
			return a / b, nil
		}, func(a, b float64) float64 { return a / b }),
	}
}

// arith applies an integer operation when both operands are integers, else
// the float one.
func arith(i func(a, b int64) (int64, error), f func(a, b float64) float64) func(a, b any) (any, error) {
	return func(a, b any) (any, error) {
		ai, aInt := toInt(a)
		bi, bInt := toInt(b)
		if aInt && bInt {
			return i(ai, bi)
		}
		af, ok1 := toFloat(a)
		bf, ok2 := toFloat(b)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("arithmetic on non-numbers %v and %v", a, b)
		}
		r := f(af, bf)
		if math.IsNaN(r) || math.IsInf(r, 0) {
			return nil, fmt.Errorf("arithmetic gives %v", r)
		}
		return r, nil
	}
}

func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	}
	return 0, false
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}
