package analysis

import (
	"gonum.org/v1/plot"

	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweep-dse/sweep/engine"
	"github.com/sweep-dse/sweep/sweep"
)

// bruteFront returns the indexes of the vectors no other vector dominates
// (all keys minimised), by comparing every pair.
func bruteFront(keys [][]float64) []int {
	var out []int
	for i, a := range keys {
		dominated := false
		for j, b := range keys {
			if i == j {
				continue
			}
			le, lt := true, false
			for k := range a {
				if b[k] > a[k] {
					le = false
				}
				if b[k] < a[k] {
					lt = true
				}
			}
			if le && lt {
				dominated = true
				break
			}
		}
		if !dominated {
			out = append(out, i)
		}
	}
	return out
}

// TestFrontMatchesBruteForce offers random vectors (few distinct values, so
// ties and duplicates abound) to the streaming front and compares the
// result with the quadratic definition.
func TestFrontMatchesBruteForce(t *testing.T) {
	for seed := uint64(1); seed <= 300; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		n := 1 + rng.IntN(600)
		k := 2 + rng.IntN(4)
		levels := 2 + rng.IntN(30)
		keys := make([][]float64, n)
		for i := range keys {
			keys[i] = make([]float64, k)
			for j := range keys[i] {
				keys[i][j] = float64(rng.IntN(levels))
			}
			if rng.IntN(4) == 0 { // anti-correlated rows make big fronts
				keys[i][1] = float64(levels) - keys[i][0]
			}
		}
		f := &front{}
		for i, key := range keys {
			id := fmt.Sprintf("%05d", i)
			if err := f.offer(key, id, func() []engine.Value { return []engine.Value{engine.StringV(id)} }); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		for _, c := range f.cand {
			got = append(got, c.id)
		}
		var want []string
		for _, i := range bruteFront(keys) {
			want = append(want, fmt.Sprintf("%05d", i))
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("seed %d (n=%d, k=%d): front %v, brute force %v", seed, n, k, got, want)
		}
	}
}

// TestFrontBound fails cleanly when the front outgrows its bound, and only
// then: rows that a later row dominates do not count.
func TestFrontBound(t *testing.T) {
	none := func() []engine.Value { return nil }
	f := &front{max: 10}
	for i := 0; i < 20; i++ {
		if err := f.offer([]float64{float64(i), float64(-i)}, fmt.Sprint(i), none); err != nil {
			t.Fatal(err)
		}
	}
	var fe *FrontTooLargeError
	if err := f.check(); !errors.As(err, &fe) || fe.Max != 10 {
		t.Fatalf("a front of 20 with --max-front 10: %v", err)
	}
	// 20 rows on an interim front, then one that dominates them all
	g := &front{max: 10}
	for i := 0; i < 20; i++ {
		g.offer([]float64{float64(i), float64(-i)}, fmt.Sprint(i), none)
	}
	if err := g.offer([]float64{-1, -100}, "best", none); err != nil || g.check() != nil || len(g.cand) != 1 {
		t.Fatalf("a front of 1 after an interim set of 20: %v, %v, %d", err, g.check(), len(g.cand))
	}
	// memory: a scan stops once the set is far above the bound
	h := &front{max: 1}
	var err error
	for i := 0; i < 2000 && err == nil; i++ {
		err = h.offer([]float64{float64(i), float64(-i)}, fmt.Sprint(i), none)
	}
	if !errors.As(err, &fe) || len(h.cand) != 4+1000 {
		t.Fatalf("err %v with %d candidates, want FrontTooLargeError at 1004", err, len(h.cand))
	}
}

