// Package analysis reads sweep datasets back: best points, Pareto fronts,
// per-group aggregates, charts and an HTML report.
//
// Everything here streams. A query projects only the columns it needs and
// reads the Parquet parts batch by batch (dataset.Scan), keeping bounded
// state: a top-N heap per ranking, the current Pareto front (capped), one
// accumulator per chart group (capped) and a fixed-size reservoir sample for
// scatter plots. Memory therefore depends on the size of the answer, not on
// the number of rows, and datasets of millions of rows report in a few tens
// of megabytes.
//
// Only rows with status "ok" enter rankings, fronts and charts; failed rows
// are counted. Rows where a needed value is null or NaN are skipped, like SQL
// drops NULLs from comparisons.
package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sweep-dse/sweep/dataset"
	"github.com/sweep-dse/sweep/engine"
	"github.com/sweep-dse/sweep/sweep"
)

// Role says where a column comes from.
type Role uint8

// Column roles.
const (
	RoleUnknown Role = iota // the study (and so the engine) is not known
	RoleFixed               // point_id, status, error, engine, ...
	RoleParam               // an engine parameter
	RoleMetric              // an engine metric
)

// Column describes one column of a dataset.
type Column struct {
	Name string
	Kind engine.Kind // Int, Float, String or Bool; Unset for columns analysis cannot read (timestamps)
	Unit string      // from the engine's Param or Field; "" if dimensionless or unknown
	Doc  string
	Role Role
}

// Numeric reports whether the column holds numbers.
func (c Column) Numeric() bool { return c.Kind == engine.Int || c.Kind == engine.Float }

// Label is the column's name with its unit in brackets, as axis labels and
// table headers show it: "latency_s [s]".
func (c Column) Label() string {
	if c.Unit == "" {
		return c.Name
	}
	return c.Name + " [" + c.Unit + "]"
}

// Dataset is an opened dataset folder: its parts, columns and stored study.
type Dataset struct {
	Dir   string
	Parts []string

	// Columns of the dataset, in file order.
	Columns []Column

	// Study is the study stored in the newest part's metadata, parsed; nil
	// when there is none or it does not load here (StudyErr says why).
	Study     *sweep.Study
	StudyText string
	StudyErr  error

	// Meta is the newest readable part's key-value metadata.
	Meta map[string]string
	// OtherStudyParts counts the parts written from another study text (an
	// edited study, or another study run into the folder): their rows are
	// read too, but the axes, units and captions follow Study.
	OtherStudyParts int
	// ToolVersions lists the distinct tool versions (sweep.version) that
	// wrote the parts.
	ToolVersions []string

	byName map[string]int
}

