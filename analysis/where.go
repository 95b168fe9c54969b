package analysis

import (
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/sweep-dse/sweep/engine"
	"github.com/sweep-dse/sweep/sweep"
)

// Where is a compiled row filter: an expr expression over the dataset's
// columns (parameters and metrics alike), written and compiled as a study's
// `where` constraints are (sweep.ExprOptions: arithmetic builtins only), e.g.
// `batch_size >= 128 && moe_ffn_scaling == "compute"`.
//
// A row whose referenced values include a null does not match, as in SQL.
// A Where is not safe for concurrent use.
type Where struct {
	Source string
	names  []string
	kinds  []engine.Kind
	prog   *vm.Program
	env    map[string]any
	vm     vm.VM
}

// CompileWhere compiles a filter expression. An empty source gives nil (no
// filter). Errors are *sweep.InputError naming --where.
func (d *Dataset) CompileWhere(src string) (*Where, error) {
	if strings.TrimSpace(src) == "" {
		return nil, nil
	}
	bad := func(format string, args ...any) error {
		return &sweep.InputError{Key: "--where", Msg: fmt.Sprintf(format, args...)}
	}
	idents, err := sweep.ExprIdents(src)
	if err != nil {
		return nil, bad("%s", err.Error())
	}
	w := &Where{Source: src, env: map[string]any{}}
	for _, n := range idents {
		c, ok := d.Column(n)
		if !ok {
			return nil, bad("%q: unknown name %q%s", src, n, d.suggest(n, false))
		}
		if c.Kind == engine.Unset {
			return nil, bad("%q: column %s cannot be used in expressions", src, n)
		}
		w.names = append(w.names, n)
		w.kinds = append(w.kinds, c.Kind)
	}
	env := map[string]any{}
	for _, c := range d.Columns {
		if c.Kind != engine.Unset {
			env[c.Name] = sweep.ExprZero(c.Kind)
		}
	}
	prog, err := expr.Compile(src, sweep.ExprOptions(env, true)...)
	if err != nil {
		return nil, bad("bad expression %q: %v", src, sweep.FirstLine(err.Error()))
	}
	// a parameter with a fixed set of values compared with a value outside
	// it (a typo) would match every row or none, silently
	if d.Study != nil {
		if err := sweep.CheckEnumLiterals(src, sweep.EnumsOf(d.Study.Engine.Params())); err != nil {
			return nil, bad("%s", err.Error())
		}
	}
	w.prog = prog
	return w, nil
}

// Columns lists the columns the filter reads.
func (w *Where) Columns() []string { return w.names }

// match evaluates the filter on row i; cols[j] is the position of
// w.names[j] in arrs.
func (w *Where) match(arrs []arrow.Array, cols []int, i int) (bool, error) {
	for j, n := range w.names {
		a := arrs[cols[j]]
		if a.IsNull(i) {
			return false, nil
		}
		switch w.kinds[j] {
		case engine.Int:
			w.env[n] = int(valueAt(a, i).I)
		case engine.Float:
			v, _ := numAt(a, i)
			if x, ok := a.(*array.Float64); ok {
				v = x.Value(i) // keep NaN: expr compares it as IEEE does
			}
			w.env[n] = v
		case engine.Bool:
			w.env[n] = valueAt(a, i).Bool()
		case engine.String:
			w.env[n] = valueAt(a, i).S
		}
	}
	out, err := w.vm.Run(w.prog, w.env)
	if err != nil {
		return false, &sweep.InputError{Key: "--where", Msg: fmt.Sprintf("%q: %v", w.Source, sweep.FirstLine(err.Error()))}
	}
	b, _ := out.(bool)
	return b, nil
}
