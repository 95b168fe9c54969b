package analysis

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/sweep-dse/sweep/dataset"
	"github.com/sweep-dse/sweep/engine"
	"github.com/sweep-dse/sweep/sweep"
)

// Bounds on the state a report keeps, whatever the dataset's size.
const (
	maxAxisDistinct  = 1000 // distinct values counted per axis
	maxLineGroups    = 5000 // (x, series) groups per line chart
	maxHeatCells     = 2500 // cells per heatmap
	maxErrorKinds    = 100  // distinct error messages counted
	maxErrorLen      = 300  // characters kept of an error message
	maxVersions      = 100  // distinct engine versions counted
	defaultSample    = 4000 // dominated points drawn in the Pareto scatter
	defaultTop       = 5    // best points listed per objective
	maxSeriesDefault = 10   // a default series axis has at most this many values
)

// DefaultMetrics are charted when present and no metrics are asked for:
// the questions the tool exists for (latency, throughput, parameters,
// activation memory, host-link traffic).
var DefaultMetrics = []string{"latency_s", "tokens_per_s", "params_layer", "act_bytes_moe", "link_bytes"}

// ReportOptions chooses what a report shows. Empty fields are chosen from
// the study and the dataset's columns.
type ReportOptions struct {
	Metrics    []string    // metrics to chart and rank; default DefaultMetrics present, else the first numeric metrics
	X          []string    // x axes of the line charts; default the study's first two numeric axes
	Series     string      // axis giving one line per value; default the study's first string axis (e.g. moe_ffn_scaling); "none" = one line
	Heatmap    []string    // two axes (x, y); default num_experts and batch_size, else the first two numeric axes; "none" = no heatmap
	HeatMetric []string    // metrics of the heatmaps; default the first two metrics
	Objectives []Objective // Pareto objectives (the first two are plotted); default min latency_s, max tokens_per_s
	Where      string      // row filter for everything but the row counts
	Agg        string      // how rows of one chart point combine: mean (default), min or max
	Top        int         // best points per objective (default 5)
	Sample     int         // dominated points drawn in the Pareto scatter (default 4000)
	MaxFront   int         // bound on the Pareto front (default DefaultMaxFront)
	Tool       string      // version of the running tool, shown in the report
}

// AxisSummary is one axis: the values seen (rows per value), in study order.
type AxisSummary struct {
	Column Column
	Values []ValueCount
	More   bool // more distinct values than were counted
}

// ValueCount is a value and how many rows have it.
type ValueCount struct {
	Value engine.Value
	Rows  int64
}

// MetricSummary is a metric's range over the rows that pass the filter.
type MetricSummary struct {
	Column        Column
	Objective     Objective
	N             int64
	Min, Max, Sum float64
}

// Mean is the metric's mean (NaN without rows).
func (m MetricSummary) Mean() float64 {
	if m.N == 0 {
		return math.NaN()
	}
	return m.Sum / float64(m.N)
}

// Ranking is the best rows by one objective.
type Ranking struct {
	Objective Objective
	Table     *Table
}

// ErrorCount is one error message of failed rows and how often it occurs.
type ErrorCount struct {
	Msg  string
	Rows int64
}

// Report is what `sweep report` shows: a summary of a dataset, rankings, the
// Pareto front, and the data of its charts.
type Report struct {
	Dataset  *Dataset
	Options  ReportOptions // with defaults filled in
	Stats    *ScanStats
	Axes     []AxisSummary
	Metrics  []MetricSummary
	Best     []Ranking
	Front    *Table // point_id, axes, objectives
	Errors   []ErrorCount
	Versions []ValueCount // engine_version of the rows
	Charts   []*Chart     // filled by Render
	Notes    []string     // charts left out and why

	lines  []*lineData
	heats  []*heatData
	sample []scatterPoint
	seen   int64       // rows the sample was drawn from
	frontK [][]float64 // objective values of the front rows, in Front order
}