// Open opens a dataset folder. A missing folder, a folder without parts and
// a folder whose parts are all unreadable are *sweep.InputError (exit 2).
// Only part footers are read.
func Open(dir string) (*Dataset, error) {
	st, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &sweep.InputError{Msg: fmt.Sprintf("no dataset at %s: the folder does not exist", dir)}
		}
		return nil, &sweep.InputError{Msg: fmt.Sprintf("dataset %s: %v", dir, err)}
	}
	if !st.IsDir() {
		return nil, &sweep.InputError{Msg: fmt.Sprintf("%s is not a dataset folder (a folder of %s*%s files written by `sweep run`)", dir, dataset.PartPrefix, dataset.PartExt)}
	}
	parts, err := dataset.Parts(dir)
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, &sweep.InputError{Msg: fmt.Sprintf("dataset %s is empty: it holds no %s files; run `sweep run STUDY --out %s` first", dir, dataset.PartExt, dir)}
	}
	d := &Dataset{Dir: dir, Parts: parts, byName: map[string]int{}}
	tools := map[string]bool{}
	var schema *arrow.Schema
	var firstErr error
	newest := dataset.NewestFirst(parts)
	for i := range newest {
		m, err := dataset.Metadata(newest[i])
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if v := m[dataset.MetaToolVersion]; v != "" {
			tools[v] = true
		}
		if d.Meta != nil && m[dataset.MetaStudy] != d.Meta[dataset.MetaStudy] {
			d.OtherStudyParts++
		}
		if d.Meta == nil {
			d.Meta = m
			pf, fr, err := dataset.Open(newest[i])
			if err != nil {
				d.Meta = nil
				continue
			}
			schema, err = fr.Schema()
			pf.Close()
			if err != nil {
				d.Meta = nil
				schema = nil
				continue
			}
		}
	}
	if schema == nil {
		return nil, &sweep.InputError{Msg: fmt.Sprintf("dataset %s: no readable part (%v)", dir, firstErr)}
	}
	for v := range tools {
		d.ToolVersions = append(d.ToolVersions, v)
	}
	sort.Strings(d.ToolVersions)

	d.StudyText = d.Meta[dataset.MetaStudy]
	if d.StudyText == "" {
		d.StudyErr = errors.New("the parts carry no study text")
	} else {
		// Relative paths in the study would resolve against the dataset
		// folder; analysis never resolves points, so they are not read.
		path := sweep.StoredStudyPath(dir)
		d.Study, d.StudyErr = sweep.ParseForReading(path, d.StudyText)
		d.StudyErr = sweep.StoredStudyError(d.StudyErr, path)
	}

	var params []engine.Param
	var metrics []engine.Field
	if d.Study != nil {
		params, metrics = d.Study.Engine.Params(), d.Study.Engine.Metrics()
	}
	for _, f := range schema.Fields() {
		c := Column{Name: f.Name, Kind: kindOf(f.Type)}
		switch f.Name {
		case dataset.ColID, dataset.ColStatus, dataset.ColError, dataset.ColEngine,
			dataset.ColEngineVersion, dataset.ColElapsed, dataset.ColFinished:
			c.Role = RoleFixed
			if f.Name == dataset.ColElapsed {
				c.Unit = "s"
			}
		default:
			if i := engine.ParamIndex(params, f.Name); i >= 0 {
				c.Role, c.Unit, c.Doc = RoleParam, params[i].Unit, params[i].Doc
			} else if i := engine.FieldIndex(metrics, f.Name); i >= 0 {
				c.Role, c.Unit, c.Doc = RoleMetric, metrics[i].Unit, metrics[i].Doc
			}
		}
		d.byName[c.Name] = len(d.Columns)
		d.Columns = append(d.Columns, c)
	}
	for _, need := range []string{dataset.ColID, dataset.ColStatus} {
		if _, ok := d.byName[need]; !ok {
			return nil, &sweep.InputError{Msg: fmt.Sprintf("dataset %s: parts have no %s column; is this a sweep dataset?", dir, need)}
		}
	}
	return d, nil
}

func kindOf(t arrow.DataType) engine.Kind {
	switch t.ID() {
	case arrow.INT64, arrow.INT32, arrow.INT16, arrow.INT8, arrow.UINT32, arrow.UINT16, arrow.UINT8:
		return engine.Int
	case arrow.FLOAT64, arrow.FLOAT32:
		return engine.Float
	case arrow.STRING, arrow.LARGE_STRING:
		return engine.String
	case arrow.BOOL:
		return engine.Bool
	case arrow.DICTIONARY:
		return kindOf(t.(*arrow.DictionaryType).ValueType)
	}
	return engine.Unset
}

// Column returns the named column.
func (d *Dataset) Column(name string) (Column, bool) {
	i, ok := d.byName[name]
	if !ok {
		return Column{}, false
	}
	return d.Columns[i], true
}

// EngineName is the engine that wrote the dataset, from the metadata.
func (d *Dataset) EngineName() string { return d.Meta[dataset.MetaEngine] }

// EngineVersion is the engine model version of the newest part.
func (d *Dataset) EngineVersion() string { return d.Meta[dataset.MetaEngineVersion] }

// Axes names the parameters the study varies (axes, zip groups, repeats),
// outermost first. It is empty when the study is unknown.
func (d *Dataset) Axes() []string {
	if d.Study == nil {
		return nil
	}
	var out []string
	for _, dim := range d.Study.Dims {
		for _, n := range dim.Names {
			if _, ok := d.byName[n]; ok {
				out = append(out, n)
			}
		}
	}
	return out
}

