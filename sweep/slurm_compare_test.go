package sweep

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sweep-dse/sweep/dataset"
	"github.com/sweep-dse/sweep/engine"
)

// wallClockColumns differ between two runs of the same points.
var wallClockColumns = map[string]bool{dataset.ColElapsed: true, dataset.ColFinished: true}

// readDataset returns, per point ID, every row of the dataset formatted with
// all its columns except the wall-clock ones.
func readDataset(dir string) (map[string][]string, error) {
	parts, err := dataset.Parts(dir)
	if err != nil {
		return nil, err
	}
	rows := map[string][]string{}
	for _, p := range parts {
		err := func() error {
			pf, fr, err := dataset.Open(p)
			if err != nil {
				return err
			}
			defer pf.Close()
			rr, err := fr.GetRecordReader(context.Background(), nil, nil)
			if err != nil {
				return err
			}
			defer rr.Release()
			for rr.Next() {
				rec := rr.RecordBatch()
				idCol := rec.Schema().FieldIndices(dataset.ColID)
				if len(idCol) != 1 {
					return fmt.Errorf("%s: no %s column", p, dataset.ColID)
				}
				for i := 0; i < int(rec.NumRows()); i++ {
					var b strings.Builder
					for c := 0; c < int(rec.NumCols()); c++ {
						if name := rec.ColumnName(c); !wallClockColumns[name] {
							fmt.Fprintf(&b, "%s=%s ", name, rec.Column(c).ValueStr(i))
						}
					}
					id := rec.Column(idCol[0]).ValueStr(i)
					rows[id] = append(rows[id], b.String())
				}
			}
			return rr.Err()
		}()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	return rows, nil
}

// compareDatasets reports how two datasets differ: points present in one
// only, points with more than one row, and points whose parameters,
// metrics, status or error differ. Wall-clock columns are ignored.
func compareDatasets(a, b string) ([]string, error) {
	ra, err := readDataset(a)
	if err != nil {
		return nil, err
	}
	rb, err := readDataset(b)
	if err != nil {
		return nil, err
	}
	var diffs []string
	for _, side := range []struct {
		name string
		rows map[string][]string
	}{{a, ra}, {b, rb}} {
		for id, rs := range side.rows {
			if len(rs) != 1 {
				diffs = append(diffs, fmt.Sprintf("%s: point %s has %d rows", side.name, id, len(rs)))
			}
		}
	}
	for id, rs := range ra {
		other, ok := rb[id]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("point %s is only in %s", id, a))
		case len(rs) == 1 && len(other) == 1 && rs[0] != other[0]:
			diffs = append(diffs, fmt.Sprintf("point %s differs:\n  %s: %s\n  %s: %s", id, a, rs[0], b, other[0]))
		}
	}
	for id := range rb {
		if _, ok := ra[id]; !ok {
			diffs = append(diffs, fmt.Sprintf("point %s is only in %s", id, b))
		}
	}
	if len(ra) == 0 || len(rb) == 0 {
		diffs = append(diffs, fmt.Sprintf("empty dataset: %d points in %s, %d in %s", len(ra), a, len(rb), b))
	}
	slices.Sort(diffs)
	return diffs, nil
}

// TestCompareDatasets compares the datasets named by SWEEP_COMPARE_A and
// SWEEP_COMPARE_B (the Slurm CI script uses it: the compacted result of a
// job array against a local run). It is skipped when they are not set.
func TestCompareDatasets(t *testing.T) {
	a, b := os.Getenv("SWEEP_COMPARE_A"), os.Getenv("SWEEP_COMPARE_B")
	if a == "" || b == "" {
		t.Skip("set SWEEP_COMPARE_A and SWEEP_COMPARE_B to two dataset folders")
	}
	diffs, err := compareDatasets(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) > 0 {
		t.Fatalf("%d differences, the first:\n%s", len(diffs), strings.Join(diffs[:min(len(diffs), 10)], "\n"))
	}
	ra, _ := readDataset(a)
	t.Logf("%s and %s hold the same %d points, each exactly once, with equal values", a, b, len(ra))
}