// Build reads the dataset once and computes everything the report shows.
// It keeps bounded state (see the package comment) and reads only the
// columns it needs.
func Build(ctx context.Context, d *Dataset, o ReportOptions) (*Report, error) {
	r := &Report{Dataset: d}
	if err := r.choose(&o); err != nil {
		return nil, err
	}
	if n := d.StudyNote(); n != "" {
		r.Notes = append(r.Notes, n)
	}
	r.Options = o
	where, err := d.CompileWhere(o.Where)
	if err != nil {
		return nil, err
	}

	p := newProjection(dataset.ColID, dataset.ColStatus, dataset.ColError)
	if _, ok := d.Column(dataset.ColEngineVersion); ok {
		p.add(dataset.ColEngineVersion)
	}
	axes := d.Axes()
	p.add(axes...)
	p.add(o.X...)
	if o.Series != "" {
		p.add(o.Series)
	}
	p.add(o.Heatmap...)
	p.add(o.Metrics...)
	for _, ob := range o.Objectives {
		p.add(ob.Metric)
	}
	idj, errj := p.of(dataset.ColID), p.of(dataset.ColError)
	verj := -1
	if _, ok := d.Column(dataset.ColEngineVersion); ok {
		verj = p.of(dataset.ColEngineVersion)
	}

	// axes
	type axisAcc struct {
		j      int
		counts map[engine.Value]int64
		more   bool
	}
	axAcc := make([]*axisAcc, len(axes))
	for i, a := range axes {
		axAcc[i] = &axisAcc{j: p.of(a), counts: map[engine.Value]int64{}}
	}
	// metric ranges and rankings
	for _, m := range o.Metrics {
		c, _ := d.Column(m)
		r.Metrics = append(r.Metrics, MetricSummary{Column: c, Objective: objectiveFor(m, o.Objectives), Min: math.Inf(1), Max: math.Inf(-1)})
	}
	metJ := make([]int, len(o.Metrics))
	for i, m := range o.Metrics {
		metJ[i] = p.of(m)
	}
	show, err := d.displayColumns(nil, nil)
	if err != nil {
		return nil, err
	}
	tops := make([]*topN, len(o.Metrics))
	topCols := make([][]Column, len(o.Metrics))
	topJ := make([][]int, len(o.Metrics))
	for i, ms := range r.Metrics {
		tops[i] = &topN{n: o.Top}
		topCols[i] = append(slices.Clone(show), ms.Column)
		topJ[i] = projIndexes(p, topCols[i])
	}
	// front
	var objCols []Column
	for _, ob := range o.Objectives {
		c, _ := d.Column(ob.Metric)
		objCols = append(objCols, c)
	}
	frontCols := append(slices.Clone(show), objCols...)
	frontJ := projIndexes(p, frontCols)
	objJ := make([]int, len(o.Objectives))
	for i, ob := range o.Objectives {
		objJ[i] = p.of(ob.Metric)
	}
	f := &front{max: o.MaxFront}
	keys := make([]float64, len(o.Objectives))
	rng := rand.New(rand.NewPCG(1, 2))
	// line charts and heatmaps
	for _, x := range o.X {
		ld := &lineData{x: x, series: o.Series, groups: map[groupKey]*aggs{}}
		ld.xj = p.of(x)
		if o.Series != "" {
			ld.sj = p.of(o.Series)
		}
		r.lines = append(r.lines, ld)
	}
	if len(o.Heatmap) == 2 {
		hd := &heatData{x: o.Heatmap[0], y: o.Heatmap[1], metrics: o.HeatMetric, cells: map[groupKey]*aggs{}}
		hd.xj, hd.yj = p.of(hd.x), p.of(hd.y)
		r.heats = append(r.heats, hd)
	}
	errs := map[string]int64{}
	versions := map[engine.Value]int64{}
	mvals := make([]float64, len(o.Metrics))
	mok := make([]bool, len(o.Metrics))

	st, err := d.scan(ctx, p, where, func(row *row) error {
		for _, a := range axAcc {
			v := row.value(a.j)
			if n, ok := a.counts[v]; ok || len(a.counts) < maxAxisDistinct {
				a.counts[v] = n + 1
			} else {
				a.more = true
			}
		}
		if verj >= 0 {
			v := row.value(verj)
			if n, ok := versions[v]; ok || len(versions) < maxVersions {
				versions[v] = n + 1
			}
		}
		if !row.ok {
			// the kind of error is its first line: an external program's
			// failure goes on with its stderr and the point's own work folder
			msg, _, more := strings.Cut(row.str(errj), "\n")
			if more {
				msg += " ..."
			}
			if len(msg) > maxErrorLen {
				msg = msg[:maxErrorLen] + "..."
			}
			if n, ok := errs[msg]; ok || len(errs) < maxErrorKinds {
				errs[msg] = n + 1
			} else {
				errs["(other messages)"]++
			}
			return nil
		}
		if !row.match {
			return nil
		}
		id := row.str(idj)
		for i, j := range metJ {
			mvals[i], mok[i] = row.num(j)
			if !mok[i] {
				continue
			}
			ms := &r.Metrics[i]
			ms.N++
			ms.Sum += mvals[i]
			ms.Min = min(ms.Min, mvals[i])
			ms.Max = max(ms.Max, mvals[i])
			k := ms.Objective.key(mvals[i])
			if tops[i].wants(k, id) {
				tops[i].add(k, id, row.values(topJ[i]))
			}
		}
		for _, ld := range r.lines {
			ld.add(row, metJ, mvals, mok)
		}
		for _, hd := range r.heats {
			hd.add(row, p, mvals, mok, o.Metrics)
		}
		if len(objJ) < 2 {
			return nil
		}
		for i, j := range objJ {
			v, ok := row.num(j)
			if !ok {
				return nil
			}
			keys[i] = o.Objectives[i].key(v)
		}
		if err := f.offer(keys, id, func() []engine.Value { return row.values(frontJ) }); err != nil {
			return err
		}
		// reservoir sample of the plotted pair
		x, _ := row.num(objJ[0])
		y, _ := row.num(objJ[1])
		r.seen++
		if len(r.sample) < o.Sample {
			r.sample = append(r.sample, scatterPoint{x, y})
		} else if k := rng.Int64N(r.seen); k < int64(o.Sample) {
			r.sample[k] = scatterPoint{x, y}
		}
		return nil
	})
	if err == nil && len(objJ) >= 2 {
		err = f.check()
	}
	if err != nil {
		return nil, err
	}
	r.Stats = st

	for i, a := range axAcc {
		c, _ := d.Column(axes[i])
		r.Axes = append(r.Axes, AxisSummary{Column: c, Values: orderValues(a.counts, d.AxisValues(axes[i])), More: a.more})
	}
	for i, ms := range r.Metrics {
		t := &Table{Columns: append([]Column{{Name: "rank", Kind: engine.Int, Role: RoleFixed}}, topCols[i]...)}
		for k, c := range tops[i].sorted() {
			t.Rows = append(t.Rows, append([]engine.Value{engine.IntV(int64(k + 1))}, c.vals...))
		}
		r.Best = append(r.Best, Ranking{Objective: ms.Objective, Table: t})
	}
	if len(objJ) < 2 {
		r.Notes = append(r.Notes, "no Pareto front: give two objectives with --min/--max")
	}
	r.Front = &Table{Columns: frontCols}
	for _, c := range f.sorted() {
		r.Front.Rows = append(r.Front.Rows, c.vals)
		vals := make([]float64, len(o.Objectives))
		for i, k := range c.keys {
			vals[i] = o.Objectives[i].key(k) // key is its own inverse
		}
		r.frontK = append(r.frontK, vals)
	}
	for m, n := range errs {
		r.Errors = append(r.Errors, ErrorCount{Msg: m, Rows: n})
	}
	slices.SortFunc(r.Errors, func(a, b ErrorCount) int {
		return cmp.Or(cmp.Compare(b.Rows, a.Rows), strings.Compare(a.Msg, b.Msg))
	})
	r.Versions = orderValues(versions, nil)
	return r, nil
}