// IsRepeat reports whether the named axis is the seed that [study]
// repeats varies: replicates of each design point, not a design axis.
func (d *Dataset) IsRepeat(name string) bool {
	if d.Study == nil {
		return false
	}
	for _, dim := range d.Study.Dims {
		if dim.Key == "study.repeats" && slices.Contains(dim.Names, name) {
			return true
		}
	}
	return false
}

// AxisValues returns the values the study gives the named axis, in study
// order, or nil.
func (d *Dataset) AxisValues(name string) []engine.Value {
	if d.Study == nil {
		return nil
	}
	for _, dim := range d.Study.Dims {
		for j, n := range dim.Names {
			if n == name {
				return dim.Values[j]
			}
		}
	}
	return nil
}

// Metric checks that name is a numeric column usable as an objective or a
// chart value. Errors are *sweep.InputError naming flag.
func (d *Dataset) Metric(flag, name string) (Column, error) {
	c, ok := d.Column(name)
	if !ok {
		return Column{}, &sweep.InputError{Key: flag, Msg: fmt.Sprintf("unknown metric %q%s", name, d.suggest(name, true))}
	}
	if !c.Numeric() {
		return Column{}, &sweep.InputError{Key: flag, Msg: fmt.Sprintf("%s is a %s column, not a number", name, kindName(c.Kind))}
	}
	return c, nil
}

// Field checks that name is a column analysis can read (for display and
// grouping). Errors are *sweep.InputError naming flag.
func (d *Dataset) Field(flag, name string) (Column, error) {
	c, ok := d.Column(name)
	if !ok {
		return Column{}, &sweep.InputError{Key: flag, Msg: fmt.Sprintf("unknown column %q%s", name, d.suggest(name, false))}
	}
	if c.Kind == engine.Unset {
		return Column{}, &sweep.InputError{Key: flag, Msg: fmt.Sprintf("column %s is a %s, which best, pareto and report do not read (they read numbers, strings and booleans)", name, kindName(c.Kind))}
	}
	return c, nil
}

func kindName(k engine.Kind) string {
	if k == engine.Unset {
		return "timestamp"
	}
	return k.String()
}

// suggest names a column close to an unknown one, or says where to look.
func (d *Dataset) suggest(name string, numeric bool) string {
	best, bestD := "", 4
	for _, c := range d.Columns {
		if numeric && !c.Numeric() {
			continue
		}
		if dd := sweep.EditDistance(name, c.Name); dd < bestD {
			best, bestD = c.Name, dd
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %s?)", best)
	}
	var some []string
	for _, c := range d.Columns {
		if c.Role == RoleMetric && (!numeric || c.Numeric()) {
			some = append(some, c.Name)
		}
	}
	if len(some) > 8 {
		some = append(some[:8], "...")
	}
	if len(some) == 0 {
		return "; the dataset's columns are listed by `sweep params`"
	}
	return "; metrics include " + strings.Join(some, ", ")
}

// ScanStats counts what a scan saw.
type ScanStats struct {
	Rows    int64    // rows read
	OK      int64    // rows with status ok
	Failed  int64    // rows with another status
	Matched int64    // ok rows that passed the filter
	NoValue int64    // matched rows left out for a null or NaN objective
	Skipped []string // unreadable parts, skipped with this message
}

// row is one row of a batch during a scan.
type row struct {
	arrs  []arrow.Array // projected columns, in projection order
	i     int
	ok    bool // status is ok
	match bool // ok and passes the filter
}

// num reads column j as a number; false for null, NaN or non-numeric.
func (r *row) num(j int) (float64, bool) { return numAt(r.arrs[j], r.i) }

// value reads column j as a Value (Unset for null).
func (r *row) value(j int) engine.Value { return valueAt(r.arrs[j], r.i) }

// str reads a string column j ("" for null).
func (r *row) str(j int) string {
	if s, ok := r.arrs[j].(*array.String); ok {
		if s.IsValid(r.i) {
			return s.Value(r.i)
		}
		return ""
	}
	return valueAt(r.arrs[j], r.i).S
}

