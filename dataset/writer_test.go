package dataset

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

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

// BenchmarkWriter appends and writes 65,536 seed rows as one part.
func BenchmarkWriter(b *testing.B) {
	e, rows := seedRows(b, 1<<16)
	dir := b.TempDir()
	w, err := NewWriter(dir, "b", e, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		for i := range rows {
			w.Append(&rows[i])
		}
		t1 := time.Now()
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(t1.Sub(t0).Nanoseconds())/float64(len(rows)), "append-ns/row")
		b.ReportMetric(float64(time.Since(t1).Nanoseconds())/float64(len(rows)), "flush-ns/row")
	}
	b.ReportMetric(float64(len(rows))*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