// objectiveFor is the direction of metric m: from the Pareto objectives if
// it is one, else from its name.
func objectiveFor(m string, objs []Objective) Objective {
	for _, o := range objs {
		if o.Metric == m {
			return o
		}
	}
	return Objective{Metric: m, Max: !LowerIsBetter(m)}
}

// choose validates the options and fills in the defaults from the study.
func (r *Report) choose(o *ReportOptions) error {
	d := r.Dataset
	if o.Top <= 0 {
		o.Top = defaultTop
	}
	if o.Sample <= 0 {
		o.Sample = defaultSample
	}
	if o.MaxFront <= 0 {
		o.MaxFront = DefaultMaxFront
	}
	switch o.Agg {
	case "":
		o.Agg = "mean"
	case "mean", "min", "max":
	default:
		return &sweep.InputError{Key: "--agg", Msg: fmt.Sprintf("%q: want mean, min or max", o.Agg)}
	}
	// metrics
	if len(o.Metrics) == 0 {
		for _, m := range DefaultMetrics {
			if c, ok := d.Column(m); ok && c.Numeric() {
				o.Metrics = append(o.Metrics, m)
			}
		}
		if len(o.Metrics) == 0 {
			for _, c := range d.Columns {
				if c.Numeric() && (c.Role == RoleMetric || c.Role == RoleUnknown) && !slices.Contains(d.Axes(), c.Name) && len(o.Metrics) < 4 {
					o.Metrics = append(o.Metrics, c.Name)
				}
			}
		}
		if len(o.Metrics) == 0 {
			return &sweep.InputError{Key: "--metrics", Msg: "the dataset has no numeric metric to report; name columns with --metrics"}
		}
	}
	seen := map[string]bool{}
	for _, m := range o.Metrics {
		if _, err := d.Metric("--metrics", m); err != nil {
			return err
		}
		if seen[m] {
			return &sweep.InputError{Key: "--metrics", Msg: fmt.Sprintf("%s is named twice", m)}
		}
		seen[m] = true
	}
	// objectives
	if len(o.Objectives) == 0 {
		_, lat := d.Column("latency_s")
		_, tps := d.Column("tokens_per_s")
		if lat && tps {
			o.Objectives = []Objective{{Metric: "latency_s"}, {Metric: "tokens_per_s", Max: true}}
		} else if len(o.Metrics) >= 2 {
			o.Objectives = []Objective{objectiveFor(o.Metrics[0], nil), objectiveFor(o.Metrics[1], nil)}
		}
	}
	if len(o.Objectives) == 1 {
		return &sweep.InputError{Key: "--min/--max", Msg: "a Pareto front needs two or more objectives"}
	}
	seenObj := map[string]bool{}
	for _, ob := range o.Objectives {
		if _, err := d.Metric("--"+dir(ob), ob.Metric); err != nil {
			return err
		}
		if seenObj[ob.Metric] {
			return &sweep.InputError{Key: "--" + dir(ob), Msg: fmt.Sprintf("%s is named twice as an objective", ob.Metric)}
		}
		seenObj[ob.Metric] = true
	}
	// axes: numeric axes with more than one value, string axes as series
	axes := d.Axes()
	var numeric, strs []string
	for _, a := range axes {
		c, _ := d.Column(a)
		vals := d.AxisValues(a)
		if len(vals) < 2 || d.IsRepeat(a) { // repeats are aggregated (--agg), not charted
			continue
		}
		if c.Numeric() {
			numeric = append(numeric, a)
		} else if len(vals) <= maxSeriesDefault {
			strs = append(strs, a)
		}
	}
	if o.Series == "" {
		switch {
		case slices.Contains(strs, "moe_ffn_scaling"):
			o.Series = "moe_ffn_scaling"
		case len(strs) > 0:
			o.Series = strs[0]
		}
	} else if o.Series == "none" {
		o.Series = ""
	} else if _, err := d.Field("--series", o.Series); err != nil {
		return err
	}
	if len(o.X) == 0 {
		for _, a := range numeric {
			if a != o.Series && len(o.X) < 2 {
				o.X = append(o.X, a)
			}
		}
	} else if len(o.X) == 1 && o.X[0] == "none" {
		o.X = nil
	}
	for _, x := range o.X {
		c, err := d.Field("--x", x)
		if err != nil {
			return err
		}
		if !c.Numeric() {
			return &sweep.InputError{Key: "--x", Msg: fmt.Sprintf("%s is a %s column; line charts need a numeric x axis (use it as --series)", x, kindName(c.Kind))}
		}
		if x == o.Series {
			return &sweep.InputError{Key: "--x", Msg: fmt.Sprintf("%s is also the --series axis", x)}
		}
		if slices.Index(o.X, x) != len(o.X)-1-slices.Index(reversed(o.X), x) {
			return &sweep.InputError{Key: "--x", Msg: fmt.Sprintf("%s is named twice", x)}
		}
	}
	if len(o.Heatmap) == 0 {
		switch {
		case slices.Contains(numeric, "num_experts") && slices.Contains(numeric, "batch_size"):
			o.Heatmap = []string{"num_experts", "batch_size"}
		case len(numeric) >= 2:
			o.Heatmap = numeric[:2]
		}
	} else if len(o.Heatmap) == 1 && o.Heatmap[0] == "none" {
		o.Heatmap = nil
	}
	if len(o.Heatmap) != 0 {
		if len(o.Heatmap) != 2 || o.Heatmap[0] == o.Heatmap[1] {
			return &sweep.InputError{Key: "--heatmap", Msg: fmt.Sprintf("want two different axes X,Y, got %q", strings.Join(o.Heatmap, ","))}
		}
		for _, a := range o.Heatmap {
			if _, err := d.Field("--heatmap", a); err != nil {
				return err
			}
		}
		if len(o.HeatMetric) == 0 {
			o.HeatMetric = o.Metrics[:min(2, len(o.Metrics))]
		}
		for _, m := range o.HeatMetric {
			if !slices.Contains(o.Metrics, m) {
				return &sweep.InputError{Key: "--heatmap-metrics", Msg: fmt.Sprintf("%s is not among the report's metrics (%s)", m, strings.Join(o.Metrics, ", "))}
			}
		}
	}
	return nil
}