// TestParetoOnDatasets is the property test on real Parquet datasets: for
// random datasets and random objectives (2 to 4, random directions), with
// and without a filter, Pareto returns exactly the brute-force front of the
// ok rows whose objectives are all present.
func TestParetoOnDatasets(t *testing.T) {
	ctx := context.Background()
	pool := []string{"latency_s", "tokens_per_s", "params_layer", "act_bytes_moe", "link_bytes"}
	for seed := uint64(1); seed <= 16; seed++ {
		rng := rand.New(rand.NewPCG(seed, 5))
		dir := t.TempDir()
		n := 1 + rng.IntN(700)
		rows := writeSynth(t, dir, n, 1+rng.IntN(300), seed)
		d, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		names := slices.Clone(pool)
		rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
		objs := make([]Objective, 2+rng.IntN(3))
		for i := range objs {
			objs[i] = Objective{Metric: names[i], Max: rng.IntN(2) == 0}
		}
		where, keep := "", func(synthRow) bool { return true }
		if seed%2 == 0 {
			where = `batch_size >= 128 && moe_ffn_scaling != "compute"`
			keep = func(r synthRow) bool { return r.batch >= 128 && r.scaling != "compute" }
		}
		tab, err := Pareto(ctx, d, ParetoOptions{Objectives: objs, Where: where})
		if err != nil {
			t.Fatal(err)
		}
		var keys [][]float64
		var ids []string
	rowLoop:
		for _, r := range rows {
			if !r.ok || !keep(r) {
				continue
			}
			key := make([]float64, len(objs))
			for i, o := range objs {
				v, ok := r.num(o.Metric)
				if !ok {
					continue rowLoop
				}
				key[i] = o.key(v)
			}
			keys = append(keys, key)
			ids = append(ids, r.id)
		}
		var want []string
		for _, i := range bruteFront(keys) {
			want = append(want, ids[i])
		}
		slices.Sort(want)
		idCol := slices.IndexFunc(tab.Columns, func(c Column) bool { return c.Name == "point_id" })
		var got []string
		for _, r := range tab.Rows {
			got = append(got, r[idCol].S)
		}
		// the table is ordered by the objectives, then point_id
		if !slices.IsSortedFunc(tab.Rows, func(a, b []engine.Value) int {
			for i, o := range objs {
				j := len(tab.Columns) - len(objs) + i
				x, _ := asFloat(a[j])
				y, _ := asFloat(b[j])
				if c := cmp.Compare(o.key(x), o.key(y)); c != 0 {
					return c
				}
			}
			return strings.Compare(a[idCol].S, b[idCol].S)
		}) {
			t.Errorf("seed %d: front rows are not ordered by the objectives", seed)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("seed %d (%d rows, objectives %v, where %q):\n got  %v\n want %v", seed, n, objs, where, got, want)
		}
	}
}

// TestBestMatchesSort compares Best with sorting every eligible row.
func TestBestMatchesSort(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rows := writeSynth(t, dir, 3000, 700, 42)
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		by    Objective
		where string
		keep  func(synthRow) bool
		top   int
	}{
		{Objective{Metric: "latency_s"}, "", nil, 10},
		{Objective{Metric: "tokens_per_s", Max: true}, "", nil, 25},
		{Objective{Metric: "params_layer"}, `num_experts == 16 || top_k == 2`, func(r synthRow) bool { return r.experts == 16 || r.topK == 2 }, 40},
		// latency is sometimes null: those rows never match, as in SQL
		{Objective{Metric: "tokens_per_s"}, `latency_s > 2.5 and moe_ffn_scaling in ["capacity", "balanced"]`, func(r synthRow) bool {
			v, ok := r.num("latency_s")
			return ok && v > 2.5 && (r.scaling == "capacity" || r.scaling == "balanced")
		}, 7},
		{Objective{Metric: "latency_s", Max: true}, "", nil, 100000},
	}
	for _, c := range cases {
		tab, err := Best(ctx, d, BestOptions{By: c.by, Where: c.where, Top: c.top})
		if err != nil {
			t.Fatalf("%v %q: %v", c.by, c.where, err)
		}
		type kv struct {
			id string
			v  float64
		}
		var all []kv
		for _, r := range rows {
			if !r.ok || (c.keep != nil && !c.keep(r)) {
				continue
			}
			if v, ok := r.num(c.by.Metric); ok {
				all = append(all, kv{r.id, v})
			}
		}
		slices.SortFunc(all, func(a, b kv) int {
			return cmp.Or(cmp.Compare(c.by.key(a.v), c.by.key(b.v)), strings.Compare(a.id, b.id))
		})
		all = all[:min(c.top, len(all))]
		if len(tab.Rows) != len(all) {
			t.Fatalf("%v %q: %d rows, want %d", c.by, c.where, len(tab.Rows), len(all))
		}
		last := len(tab.Columns) - 1
		if tab.Columns[0].Name != "rank" || tab.Columns[1].Name != "point_id" || tab.Columns[last].Name != c.by.Metric {
			t.Fatalf("columns %v", names(tab.Columns))
		}
		for i, want := range all {
			got := tab.Rows[i]
			v, _ := asFloat(got[last])
			if got[0].I != int64(i+1) || got[1].S != want.id || v != want.v {
				t.Fatalf("%v %q row %d: got rank %d %s %v, want %s %v", c.by, c.where, i, got[0].I, got[1].S, v, want.id, want.v)
			}
		}
	}
}

