package dataset

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"

	"github.com/sweep-dse/sweep/engine"
)

// testEngine is a minimal engine: the dataset only needs its columns.
type testEngine struct{}

func (testEngine) Name() string    { return "test" }
func (testEngine) Version() string { return "7" }
func (testEngine) Params() []engine.Param {
	return []engine.Param{{Name: "a", Kind: engine.Int}, {Name: "b", Kind: engine.String}, {Name: "c", Kind: engine.Bool}}
}
func (testEngine) Metrics() []engine.Field {
	return []engine.Field{{Name: "m", Kind: engine.Float}, {Name: "n", Kind: engine.Int}}
}
func (testEngine) Resolve(string, []engine.Value) error                           { return nil }
func (testEngine) Evaluate(context.Context, []engine.Value, []engine.Value) error { return nil }

func testMeta(study string) map[string]string {
	return map[string]string{MetaStudy: study, MetaStudyName: "t", MetaEngine: "test", MetaEngineVersion: "7", MetaToolVersion: "0.0.1"}
}

// writeParts writes parts of the given row counts through a Writer; row i
// of the whole set gets point i (a failed row every 5th).
func writeParts(t *testing.T, dir, stem string, first int, sizes []int, study string) int {
	t.Helper()
	w, err := NewWriter(dir, stem, testEngine{}, testMeta(study))
	if err != nil {
		t.Fatal(err)
	}
	i := first
	for _, n := range sizes {
		for range n {
			r := Row{
				ID:       fmt.Sprintf("%032x", i),
				Status:   StatusOK,
				Params:   []engine.Value{engine.IntV(int64(i)), engine.StringV(fmt.Sprint("v", i%3)), engine.BoolV(i%2 == 0)},
				Metrics:  []engine.Value{engine.FloatV(float64(i) / 3), engine.IntV(int64(i * i))},
				Elapsed:  time.Duration(i) * time.Microsecond,
				Finished: time.Unix(1700000000+int64(i), 0),
			}
			if i%5 == 0 {
				r.Status, r.Error = StatusFailed, fmt.Sprint("boom ", i)
			}
			w.Append(&r)
			i++
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	return i
}

// visibleRows returns every row of the dataset's visible parts, each
// formatted as one string of all its columns, sorted.
func visibleRows(t *testing.T, dir string) []string {
	t.Helper()
	parts, err := Parts(dir)
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, p := range parts {
		pf, fr, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		rr, err := fr.GetRecordReader(context.Background(), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		for rr.Next() {
			rec := rr.RecordBatch()
			for i := 0; i < int(rec.NumRows()); i++ {
				var b strings.Builder
				for c := 0; c < int(rec.NumCols()); c++ {
					fmt.Fprintf(&b, "%s=%s|", rec.ColumnName(c), rec.Column(c).ValueStr(i))
				}
				rows = append(rows, b.String())
			}
		}
		if err := rr.Err(); err != nil {
			t.Fatal(err)
		}
		rr.Release()
		pf.Close()
	}
	slices.Sort(rows)
	return rows
}

func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tmpPrefix) || e.Name() == JournalName {
			out = append(out, e.Name())
		}
	}
	return out
}

