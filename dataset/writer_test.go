package dataset

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"

	"github.com/sweep-dse/sweep/engine"
	"github.com/sweep-dse/sweep/engine/moe"
)

func seedRows(b testing.TB, n int) (engine.Engine, []Row) {
	e := moe.New()
	rows := make([]Row, n)
	for i := range rows {
		p := make([]engine.Value, len(e.Params()))
		p[engine.ParamIndex(e.Params(), "num_experts")] = engine.IntV(int64(1 + i%128))
		p[engine.ParamIndex(e.Params(), "batch_size")] = engine.IntV(int64(1 + i%512))
		if err := e.Resolve(".", p); err != nil {
			b.Fatal(err)
		}
		m := make([]engine.Value, len(e.Metrics()))
		if err := e.Evaluate(context.Background(), p, m); err != nil {
			b.Fatal(err)
		}
		rows[i] = Row{ID: "0123456789abcdef0123456789abcdef", Status: StatusOK, Params: p, Metrics: m, Elapsed: time.Microsecond, Finished: time.Now()}
	}
	return e, rows
}

func TestWriterRoundTrip(t *testing.T) {
	e, rows := seedRows(t, 1000)
	dir := t.TempDir()
	w, err := NewWriter(dir, "t", e, map[string]string{MetaStudy: "study text"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		w.Append(&rows[i])
		if i == 499 {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	parts, _ := Parts(dir)
	if len(parts) != 2 {
		t.Fatalf("parts %v", parts)
	}
	m, err := Metadata(parts[0])
	if err != nil || m[MetaStudy] != "study text" {
		t.Fatalf("metadata %v %v", m, err)
	}
	n := 0
	for _, p := range parts {
		err := Scan(context.Background(), p, []string{"num_experts", "latency_s", "moe_ffn_scaling"}, func(rec arrow.RecordBatch) error {
			for i := 0; i < int(rec.NumRows()); i++ {
				want := rows[n]
				if rec.Column(0).(*array.Int64).Value(i) != want.Params[engine.ParamIndex(e.Params(), "num_experts")].I ||
					rec.Column(1).(*array.Float64).Value(i) != want.Metrics[engine.FieldIndex(e.Metrics(), "latency_s")].F ||
					rec.Column(2).(*array.String).Value(i) != "balanced" {
					t.Fatalf("row %d differs", n)
				}
				n++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n != 1000 {
		t.Fatalf("%d rows", n)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name()[0] == '.' {
			t.Fatalf("temporary left: %s", e.Name())
		}
	}
}

// BenchmarkWriter appends and writes 65,536 seed rows: as one part, and as
// parts of 16,384 rows (what each worker of a two-job run writes). The
// rows cycle through 512 distinct ones, so that, as in a run, the row being
// appended is in cache (65,536 distinct rows made reading them from memory
// the benchmark's main cost, which hid the cost of the stores). Besides
// wall time per row it reports the process's CPU time per row (cpu-ns/row:
// all threads, the garbage collector's included), which a busy machine
// disturbs less.
func BenchmarkWriter(b *testing.B) {
	e, distinct := seedRows(b, 512)
	rows := make([]Row, 1<<16)
	for i := range rows {
		rows[i] = distinct[i%len(distinct)]
	}
	for _, part := range []int{1 << 16, 1 << 14} {
		b.Run(fmt.Sprintf("part=%d", part), func(b *testing.B) {
			w, err := NewWriter(b.TempDir(), "b", e, nil)
			if err != nil {
				b.Fatal(err)
			}
			var app, fl time.Duration
			c0 := cpuTime()
			for b.Loop() {
				for i := 0; i < len(rows); i += part {
					t0 := time.Now()
					for j := i; j < min(i+part, len(rows)); j++ {
						w.Append(&rows[j])
					}
					t1 := time.Now()
					if err := w.Flush(); err != nil {
						b.Fatal(err)
					}
					app += t1.Sub(t0)
					fl += time.Since(t1)
				}
			}
			n := float64(len(rows)) * float64(b.N)
			b.ReportMetric(float64(app.Nanoseconds())/n, "append-ns/row")
			b.ReportMetric(float64(fl.Nanoseconds())/n, "flush-ns/row")
			if c := cpuTime() - c0; c > 0 {
				b.ReportMetric(float64(c.Nanoseconds())/n, "cpu-ns/row")
			}
			b.ReportMetric(n/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// arrowRecord builds rows into a record batch with Arrow builders, as the
// schema describes them: the reference the writer's parts are checked
// against.
func arrowRecord(t *testing.T, e engine.Engine, rows []Row) arrow.RecordBatch {
	sc, err := Schema(e)
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	np := len(e.Params())
	for _, r := range rows {
		vals := []engine.Value{engine.StringV(r.ID), engine.StringV(r.Status), engine.StringV(r.Error)}
		vals = append(vals, r.Params...)
		for i := range e.Metrics() {
			var v engine.Value
			if r.Status == StatusOK {
				v = r.Metrics[i]
			}
			vals = append(vals, v)
		}
		vals = append(vals, engine.StringV(e.Name()), engine.StringV(e.Version()), engine.FloatV(r.Elapsed.Seconds()))
		for i, v := range vals {
			fb := b.Field(i)
			if !v.IsSet() {
				fb.AppendNull()
				continue
			}
			switch x := fb.(type) {
			case *array.Int64Builder:
				x.Append(v.I)
			case *array.Float64Builder:
				if v.Kind == engine.Int {
					x.Append(float64(v.I))
				} else {
					x.Append(v.F)
				}
			case *array.BooleanBuilder:
				x.Append(v.I != 0)
			case *array.StringBuilder:
				x.Append(v.S)
			default:
				t.Fatalf("column %d (param %v): builder %T", i, i-3 < np, fb)
			}
		}
		b.Field(len(vals)).(*array.TimestampBuilder).Append(arrow.Timestamp(r.Finished.UnixMicro()))
	}
	return b.NewRecordBatch()
}

// TestWriterMatchesArrow checks that a part from the Writer is the file
// pqarrow writes from the same rows built as Arrow arrays: same Parquet
// schema, key-value metadata (ARROW:schema included), encodings and
// statistics of every column chunk, one row group, and the same data read
// back, nulls and all. The rows include failed points (null metrics, many
// distinct errors), unset parameters (nulls in string and int columns) and
// more distinct strings than the linear dictionary search holds.
func TestWriterMatchesArrow(t *testing.T) {
	t.Run("mixed", func(t *testing.T) { testWriterMatchesArrow(t, true) })
	// only ok rows without nulls: every value takes the writer's fast path
	t.Run("clean", func(t *testing.T) { testWriterMatchesArrow(t, false) })
	// distinct errors of more than the writer's 1 MiB dictionary limit: the
	// error column goes plain (pqarrow's falls back half-way:
	// dictionaryFellBack)
	t.Run("large dictionary", func(t *testing.T) {
		e, rows := seedRows(t, 2500)
		for i := range rows {
			rows[i].ID = fmt.Sprintf("%032x", i)
			if i%3 > 0 {
				rows[i].Status, rows[i].Metrics = StatusFailed, nil
				rows[i].Error = fmt.Sprintf("%06d %s", i, strings.Repeat("x", 800))
			}
		}
		checkMatchesArrow(t, e, rows, true)
	})
}

func testWriterMatchesArrow(t *testing.T, mixed bool) {
	e, rows := seedRows(t, 3000)
	model := engine.ParamIndex(e.Params(), "model")
	dff := engine.ParamIndex(e.Params(), "d_ff")
	scaling := engine.ParamIndex(e.Params(), "moe_ffn_scaling")
	flag := engine.ParamIndex(e.Params(), "pim")
	for i := range rows {
		r := &rows[i]
		r.ID = fmt.Sprintf("%032x", i*7919)
		r.Finished = time.Unix(1700000000, int64(i)*1000)
		r.Elapsed = time.Duration(i) * time.Microsecond
		p := append([]engine.Value(nil), r.Params...)
		r.Params = p
		p[scaling] = engine.StringV([]string{"balanced", "compute", "capacity"}[i%3])
		p[flag] = engine.BoolV(i%2 == 0)
		if !mixed {
			continue
		}
		if i%5 == 3 {
			r.Status, r.Error, r.Metrics = StatusFailed, fmt.Sprintf("error %d", i%40), nil
		}
		if i%7 == 2 {
			p[model] = engine.Value{}
			p[dff] = engine.Value{}
		}
	}
	checkMatchesArrow(t, e, rows, mixed)
}

// dictionaryFellBack reports the one way the writer's encodings may differ
// from pqarrow's: a string column whose dictionary outgrew the writer's
// limit. pqarrow writes the dictionary it had and then plain pages
// (RLE_DICTIONARY and PLAIN); the writer, which sees the whole part first,
// writes it plain (PLAIN only). The values must still match.
func dictionaryFellBack(got, want []parquet.Encoding) bool {
	return !slices.Contains(got, parquet.Encodings.RLEDict) && slices.Contains(got, parquet.Encodings.Plain) &&
		slices.Contains(want, parquet.Encodings.RLEDict) && slices.Contains(want, parquet.Encodings.Plain)
}

// checkMatchesArrow writes rows with a Writer and with pqarrow (from Arrow
// arrays built by arrowRecord, under the same settings) and compares the
// two files: Parquet schema, key-value metadata, one row group, each
// column chunk's encodings, compression and statistics, and the data read
// back (NaNs equal). nulls says whether the rows hold nulls.
func checkMatchesArrow(t *testing.T, e engine.Engine, rows []Row, nulls bool) {
	t.Helper()
	meta := map[string]string{MetaStudy: "study text", MetaStudyName: "s", MetaToolVersion: "v"}
	dir := t.TempDir()
	w, err := NewWriter(dir, "w", e, meta)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		w.Append(&rows[i])
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	rec := arrowRecord(t, e, rows)
	defer rec.Release()
	if err := writePart(dir, "ref.parquet", rec.Schema(), rec, writerProps(e), meta); err != nil {
		t.Fatal(err)
	}
	got, want := w.Written()[0], dir+"/ref.parquet"

	gf, gr, err := Open(got)
	if err != nil {
		t.Fatal(err)
	}
	defer gf.Close()
	wf, wr, err := Open(want)
	if err != nil {
		t.Fatal(err)
	}
	defer wf.Close()
	gm, wm := gf.MetaData(), wf.MetaData()
	if !gm.Schema.Equals(wm.Schema) {
		t.Fatalf("Parquet schema differs:\n%v\n%v", gm.Schema, wm.Schema)
	}
	if gk, wk := gm.KeyValueMetadata(), wm.KeyValueMetadata(); fmt.Sprint(gk.Keys(), gk.Values()) != fmt.Sprint(wk.Keys(), wk.Values()) {
		t.Fatalf("key-value metadata differs:\n%v\n%v", gm.KeyValueMetadata(), wm.KeyValueMetadata())
	}
	if gm.NumRowGroups() != 1 || gm.NumRows != int64(len(rows)) {
		t.Fatalf("%d row groups, %d rows", gm.NumRowGroups(), gm.NumRows)
	}
	grg, wrg := gm.RowGroup(0), wm.RowGroup(0)
	for i := 0; i < gm.Schema.NumColumns(); i++ {
		gc, err := grg.ColumnChunk(i)
		if err != nil {
			t.Fatal(err)
		}
		wc, _ := wrg.ColumnChunk(i)
		name := gm.Schema.Column(i).Name()
		if (fmt.Sprint(gc.Encodings()) != fmt.Sprint(wc.Encodings()) && !dictionaryFellBack(gc.Encodings(), wc.Encodings())) || gc.Compression() != wc.Compression() {
			t.Errorf("%s: encodings %v %v, compression %v %v", name, gc.Encodings(), wc.Encodings(), gc.Compression(), wc.Compression())
		}
		if gc.Type() == parquet.Types.Int64 && !slices.Contains(gc.Encodings(), parquet.Encodings.DeltaBinaryPacked) {
			t.Errorf("%s: integer column encoded %v, want DELTA_BINARY_PACKED (writerProps)", name, gc.Encodings())
		}
		gs, err1 := gc.Statistics()
		ws, err2 := wc.Statistics()
		if err1 != nil || err2 != nil || gs == nil || ws == nil {
			t.Fatalf("%s: statistics %v %v", name, err1, err2)
		}
		ge, err1 := gs.Encode()
		we, err2 := ws.Encode()
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: statistics %v %v", name, err1, err2)
		}
		if string(ge.Min) != string(we.Min) || string(ge.Max) != string(we.Max) || ge.NullCount != we.NullCount || gs.NumValues() != ws.NumValues() {
			t.Errorf("%s: statistics %+v %+v min %q %q max %q %q nulls %d %d values %d %d", name, ge, we,
				ge.Min, we.Min, ge.Max, we.Max, ge.NullCount, we.NullCount, gs.NumValues(), ws.NumValues())
		}
	}
	gt, err := gr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer gt.Release()
	wt, err := wr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer wt.Release()
	if !gt.Schema().Equal(wt.Schema()) {
		t.Fatalf("Arrow schema differs:\n%v\n%v", gt.Schema(), wt.Schema())
	}
	n := 0
	for i := 0; i < int(gt.NumCols()); i++ {
		gcol, wcol := gt.Column(i).Data(), wt.Column(i).Data()
		if !array.ChunkedApproxEqual(gcol, wcol, array.WithNaNsEqual(true), array.WithAbsTolerance(0)) {
			t.Errorf("column %s differs", gt.Schema().Field(i).Name)
		}
		// floats to the bit: -0 and +0 (which compare equal) and NaNs
		if gb, wb := floatBits(gcol), floatBits(wcol); !slices.Equal(gb, wb) {
			t.Errorf("column %s differs in its float bits", gt.Schema().Field(i).Name)
		}
		n += gcol.NullN()
	}
	if nulls && n == 0 {
		t.Fatal("no nulls written")
	}
	if !nulls && n != 0 {
		t.Fatalf("%d nulls in clean rows", n)
	}
}

// floatBits returns the bits of a float64 column's values (1<<64-1 for a
// null; nil for another type).
func floatBits(c *arrow.Chunked) []uint64 {
	var out []uint64
	for _, ch := range c.Chunks() {
		f, ok := ch.(*array.Float64)
		if !ok {
			return nil
		}
		for i := 0; i < f.Len(); i++ {
			if f.IsNull(i) {
				out = append(out, math.MaxUint64)
			} else {
				out = append(out, math.Float64bits(f.Value(i)))
			}
		}
	}
	return out
}