// TestInputErrors: missing and empty datasets, unknown or non-numeric
// metrics and bad expressions are *sweep.InputError with a clear message.
func TestInputErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeSynth(t, dir, 50, 100, 1)
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	file := filepath.Join(empty, "file.txt")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		run  func() error
		want string
	}{
		{"missing", func() error { _, err := Open(filepath.Join(empty, "nope")); return err }, "does not exist"},
		{"empty", func() error { _, err := Open(empty); return err }, "is empty"},
		{"file", func() error { _, err := Open(file); return err }, "not a dataset folder"},
		{"unknown metric", func() error {
			_, err := Best(ctx, d, BestOptions{By: Objective{Metric: "latncy_s"}})
			return err
		}, `unknown metric "latncy_s" (did you mean latency_s?)`},
		{"string metric", func() error {
			_, err := Best(ctx, d, BestOptions{By: Objective{Metric: "moe_ffn_scaling"}})
			return err
		}, "not a number"},
		{"syntax", func() error {
			_, err := Best(ctx, d, BestOptions{By: Objective{Metric: "latency_s"}, Where: "batch_size >"})
			return err
		}, "bad expression"},
		{"unknown name", func() error {
			_, err := Best(ctx, d, BestOptions{By: Objective{Metric: "latency_s"}, Where: "batch_sise > 1"})
			return err
		}, `unknown name "batch_sise" (did you mean batch_size?)`},
		{"not bool", func() error {
			_, err := Best(ctx, d, BestOptions{By: Objective{Metric: "latency_s"}, Where: "batch_size + 1"})
			return err
		}, "expected bool"},
		{"type mismatch", func() error {
			_, err := Best(ctx, d, BestOptions{By: Objective{Metric: "latency_s"}, Where: `moe_ffn_scaling > 3`})
			return err
		}, "bad expression"},
		{"enum typo", func() error {
			_, err := Best(ctx, d, BestOptions{By: Objective{Metric: "latency_s"}, Where: `moe_ffn_scaling != "capcity"`})
			return err
		}, `--where: "moe_ffn_scaling != \"capcity\"": moe_ffn_scaling is never "capcity": the values are balanced, compute, capacity (did you mean "capacity"?)`},
		{"enum literal first", func() error {
			_, err := Pareto(ctx, d, ParetoOptions{Objectives: []Objective{{Metric: "latency_s"}, {Metric: "tokens_per_s", Max: true}}, Where: `"Compute" == moe_ffn_scaling`})
			return err
		}, `moe_ffn_scaling is never "Compute"`},
		{"enum in", func() error {
			_, err := Build(ctx, d, ReportOptions{Where: `moe_ffn_scaling in ["compute", "capasity"]`})
			return err
		}, `moe_ffn_scaling is never "capasity"`},
		{"enum not in", func() error {
			_, err := Best(ctx, d, BestOptions{By: Objective{Metric: "latency_s"}, Where: `batch_size > 1 && moe_ffn_scaling not in ["balance"]`})
			return err
		}, `moe_ffn_scaling is never "balance"`},
		{"one objective", func() error {
			_, err := Pareto(ctx, d, ParetoOptions{Objectives: []Objective{{Metric: "latency_s"}}})
			return err
		}, "two or more objectives"},
		{"unknown objective", func() error {
			_, err := Pareto(ctx, d, ParetoOptions{Objectives: []Objective{{Metric: "latency_s"}, {Metric: "speed", Max: true}}})
			return err
		}, `--max: unknown metric "speed"`},
		{"unknown column", func() error {
			_, err := Best(ctx, d, BestOptions{By: Objective{Metric: "latency_s"}, Columns: []string{"nope"}})
			return err
		}, `unknown column "nope"`},
		{"report metric", func() error {
			_, err := Build(ctx, d, ReportOptions{Metrics: []string{"latency_s", "bogus"}})
			return err
		}, `--metrics: unknown metric "bogus"`},
		{"report axis", func() error {
			_, err := Build(ctx, d, ReportOptions{X: []string{"moe_ffn_scaling"}})
			return err
		}, "numeric x axis"},
		{"report agg", func() error {
			_, err := Build(ctx, d, ReportOptions{Agg: "median"})
			return err
		}, "want mean, min or max"},
	}
	for _, c := range cases {
		err := c.run()
		var ie *sweep.InputError
		if !errors.As(err, &ie) {
			t.Errorf("%s: error %v (%T), want *sweep.InputError", c.name, err, err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not say %q", c.name, err, c.want)
		}
	}
}