// orderValues lists counted values: those the study declares in its order,
// then the others sorted.
func orderValues(counts map[engine.Value]int64, declared []engine.Value) []ValueCount {
	var out []ValueCount
	done := map[engine.Value]bool{}
	for _, v := range declared {
		if n, ok := counts[v]; ok && !done[v] {
			out = append(out, ValueCount{v, n})
			done[v] = true
		}
	}
	var rest []ValueCount
	for v, n := range counts {
		if !done[v] {
			rest = append(rest, ValueCount{v, n})
		}
	}
	slices.SortFunc(rest, func(a, b ValueCount) int { return compareValues(a.Value, b.Value) })
	return append(out, rest...)
}

// compareValues orders values: unset first, then numbers by value, then
// strings.
func compareValues(a, b engine.Value) int {
	if a.Kind != b.Kind {
		return cmp.Compare(a.Kind, b.Kind)
	}
	switch a.Kind {
	case engine.Int, engine.Bool:
		return cmp.Compare(a.I, b.I)
	case engine.Float:
		return cmp.Compare(a.F, b.F)
	}
	return strings.Compare(a.S, b.S)
}

// groupKey identifies one point of a line chart (x, series) or one heatmap
// cell (x, y).
type groupKey struct{ a, b engine.Value }

// aggs accumulates several metrics over the rows of one group.
type aggs struct {
	n        []int64
	sum      []float64
	min, max []float64
}

