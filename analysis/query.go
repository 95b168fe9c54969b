package analysis

import (
	"context"
	"fmt"

	"github.com/sweep-dse/sweep/dataset"
	"github.com/sweep-dse/sweep/engine"
	"github.com/sweep-dse/sweep/sweep"
)

// Table is a query's answer: named columns and rows of values (Unset for
// null).
type Table struct {
	Columns []Column
	Rows    [][]engine.Value
	Stats   *ScanStats
}

// BestOptions asks for the best rows by one metric.
type BestOptions struct {
	By      Objective
	Where   string   // filter expression; "" = none
	Top     int      // rows to return (default 10)
	Columns []string // extra columns to show
}

// Best returns the Top rows with the best value of o.By among ok rows that
// pass the filter, best first, ties broken by point ID ascending. The first
// column is the rank, then point_id, the study's axes, any extra columns and
// the metric. It reads only those columns and keeps only Top rows.
func Best(ctx context.Context, d *Dataset, o BestOptions) (*Table, error) {
	if o.Top <= 0 {
		o.Top = 10
	}
	m, err := d.Metric("--by", o.By.Metric)
	if err != nil {
		return nil, err
	}
	where, err := d.CompileWhere(o.Where)
	if err != nil {
		return nil, err
	}
	show, err := d.displayColumns(o.Columns, []Column{m})
	if err != nil {
		return nil, err
	}
	p := newProjection(names(show)...)
	mj := p.of(m.Name)
	idj := p.of(dataset.ColID)
	cols := projIndexes(p, show)
	t := &topN{n: o.Top}
	var noValue int64
	st, err := d.scan(ctx, p, where, func(r *row) error {
		if !r.match {
			return nil
		}
		v, ok := r.num(mj)
		if !ok {
			noValue++
			return nil
		}
		k := o.By.key(v)
		id := r.str(idj)
		if t.wants(k, id) {
			t.add(k, id, r.values(cols))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	st.NoValue = noValue
	out := &Table{Stats: st, Columns: append([]Column{{Name: "rank", Kind: engine.Int, Role: RoleFixed}}, show...)}
	for i, c := range t.sorted() {
		out.Rows = append(out.Rows, append([]engine.Value{engine.IntV(int64(i + 1))}, c.vals...))
	}
	return out, nil
}

// ParetoOptions asks for the non-dominated rows over several objectives.
type ParetoOptions struct {
	Objectives []Objective // two or more
	Where      string
	Columns    []string // extra columns to show
	MaxFront   int      // bound on the front's size (default DefaultMaxFront)
}

// Pareto returns the rows no other ok row (passing the filter) dominates: a
// row dominates another when it is at least as good in every objective and
// strictly better in one. Rows equal in every objective are all kept. The
// rows are ordered by the objectives in turn (best first), then point ID.
// Columns: point_id, the study's axes, extra columns, the objectives.
func Pareto(ctx context.Context, d *Dataset, o ParetoOptions) (*Table, error) {
	if len(o.Objectives) < 2 {
		return nil, &sweep.InputError{Key: "--min/--max", Msg: fmt.Sprintf("a Pareto front needs two or more objectives, got %d", len(o.Objectives))}
	}
	if o.MaxFront <= 0 {
		o.MaxFront = DefaultMaxFront
	}
	var objCols []Column
	seen := map[string]bool{}
	for _, ob := range o.Objectives {
		c, err := d.Metric("--"+dir(ob), ob.Metric)
		if err != nil {
			return nil, err
		}
		if seen[c.Name] {
			return nil, &sweep.InputError{Key: "--" + dir(ob), Msg: fmt.Sprintf("%s is named twice as an objective", c.Name)}
		}
		seen[c.Name] = true
		objCols = append(objCols, c)
	}
	where, err := d.CompileWhere(o.Where)
	if err != nil {
		return nil, err
	}
	show, err := d.displayColumns(o.Columns, objCols)
	if err != nil {
		return nil, err
	}
	p := newProjection(names(show)...)
	idj := p.of(dataset.ColID)
	cols := projIndexes(p, show)
	objJ := make([]int, len(objCols))
	for i, c := range objCols {
		objJ[i] = p.of(c.Name)
	}
	f := &front{max: o.MaxFront}
	keys := make([]float64, len(objCols))
	var noValue int64
	st, err := d.scan(ctx, p, where, func(r *row) error {
		if !r.match {
			return nil
		}
		for i, j := range objJ {
			v, ok := r.num(j)
			if !ok {
				noValue++
				return nil
			}
			keys[i] = o.Objectives[i].key(v)
		}
		return f.offer(keys, r.str(idj), func() []engine.Value { return r.values(cols) })
	})
	if err == nil {
		err = f.check()
	}
	if err != nil {
		return nil, err
	}
	st.NoValue = noValue
	out := &Table{Stats: st, Columns: show}
	for _, c := range f.sorted() {
		out.Rows = append(out.Rows, c.vals)
	}
	return out, nil
}

func dir(o Objective) string {
	if o.Max {
		return "max"
	}
	return "min"
}

// displayColumns is point_id, the study's axes, the extra columns and the
// tail columns, each once.
func (d *Dataset) displayColumns(extra []string, tail []Column) ([]Column, error) {
	var out []Column
	seen := map[string]bool{}
	add := func(c Column) {
		if !seen[c.Name] {
			seen[c.Name] = true
			out = append(out, c)
		}
	}
	id, _ := d.Column(dataset.ColID)
	add(id)
	for _, a := range d.Axes() {
		c, _ := d.Column(a)
		add(c)
	}
	for _, n := range extra {
		c, err := d.Field("--cols", n)
		if err != nil {
			return nil, err
		}
		add(c)
	}
	for _, c := range tail {
		delete(seen, c.Name) // objectives go last even if they are axes
		out = removeColumn(out, c.Name)
		add(c)
	}
	return out, nil
}

func removeColumn(cs []Column, name string) []Column {
	for i, c := range cs {
		if c.Name == name {
			return append(cs[:i:i], cs[i+1:]...)
		}
	}
	return cs
}

func names(cs []Column) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Name
	}
	return out
}

func projIndexes(p *projection, cs []Column) []int {
	out := make([]int, len(cs))
	for i, c := range cs {
		out[i] = p.of(c.Name)
	}
	return out
}

// values copies the given projected columns of the row.
func (r *row) values(cols []int) []engine.Value {
	out := make([]engine.Value, len(cols))
	for i, j := range cols {
		out[i] = r.value(j)
	}
	return out
}