func numAt(a arrow.Array, i int) (float64, bool) {
	if a.IsNull(i) {
		return 0, false
	}
	switch x := a.(type) {
	case *array.Float64:
		v := x.Value(i)
		return v, !math.IsNaN(v)
	case *array.Int64:
		return float64(x.Value(i)), true
	case *array.Int32:
		return float64(x.Value(i)), true
	case *array.Float32:
		v := float64(x.Value(i))
		return v, !math.IsNaN(v)
	case *array.Dictionary:
		return numAt(x.Dictionary(), x.GetValueIndex(i))
	}
	return 0, false
}

func valueAt(a arrow.Array, i int) engine.Value {
	if a.IsNull(i) {
		return engine.Value{}
	}
	switch x := a.(type) {
	case *array.Float64:
		return engine.FloatV(x.Value(i))
	case *array.Int64:
		return engine.IntV(x.Value(i))
	case *array.Int32:
		return engine.IntV(int64(x.Value(i)))
	case *array.Float32:
		return engine.FloatV(float64(x.Value(i)))
	case *array.String:
		return engine.StringV(x.Value(i))
	case *array.LargeString:
		return engine.StringV(x.Value(i))
	case *array.Boolean:
		return engine.BoolV(x.Value(i))
	case *array.Dictionary:
		return valueAt(x.Dictionary(), x.GetValueIndex(i))
	}
	return engine.Value{}
}

// projection is a list of distinct column names read by one scan.
type projection struct {
	names []string
	idx   map[string]int
}

func newProjection(names ...string) *projection {
	p := &projection{idx: map[string]int{}}
	p.add(names...)
	return p
}

// add appends names not yet projected.
func (p *projection) add(names ...string) {
	for _, n := range names {
		if _, ok := p.idx[n]; !ok {
			p.idx[n] = len(p.names)
			p.names = append(p.names, n)
		}
	}
}

// of returns the position of a projected column; asking for a column not
// projected is a bug.
func (p *projection) of(name string) int {
	i, ok := p.idx[name]
	if !ok {
		panic("analysis: column " + name + " is not projected")
	}
	return i
}

// scan streams the projected columns of every part, calling fn for every
// row with ok set from the status column (always projected) and match set
// when the row is ok and passes where (nil = all). Unreadable parts are
// skipped and listed in the stats.
func (d *Dataset) scan(ctx context.Context, p *projection, where *Where, fn func(r *row) error) (*ScanStats, error) {
	p.add(dataset.ColStatus)
	if where != nil {
		p.add(where.names...)
	}
	for _, n := range p.names {
		if _, ok := d.byName[n]; !ok {
			return nil, &sweep.InputError{Msg: fmt.Sprintf("dataset %s has no column %s", d.Dir, n)}
		}
	}
	st := &ScanStats{}
	statusJ := p.of(dataset.ColStatus)
	var whereJ []int
	if where != nil {
		for _, n := range where.names {
			whereJ = append(whereJ, p.of(n))
		}
	}
	r := &row{}
	for _, part := range d.Parts {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		err := dataset.ScanLoose(ctx, part, p.names, func(rec arrow.RecordBatch) error {
			r.arrs = rec.Columns()
			n := int(rec.NumRows())
			status, _ := r.arrs[statusJ].(*array.String)
			for i := 0; i < n; i++ {
				r.i = i
				st.Rows++
				r.ok = status != nil && status.IsValid(i) && status.Value(i) == dataset.StatusOK
				r.match = r.ok
				if r.ok {
					st.OK++
					if where != nil {
						m, err := where.match(r.arrs, whereJ, i)
						if err != nil {
							return err
						}
						r.match = m
					}
				} else {
					st.Failed++
				}
				if r.match {
					st.Matched++
				}
				if err := fn(r); err != nil {
					return err
				}
			}
			return ctx.Err()
		})
		var ce *dataset.CorruptError
		if errors.As(err, &ce) {
			st.Skipped = append(st.Skipped, ce.Error())
			continue
		}
		if err != nil {
			return st, err
		}
	}
	return st, nil
}

// StudyNote says that some parts come from another study text, "" if none.
func (d *Dataset) StudyNote() string {
	if d.OtherStudyParts == 0 {
		return ""
	}
	return fmt.Sprintf("%d of %d parts were written from another version of the study (or another study); their rows are read too, but the axes and captions follow the newest study", d.OtherStudyParts, len(d.Parts))
}