func newAggs(k int) *aggs {
	a := &aggs{n: make([]int64, k), sum: make([]float64, k), min: make([]float64, k), max: make([]float64, k)}
	for i := range a.min {
		a.min[i], a.max[i] = math.Inf(1), math.Inf(-1)
	}
	return a
}

func (a *aggs) add(i int, v float64) {
	a.n[i]++
	a.sum[i] += v
	a.min[i] = min(a.min[i], v)
	a.max[i] = max(a.max[i], v)
}

// get is the aggregate of metric i: mean, min or max; NaN without rows.
func (a *aggs) get(i int, how string) float64 {
	if a.n[i] == 0 {
		return math.NaN()
	}
	switch how {
	case "min":
		return a.min[i]
	case "max":
		return a.max[i]
	}
	return a.sum[i] / float64(a.n[i])
}

// lineData holds the groups of the line charts against one x axis.
type lineData struct {
	x, series string
	xj, sj    int
	groups    map[groupKey]*aggs
	overflow  bool
}

func (ld *lineData) add(r *row, metJ []int, vals []float64, ok []bool) {
	k := groupKey{a: r.value(ld.xj)}
	if ld.series != "" {
		k.b = r.value(ld.sj)
	}
	if !k.a.IsSet() {
		return
	}
	g := ld.groups[k]
	if g == nil {
		if len(ld.groups) >= maxLineGroups {
			ld.overflow = true
			return
		}
		g = newAggs(len(metJ))
		ld.groups[k] = g
	}
	for i := range metJ {
		if ok[i] {
			g.add(i, vals[i])
		}
	}
}

// heatData holds the cells of the heatmaps over two axes.
type heatData struct {
	x, y     string
	xj, yj   int
	metrics  []string
	cells    map[groupKey]*aggs
	overflow bool
	idx      []int // positions of metrics in the report's metric list
}

func (hd *heatData) add(r *row, p *projection, vals []float64, ok []bool, all []string) {
	if hd.idx == nil {
		for _, m := range hd.metrics {
			hd.idx = append(hd.idx, slices.Index(all, m))
		}
	}
	k := groupKey{a: r.value(hd.xj), b: r.value(hd.yj)}
	if !k.a.IsSet() || !k.b.IsSet() {
		return
	}
	c := hd.cells[k]
	if c == nil {
		if len(hd.cells) >= maxHeatCells {
			hd.overflow = true
			return
		}
		c = newAggs(len(hd.metrics))
		hd.cells[k] = c
	}
	for i, mi := range hd.idx {
		if ok[mi] {
			c.add(i, vals[mi])
		}
	}
}

type scatterPoint struct{ x, y float64 }

// reversed returns a reversed copy of xs.
func reversed(xs []string) []string {
	out := slices.Clone(xs)
	slices.Reverse(out)
	return out
}