// TestTableFormats checks that CSV and JSON carry exact values and nulls,
// and the text table units and rounding.
func TestTableFormats(t *testing.T) {
	x := 0.1
	x += 0.2 // 0.30000000000000004 at run time
	tab := &Table{
		Columns: []Column{{Name: "point_id", Kind: engine.String}, {Name: "x", Kind: engine.Float, Unit: "s"}, {Name: "n", Kind: engine.Int}},
		Rows: [][]engine.Value{
			{engine.StringV("a,b"), engine.FloatV(x), engine.IntV(1 << 60)},
			{engine.StringV("c"), {}, engine.IntV(-3)},
		},
	}
	var b strings.Builder
	if err := tab.Write(&b, FormatCSV); err != nil {
		t.Fatal(err)
	}
	if want := "point_id,x,n\n\"a,b\",0.30000000000000004,1152921504606846976\nc,,-3\n"; b.String() != want {
		t.Errorf("csv:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := tab.Write(&b, FormatJSON); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(b.String()))
	dec.UseNumber()
	var got []map[string]any
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("json: %v\n%s", err, b.String())
	}
	want := []map[string]any{
		{"point_id": "a,b", "x": json.Number("0.30000000000000004"), "n": json.Number("1152921504606846976")},
		{"point_id": "c", "x": nil, "n": json.Number("-3")},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("json %v, want %v", got, want)
	}
	b.Reset()
	if err := tab.Write(&b, FormatTable); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || !slices.Equal(strings.Fields(lines[0]), []string{"point_id", "x", "[s]", "n"}) ||
		!slices.Equal(strings.Fields(lines[1]), []string{"a,b", "0.3", "1152921504606846976"}) ||
		!slices.Equal(strings.Fields(lines[2]), []string{"c", "-3"}) {
		t.Errorf("table:\n%s", b.String())
	}
}

// TestWhereLikeStudyConstraints: filters accept what study constraints
// accept (operators, arithmetic builtins) and refuse the rest.
func TestWhereLikeStudyConstraints(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rows := writeSynth(t, dir, 400, 400, 3)
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := Best(ctx, d, BestOptions{By: Objective{Metric: "latency_s"}, Top: 1000, Where: `abs(latency_s - 3) < 1 && max(top_k, 2) == 2 && num_experts % 16 == 0`})
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, r := range rows {
		v, ok := r.num("latency_s")
		if r.ok && ok && v > 2 && v < 4 && r.experts%16 == 0 {
			want++
		}
	}
	if len(tab.Rows) != want {
		t.Errorf("%d rows, want %d", len(tab.Rows), want)
	}
	for _, bad := range []string{`now() > 0`, `len(moe_ffn_scaling) > 3`} {
		_, err := Best(ctx, d, BestOptions{By: Objective{Metric: "latency_s"}, Where: bad})
		var ie *sweep.InputError
		if !errors.As(err, &ie) {
			t.Errorf("%s: error %v, want *sweep.InputError", bad, err)
		}
	}
}

// TestCellReaders reads every Arrow layout a part may use for a column,
// dictionary-encoded strings and numbers included, and nulls.
func TestCellReaders(t *testing.T) {
	mem := memory.NewGoAllocator()
	db := array.NewDictionaryBuilder(mem, &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String})
	sb := db.(*array.BinaryDictionaryBuilder)
	sb.AppendString("compute")
	sb.AppendNull()
	sb.AppendString("balanced")
	dict := sb.NewArray()
	defer dict.Release()
	if v := valueAt(dict, 0); v != engine.StringV("compute") {
		t.Errorf("dictionary cell 0: %v", v)
	}
	if v := valueAt(dict, 1); v.IsSet() {
		t.Errorf("dictionary null: %v", v)
	}
	if v := valueAt(dict, 2); v != engine.StringV("balanced") {
		t.Errorf("dictionary cell 2: %v", v)
	}
	fb := array.NewFloat64Builder(mem)
	fb.AppendValues([]float64{1.5, math.NaN()}, nil)
	fb.AppendNull()
	fa := fb.NewArray()
	defer fa.Release()
	if v, ok := numAt(fa, 0); !ok || v != 1.5 {
		t.Errorf("float: %v %v", v, ok)
	}
	if _, ok := numAt(fa, 1); ok {
		t.Error("NaN read as a number")
	}
	if _, ok := numAt(fa, 2); ok {
		t.Error("null read as a number")
	}
	if k := kindOf(dict.DataType()); k != engine.String {
		t.Errorf("kind of a string dictionary: %v", k)
	}
}

// TestTickLabelsDiffer: tick labels of a narrow range get the digits that
// tell them apart (1.001M to 1.008M are not all "1M").
func TestTickLabelsDiffer(t *testing.T) {
	ts := compactTicks{plot.DefaultTicks{}}.Ticks(1.001e6, 1.008e6)
	seen := map[string]bool{}
	n := 0
	for _, tk := range ts {
		if tk.Label == "" {
			continue
		}
		n++
		if seen[tk.Label] {
			t.Fatalf("label %q twice: %v", tk.Label, ts)
		}
		seen[tk.Label] = true
	}
	if n < 2 {
		t.Fatalf("ticks %v", ts)
	}
	if got := compact(12345); got != "12.3k" {
		t.Errorf("compact(12345) = %q", got)
	}
}