func sizeOf(t *testing.T, p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func TestCompactMergesLosslessly(t *testing.T) {
	dir := t.TempDir()
	n := writeParts(t, dir, "s0of2-a", 0, []int{7, 3, 11, 1, 5, 9, 2, 8}, "study A")
	n = writeParts(t, dir, "s1of2-a", n, []int{4, 6, 10}, "study A")
	// another study revision: never merged with the others
	n = writeParts(t, dir, "all-b", n, []int{5, 5}, "study A, edited")
	small, _ := Parts(dir)
	target := 4 * sizeOf(t, small[0]) // a few parts per merged part
	// a part at least the target size stays as it is
	writeParts(t, dir, "all-big", n, []int{3000}, "study A")
	parts, _ := Parts(dir)
	var bigPart string
	for _, p := range parts {
		if strings.Contains(p, "all-big") {
			bigPart = p
		}
	}
	if sizeOf(t, bigPart) < target {
		t.Fatalf("test setup: big part %d bytes is below the target %d", sizeOf(t, bigPart), target)
	}
	before := visibleRows(t, dir)
	bigBefore, _ := os.ReadFile(bigPart)

	res, err := Compact(context.Background(), dir, CompactOptions{TargetSize: target})
	if err != nil {
		t.Fatal(err)
	}
	after := visibleRows(t, dir)
	if !slices.Equal(before, after) {
		t.Fatalf("rows changed: %d before, %d after", len(before), len(after))
	}
	if len(res.Merges) == 0 || res.PartsAfter >= res.PartsBefore {
		t.Fatalf("nothing merged: %+v", res)
	}
	got, _ := Parts(dir)
	if len(got) != res.PartsAfter {
		t.Errorf("result says %d parts, folder has %d", res.PartsAfter, len(got))
	}
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("left behind: %v", l)
	}
	if b, err := os.ReadFile(bigPart); err != nil || string(b) != string(bigBefore) {
		t.Errorf("the part above the target size was touched (%v)", err)
	}
	remerged := map[string]bool{} // outputs merged again in a later pass
	for _, m := range res.Merges {
		for _, in := range m.Inputs {
			remerged[in] = true
		}
	}
	for _, m := range res.Merges {
		if len(m.Inputs) < 2 || m.InputBytes > target {
			t.Errorf("bad merge group: %d inputs, %d bytes (target %d)", len(m.Inputs), m.InputBytes, target)
		}
		if remerged[m.Output] {
			continue
		}
		meta, err := Metadata(m.Output)
		if err != nil {
			t.Fatal(err)
		}
		var rows int64
		for _, in := range m.Inputs {
			if _, err := os.Stat(in); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("input %s still exists", in)
			}
		}
		err = Scan(context.Background(), m.Output, []string{ColID, ColStatus}, func(rec arrow.RecordBatch) error {
			rows += rec.NumRows()
			return nil
		})
		if err != nil || rows != m.Rows {
			t.Errorf("%s: %d rows, merge says %d (%v)", m.Output, rows, m.Rows, err)
		}
		want := "study A"
		if strings.Contains(filepath.Base(m.Inputs[0]), "all-b") {
			want = "study A, edited"
		}
		for _, in := range m.Inputs {
			if strings.Contains(filepath.Base(in), "all-b") != (want == "study A, edited") {
				t.Errorf("parts of two study revisions merged: %v", m.Inputs)
			}
		}
		for k, v := range testMeta(want) {
			if meta[k] != v {
				t.Errorf("%s: metadata %s = %q, want %q", m.Output, k, meta[k], v)
			}
		}
	}
	// merged parts store the schema the writer stores, so they merge with
	// the writer's parts again
	mm, err1 := Metadata(res.Merges[0].Output)
	bm, err2 := Metadata(bigPart)
	if err1 != nil || err2 != nil || mm[arrowSchemaKey] == "" || mm[arrowSchemaKey] != bm[arrowSchemaKey] {
		t.Errorf("merged part's stored schema differs from a written part's (%v, %v)", err1, err2)
	}
	// a second compaction has nothing left to do
	res2, err := Compact(context.Background(), dir, CompactOptions{TargetSize: target})
	if err != nil {
		t.Fatal(err)
	}
	if len(res2.Merges) != 0 || res2.PartsAfter != res2.PartsBefore || res2.PartsBefore != res.PartsAfter {
		t.Errorf("second compaction did something: %+v", res2)
	}
	if !slices.Equal(before, visibleRows(t, dir)) {
		t.Fatal("rows changed by the second compaction")
	}
}

func TestCompactDryRunChangesNothing(t *testing.T) {
	dir := t.TempDir()
	writeParts(t, dir, "all", 0, []int{3, 4, 5}, "s")
	parts, _ := Parts(dir)
	res, err := Compact(context.Background(), dir, CompactOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Merges) != 1 || len(res.Merges[0].Inputs) != 3 || res.PartsAfter != 1 {
		t.Fatalf("dry run plan: %+v", res)
	}
	after, _ := Parts(dir)
	if !slices.Equal(parts, after) {
		t.Fatalf("dry run changed the parts: %v -> %v", parts, after)
	}
}