// TestCompareDetectsDifferences makes sure the comparison used by the CI
// script can fail: sharded and compacted vs. whole is equal; a missing
// point, a duplicated row and a changed value are each reported.
func TestCompareDetectsDifferences(t *testing.T) {
	ctx := context.Background()
	s, err := Load("../studies/seed-moe.toml")
	if err != nil {
		t.Fatal(err)
	}
	whole, sharded := t.TempDir(), t.TempDir()
	if _, err := Run(ctx, s, RunOptions{Out: whole, Jobs: 2}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := Run(ctx, s, RunOptions{Out: sharded, Jobs: 2, Shard: Shard{i, 3}, FlushRows: 20}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dataset.Compact(ctx, sharded, dataset.CompactOptions{}); err != nil {
		t.Fatal(err)
	}
	if parts, _ := dataset.Parts(sharded); len(parts) != 1 {
		t.Fatalf("compacted into %d parts", len(parts))
	}
	if d, err := compareDatasets(whole, sharded); err != nil || len(d) != 0 {
		t.Fatalf("sharded+compacted vs whole: %v %v", err, d)
	}

	// a duplicated row: copy one part's rows again into the dataset
	dup := t.TempDir()
	copyDir(t, sharded, dup)
	parts, _ := dataset.Parts(dup)
	b, _ := os.ReadFile(parts[0])
	os.WriteFile(filepath.Join(dup, "part-copy-000001.parquet"), b, 0o644)
	if d, _ := compareDatasets(whole, dup); len(d) == 0 || !strings.Contains(d[0], "rows") {
		t.Errorf("duplicates not reported: %v", d)
	}

	// a missing point: one shard fewer
	miss := t.TempDir()
	for i := 0; i < 2; i++ {
		if _, err := Run(ctx, s, RunOptions{Out: miss, Jobs: 2, Shard: Shard{i, 3}}); err != nil {
			t.Fatal(err)
		}
	}
	if d, _ := compareDatasets(whole, miss); len(d) == 0 || !strings.Contains(strings.Join(d, "\n"), "is only in "+whole) {
		t.Errorf("missing points not reported: %v", d)
	}

	// a changed metric value
	changed := t.TempDir()
	writeStudyRows(t, s, changed, 17)
	if d, _ := compareDatasets(whole, changed); len(d) != 1 || !strings.Contains(d[0], "differs") {
		t.Errorf("changed value not reported: %v", d)
	}
	// and the same rows written by hand, unchanged, compare equal
	same := t.TempDir()
	writeStudyRows(t, s, same, -1)
	if d, _ := compareDatasets(whole, same); len(d) != 0 {
		t.Errorf("hand-written rows differ: %v", d)
	}
}

func mustParts(t *testing.T, dir string) []string {
	t.Helper()
	parts, err := dataset.Parts(dir)
	if err != nil {
		t.Fatal(err)
	}
	return parts
}

// writeStudyRows evaluates every point of s and writes the rows to dir,
// adding 1 to the first float metric of the point at combination alter
// (none if alter < 0).
func writeStudyRows(t *testing.T, s *Study, dir string, alter int64) {
	t.Helper()
	w, err := dataset.NewWriter(dir, "hand", s.Engine, map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	h := NewHasher(s)
	metric := -1
	for i, m := range s.Engine.Metrics() {
		if m.Kind == engine.Float && metric < 0 {
			metric = i
		}
	}
	for idx := int64(0); idx < s.Combinations(); idx++ {
		r := &dataset.Row{Params: make([]engine.Value, len(s.Engine.Params())), Metrics: make([]engine.Value, len(s.Engine.Metrics()))}
		s.Fill(idx, r.Params)
		if err := s.Engine.Resolve(s.Dir, r.Params); err != nil {
			t.Fatal(err)
		}
		if err := s.Engine.Evaluate(context.Background(), r.Params, r.Metrics); err != nil {
			t.Fatal(err)
		}
		if idx == alter {
			r.Metrics[metric].F++
		}
		r.ID, r.Status, r.Finished = mustID(t, h, r.Params).String(), dataset.StatusOK, time.Now()
		w.Append(r)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	for _, p := range mustParts(t, from) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, filepath.Base(p)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