// crashSteps are the points of a merge where the helper process kills
// itself with SIGKILL.
var crashSteps = []string{"temp-written", "verified", "journal-written", "committed", "deleted-1", "deleted-2", "inputs-deleted", "done"}

// TestCompactCrashHelper is the process killed by TestCompactSurvivesKill.
func TestCompactCrashHelper(t *testing.T) {
	dir, step := os.Getenv("SWEEP_COMPACT_CRASH_DIR"), os.Getenv("SWEEP_COMPACT_CRASH_STEP")
	if dir == "" {
		t.Skip("helper process")
	}
	compactHook = func(s string) {
		if s == step {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
	if _, err := Compact(context.Background(), dir, CompactOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Fatalf("step %s never reached", step)
}

func TestCompactSurvivesKill(t *testing.T) {
	for _, step := range crashSteps {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			writeParts(t, dir, "s0of3", 0, []int{5, 6, 7}, "s")
			before := visibleRows(t, dir)
			cmd := exec.Command(os.Args[0], "-test.run=^TestCompactCrashHelper$", "-test.count=1")
			cmd.Env = append(os.Environ(), "SWEEP_COMPACT_CRASH_DIR="+dir, "SWEEP_COMPACT_CRASH_STEP="+step)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("helper was not killed at %s: %v\n%s", step, err, out)
			}
			// what resume and status see right after the crash: every row once
			if got := visibleRows(t, dir); !slices.Equal(before, got) {
				t.Fatalf("after a kill at %s the visible rows changed: %d before, %d after", step, len(before), len(got))
			}
			var ids []string
			if _, err := Index(context.Background(), dir, func(e Entry) { ids = append(ids, e.ID) }); err != nil {
				t.Fatal(err)
			}
			if len(ids) != len(before) || len(slices.Compact(slices.Sorted(slices.Values(ids)))) != len(before) {
				t.Fatalf("after a kill at %s Index sees %d rows, want %d distinct", step, len(ids), len(before))
			}
			_, jerr := os.Stat(filepath.Join(dir, JournalName))
			pending := PendingCompaction(dir)
			if (jerr == nil) != (pending != "") {
				t.Errorf("journal present: %v, PendingCompaction says %q", jerr == nil, pending)
			}
			// the next compaction recovers and finishes
			res, err := Compact(context.Background(), dir, CompactOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if (jerr == nil) != (res.Recovered != "") {
				t.Errorf("journal present: %v, recovery says %q", jerr == nil, res.Recovered)
			}
			if got := visibleRows(t, dir); !slices.Equal(before, got) {
				t.Fatalf("after recovery from a kill at %s the rows changed: %d before, %d after", step, len(before), len(got))
			}
			if l := leftovers(t, dir); len(l) > 0 {
				t.Errorf("left behind after recovery: %v", l)
			}
			if parts, _ := Parts(dir); len(parts) != 1 {
				t.Errorf("after recovery: %d parts, want 1", len(parts))
			}
			if all, _ := filepath.Glob(filepath.Join(dir, "*"+PartExt)); len(all) != 1 {
				t.Errorf("after recovery: %d part files on disk, want 1: %v", len(all), all)
			}
		})
	}
}

func TestPartsHideInputsOnlyAfterCommit(t *testing.T) {
	dir := t.TempDir()
	writeParts(t, dir, "all", 0, []int{2, 2}, "s")
	parts, _ := Parts(dir)
	j := &journal{Version: 1, Output: "part-compact-x-1-000001.parquet", Rows: 4, Digest: "00"}
	for _, p := range parts {
		j.Inputs = append(j.Inputs, filepath.Base(p))
	}
	if err := writeJournal(dir, j); err != nil {
		t.Fatal(err)
	}
	if got, _ := Parts(dir); !slices.Equal(got, parts) {
		t.Fatalf("uncommitted merge hides inputs: %v", got)
	}
	// commit: the merged part appears
	b, _ := os.ReadFile(parts[0])
	if err := os.WriteFile(filepath.Join(dir, j.Output), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := Parts(dir); len(got) != 1 || filepath.Base(got[0]) != j.Output {
		t.Fatalf("committed merge: Parts = %v, want only the merged part", got)
	}
	// a journal naming files outside the folder is ignored and refused
	j.Inputs = []string{"../x" + PartExt}
	if err := writeJournal(dir, j); err != nil {
		t.Fatal(err)
	}
	if _, err := Compact(context.Background(), dir, CompactOptions{}); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("damaged journal: err = %v", err)
	}
}

func TestCompactAndRunsExcludeEachOther(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeParts(t, dir, "all", 0, []int{2, 2}, "s")
	run, err := LockShared(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	// two runs share it
	run2, err := LockShared(ctx, dir, func() { t.Error("a second run had to wait") })
	if err != nil {
		t.Fatal(err)
	}
	run2.Release()
	var be *BusyError
	if _, err := Compact(ctx, dir, CompactOptions{}); !errors.As(err, &be) {
		t.Fatalf("compact under a run: err = %v, want BusyError", err)
	}
	if parts, _ := Parts(dir); len(parts) != 2 {
		t.Fatalf("compact under a run changed the parts: %v", parts)
	}
	// with --wait it proceeds once the run ends
	go func() { time.Sleep(200 * time.Millisecond); run.Release() }()
	res, err := Compact(ctx, dir, CompactOptions{Wait: 10 * time.Second})
	if err != nil || len(res.Merges) != 1 {
		t.Fatalf("compact after the run: %+v, %v", res, err)
	}
	// a run waits for a compaction to finish
	cl, err := LockExclusive(ctx, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan bool, 1)
	go func() { time.Sleep(200 * time.Millisecond); cl.Release() }()
	l, err := LockShared(ctx, dir, func() { waited <- true })
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	select {
	case <-waited:
	default:
		t.Fatal("the run did not wait for the compaction")
	}
	// and stops waiting when told to
	cl2, _ := LockExclusive(ctx, dir, 0)
	defer cl2.Release()
	cctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	defer cancel()
	if _, err := LockShared(cctx, dir, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled wait: err = %v", err)
	}
}

// TestCompactKeepsTheEncodings: a merged part has the encodings of the
// parts sweep run writes (integers delta-encoded, numbers never in a
// dictionary, point_id DELTA_LENGTH_BYTE_ARRAY) and is no larger than its
// inputs together.
func TestCompactKeepsTheEncodings(t *testing.T) {
	dir := t.TempDir()
	e, rows := seedRows(t, 4000)
	var inputs int64
	for i := 0; i < 4; i++ {
		w, err := NewWriter(dir, fmt.Sprintf("all-%d", i), e, map[string]string{MetaStudy: "s"})
		if err != nil {
			t.Fatal(err)
		}
		for j := i * 1000; j < (i+1)*1000; j++ {
			rows[j].ID = fmt.Sprintf("%032x", j)
			w.Append(&rows[j])
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		inputs += sizeOf(t, w.Written()[0])
	}
	if _, err := Compact(context.Background(), dir, CompactOptions{TargetSize: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	parts, _ := Parts(dir)
	if len(parts) != 1 {
		t.Fatalf("parts %v", parts)
	}
	if got := sizeOf(t, parts[0]); got > inputs {
		t.Errorf("merged part %d bytes, its inputs %d", got, inputs)
	}
	pf, _, err := Open(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	rg := pf.MetaData().RowGroup(0)
	for i := 0; i < rg.NumColumns(); i++ {
		cc, _ := rg.ColumnChunk(i)
		encs := cc.Encodings()
		name := cc.PathInSchema().String()
		if name == ColID && !slices.Contains(encs, parquet.Encodings.DeltaLengthByteArray) {
			t.Errorf("%s: %v, want DELTA_LENGTH_BYTE_ARRAY", name, encs)
		}
		switch cc.Type() {
		case parquet.Types.Int64:
			if !slices.Contains(encs, parquet.Encodings.DeltaBinaryPacked) {
				t.Errorf("%s: %v, want DELTA_BINARY_PACKED", name, encs)
			}
		case parquet.Types.Double:
			if slices.Contains(encs, parquet.Encodings.RLEDict) || slices.Contains(encs, parquet.Encodings.PlainDict) {
				t.Errorf("%s: %v, want no dictionary", name, encs)
			}
		}
	}
}
