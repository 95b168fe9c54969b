package sweep

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sweep-dse/sweep/dataset"
	"github.com/sweep-dse/sweep/engine"
)

// fakeEngine squares x; it fails points with x%failEvery == 0 while failing
// is set.
type fakeEngine struct {
	version   string
	failing   atomic.Bool
	failEvery int64
}

func (f *fakeEngine) Name() string    { return "fake" }
func (f *fakeEngine) Version() string { return f.version }
func (f *fakeEngine) Params() []engine.Param {
	return []engine.Param{{Name: "x", Kind: engine.Int, Default: engine.IntV(0)}, {Name: "seed", Kind: engine.Int, Default: engine.IntV(1)}}
}
func (f *fakeEngine) Metrics() []engine.Field {
	return []engine.Field{{Name: "y", Kind: engine.Int}, {Name: "half", Kind: engine.Float}}
}
func (f *fakeEngine) Resolve(dir string, p []engine.Value) error {
	for i, pr := range f.Params() {
		if !p[i].IsSet() {
			p[i] = pr.Default
		}
	}
	return nil
}
func (f *fakeEngine) Evaluate(ctx context.Context, p, out []engine.Value) error {
	x := p[0].I
	if f.failing.Load() && x%f.failEvery == 0 {
		return fmt.Errorf("simulated failure at x = %d", x)
	}
	out[0] = engine.IntV(x * x)
	out[1] = engine.FloatV(float64(x) / 2)
	return nil
}

func withFake(t *testing.T, f *fakeEngine) {
	Engines["fake"] = func(*Study, map[string]any) (engine.Engine, error) { return f, nil }
	t.Cleanup(func() { delete(Engines, "fake") })
}

func fakeStudy(t *testing.T, n int) *Study {
	text := fmt.Sprintf("[study]\nname = \"fake\"\nengine = \"fake\"\n[axes]\nx = {from = 1, to = %d, step = 1}\n", n)
	s, err := Parse("fake.toml", text)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rows reads point_id -> status of a dataset, failing on duplicates.
func rows(t *testing.T, dir string) map[string]string {
	t.Helper()
	parts, _ := dataset.Parts(dir)
	out := map[string]string{}
	for _, p := range parts {
		err := dataset.Scan(context.Background(), p, []string{dataset.ColID, dataset.ColStatus}, func(rec arrow.RecordBatch) error {
			ids, st := rec.Column(0).(*array.String), rec.Column(1).(*array.String)
			for i := 0; i < ids.Len(); i++ {
				if _, dup := out[ids.Value(i)]; dup {
					t.Fatalf("point %s twice", ids.Value(i))
				}
				out[ids.Value(i)] = st.Value(i)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestRetryFailedReplacesRows(t *testing.T) {
	f := &fakeEngine{version: "1", failEvery: 7}
	f.failing.Store(true)
	withFake(t, f)
	s := fakeStudy(t, 100)
	dir := t.TempDir()
	res, err := Run(context.Background(), s, RunOptions{Out: dir, Jobs: 2, FlushRows: 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 14 || res.OK != 86 {
		t.Fatalf("ok %d failed %d", res.OK, res.Failed)
	}
	// a plain resume does not rerun failed points
	res, err = Run(context.Background(), s, RunOptions{Out: dir})
	if err != nil || res.Ran != 0 || res.Plan.Failed != 14 {
		t.Fatalf("resume ran %d (failed %d): %v", res.Ran, res.Plan.Failed, err)
	}
	f.failing.Store(false)
	res, err = Run(context.Background(), s, RunOptions{Out: dir, RetryFailed: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ran != 14 || res.OK != 14 {
		t.Fatalf("retry ran %d ok %d", res.Ran, res.OK)
	}
	got := rows(t, dir)
	if len(got) != 100 {
		t.Fatalf("%d points", len(got))
	}
	for id, st := range got {
		if st != dataset.StatusOK {
			t.Fatalf("point %s is %s", id, st)
		}
	}
}

// TestInterruptedRetryIsCleanedUp: a --retry-failed run stopped after it
// wrote the retried points' ok rows but before it dropped their failed rows
// leaves both (simulated by putting the old parts back, then compacting so
// that ok and failed rows of a point share a part); the next plain run
// drops the failed rows and keeps every ok row.
func TestInterruptedRetryIsCleanedUp(t *testing.T) {
	f := &fakeEngine{version: "1", failEvery: 7}
	f.failing.Store(true)
	withFake(t, f)
	s := fakeStudy(t, 100)
	dir := t.TempDir()
	if _, err := Run(context.Background(), s, RunOptions{Out: dir, Jobs: 2, FlushRows: 10}); err != nil {
		t.Fatal(err)
	}
	old, _ := dataset.Parts(dir)
	saved := map[string][]byte{}
	for _, p := range old {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		saved[p] = b
	}
	f.failing.Store(false)
	if res, err := Run(context.Background(), s, RunOptions{Out: dir, RetryFailed: true}); err != nil || res.OK != 14 {
		t.Fatalf("retry: %v", err)
	}
	for p, b := range saved { // the failed rows are back
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dataset.Compact(context.Background(), dir, dataset.CompactOptions{}); err != nil {
		t.Fatal(err)
	}
	pl, err := Expand(context.Background(), s, dir, PlanOptions{})
	if err != nil || pl.Superseded != 14 || pl.Done != 100 || len(pl.SupersededParts) != 1 {
		t.Fatalf("plan: superseded %d in %v, done %d: %v", pl.Superseded, pl.SupersededParts, pl.Done, err)
	}
	var log strings.Builder
	res, err := Run(context.Background(), s, RunOptions{Out: dir, Log: &log})
	if err != nil || res.Ran != 0 {
		t.Fatalf("run after the interrupted retry: ran %d: %v", res.Ran, err)
	}
	if !strings.Contains(log.String(), "dropped 14 failed rows of points that have an ok row") {
		t.Errorf("log: %q", log.String())
	}
	got := rows(t, dir) // fails on a point with two rows
	if len(got) != 100 {
		t.Fatalf("%d points", len(got))
	}
	for id, st := range got {
		if st != dataset.StatusOK {
			t.Fatalf("point %s is %s", id, st)
		}
	}
}

func TestFailedRowsCarryTheError(t *testing.T) {
	f := &fakeEngine{version: "1", failEvery: 10}
	f.failing.Store(true)
	withFake(t, f)
	dir := t.TempDir()
	if _, err := Run(context.Background(), fakeStudy(t, 30), RunOptions{Out: dir}); err != nil {
		t.Fatal(err)
	}
	parts, _ := dataset.Parts(dir)
	var errs []string
	for _, p := range parts {
		dataset.Scan(context.Background(), p, []string{dataset.ColStatus, dataset.ColError, "y"}, func(rec arrow.RecordBatch) error {
			for i := 0; i < int(rec.NumRows()); i++ {
				if rec.Column(0).(*array.String).Value(i) == dataset.StatusFailed {
					errs = append(errs, rec.Column(1).(*array.String).Value(i))
					if rec.Column(2).IsValid(i) {
						t.Error("failed row has a metric value")
					}
				}
			}
			return nil
		})
	}
	if len(errs) != 3 || !strings.HasPrefix(errs[0], "simulated failure at x = ") {
		t.Fatalf("failed rows: %q", errs)
	}
}

func TestEngineVersionChangeKeepsOldRowsApart(t *testing.T) {
	f := &fakeEngine{version: "1", failEvery: 1}
	withFake(t, f)
	dir := t.TempDir()
	s := fakeStudy(t, 20)
	if _, err := Run(context.Background(), s, RunOptions{Out: dir}); err != nil {
		t.Fatal(err)
	}
	before, _ := dataset.Parts(dir)
	f.version = "2"
	// not while a run (of the old version) still writes: its rows would
	// keep coming beside the new version's
	held, _, err := AcquireLock(dir, lockName(Shard{0, 2}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), s, RunOptions{Out: dir, Shard: Shard{1, 2}}); err == nil || !strings.Contains(err.Error(), "another run (.lock-shard-0-of-2) is still writing it") {
		t.Fatalf("a new version beside a running old one: %v", err)
	}
	held.Release()
	var log strings.Builder
	res, err := Run(context.Background(), s, RunOptions{Out: dir, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ran != 20 || len(res.ArchivedOldVersion) != len(before) {
		t.Fatalf("ran %d archived %v", res.Ran, res.ArchivedOldVersion)
	}
	if !strings.Contains(log.String(), "model version 1 (now 2)") {
		t.Fatalf("no message: %s", log.String())
	}
	if got := rows(t, dir); len(got) != 20 {
		t.Fatalf("%d rows in the main folder", len(got))
	}
	old, _ := filepath.Glob(filepath.Join(dir, dataset.ArchiveDir, "fake-v1", "*.parquet"))
	if len(old) != len(before) {
		t.Fatalf("archive: %v", old)
	}
}

func TestSecondRunIsRefused(t *testing.T) {
	dir := t.TempDir()
	l, _, err := AcquireLock(dir, lockName(All))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeEngine{version: "1", failEvery: 1}
	withFake(t, f)
	_, err = Run(context.Background(), fakeStudy(t, 5), RunOptions{Out: dir})
	var le *LockedError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "in use by another sweep run (pid ") {
		t.Fatalf("second run: %v", err)
	}
	l.Release()
	if _, err := Run(context.Background(), fakeStudy(t, 5), RunOptions{Out: dir}); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

// TestInvalidStudyLeavesNoFolder: a run that stops at an invalid point
// before writing anything removes the dataset folder it created (and its
// lock files); an existing folder stays.
func TestInvalidStudyLeavesNoFolder(t *testing.T) {
	s, err := Parse("bad.toml", "[study]\nname = \"x\"\n[axes]\nnum_experts = [2]\ntop_k = [1, 4]\n")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "new")
	var ie *InputError
	if _, err := Run(context.Background(), s, RunOptions{Out: dir}); !errors.As(err, &ie) {
		t.Fatalf("run: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the folder is left behind: %v", err)
	}
	existing := t.TempDir()
	if _, err := Run(context.Background(), s, RunOptions{Out: existing}); !errors.As(err, &ie) {
		t.Fatalf("run: %v", err)
	}
	if _, err := os.Stat(existing); err != nil {
		t.Fatalf("an existing folder was removed: %v", err)
	}
}

// TestAnotherStudyIsRefused: a run into a folder written from another
// study is refused as bad input (--out), leaving the folder as it was;
// with MixStudies (--mix-studies) it adds its rows and says so.
func TestAnotherStudyIsRefused(t *testing.T) {
	f := &fakeEngine{version: "1", failEvery: 1}
	withFake(t, f)
	dir := t.TempDir()
	if _, err := Run(context.Background(), fakeStudy(t, 5), RunOptions{Out: dir}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	s := fakeStudy(t, 7)
	s.Name = "other"
	var ie *InputError
	_, err := Run(context.Background(), s, RunOptions{Out: dir})
	if !errors.As(err, &ie) || ie.Key != "--out" || !strings.Contains(err.Error(), `holds rows of study "fake", and this is study "other"`) {
		t.Fatalf("run of another study: %v", err)
	}
	if after := snapshot(t, dir); !maps.Equal(before, after) {
		t.Fatalf("the refused run changed the folder:\nbefore %v\nafter  %v", before, after)
	}
	var log strings.Builder
	if _, err := Run(context.Background(), s, RunOptions{Out: dir, Log: &log, MixStudies: true}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), `holds rows of study "fake"; this run adds the points of study "other"`) {
		t.Fatalf("log: %q", log.String())
	}
	log.Reset()
	if _, err := Run(context.Background(), s, RunOptions{Out: dir, Log: &log, MixStudies: true}); err != nil || !strings.Contains(log.String(), "holds rows of study") {
		t.Fatalf("a resume of the mixed dataset: %v %q", err, log.String())
	}
	// the first study, run again, finds the other one's rows too
	if _, err := Run(context.Background(), fakeStudy(t, 5), RunOptions{Out: dir}); !errors.As(err, &ie) || !strings.Contains(err.Error(), `holds rows of study "other"`) {
		t.Fatalf("run of the first study into the mixed folder: %v", err)
	}
}

// snapshot maps every file under dir but the run locks (.lock*, which a
// run takes whether it writes or not) to its size and modification time.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".lock") {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		m[p] = fmt.Sprint(fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestOtherShardingIsRefused checks that runs whose point sets overlap do
// not write one dataset at once: while shards of 2 run, a run without
// --shard and a shard of 3 are refused, and another shard of 2 is not;
// while a run without --shard runs, a shard is refused.
func TestOtherShardingIsRefused(t *testing.T) {
	dir := t.TempDir()
	f := &fakeEngine{version: "1", failEvery: 1}
	withFake(t, f)
	held, err := acquireSharding(dir, 2) // a running shard i/2
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range []Shard{All, {0, 3}, {2, 3}} {
		_, err := Run(context.Background(), fakeStudy(t, 5), RunOptions{Out: dir, Shard: sh})
		var se *ShardingError
		if !errors.As(err, &se) || se.Other != 2 || !strings.Contains(err.Error(), "being written by a sweep run with --shard i/2") {
			t.Fatalf("shard %v beside shards of 2: %v", sh, err)
		}
	}
	if _, err := Run(context.Background(), fakeStudy(t, 5), RunOptions{Out: dir, Shard: Shard{1, 2}}); err != nil {
		t.Fatalf("shard 1/2 beside another shard of 2: %v", err)
	}
	held.Release()
	held, err = acquireSharding(dir, 1) // a running run without --shard
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), fakeStudy(t, 5), RunOptions{Out: dir, Shard: Shard{0, 2}})
	if !strings.Contains(fmt.Sprint(err), "being written by a sweep run without --shard") {
		t.Fatalf("shard beside a run without --shard: %v", err)
	}
	held.Release()
	if _, err := Run(context.Background(), fakeStudy(t, 5), RunOptions{Out: dir, Shard: Shard{0, 3}}); err != nil {
		t.Fatalf("after the other runs ended: %v", err)
	}
}

func TestStaleLockIsTakenOver(t *testing.T) {
	dir := t.TempDir()
	// a lock file left by a dead process: content but no flock
	os.WriteFile(filepath.Join(dir, ".lock"), []byte("pid 999999 on elsewhere since 2020-01-01T00:00:00Z\n"), 0o644)
	f := &fakeEngine{version: "1", failEvery: 1}
	withFake(t, f)
	var log strings.Builder
	if _, err := Run(context.Background(), fakeStudy(t, 5), RunOptions{Out: dir, Log: &log}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "taking over a lock left by a run") || !strings.Contains(log.String(), "pid 999999") {
		t.Fatalf("log: %s", log.String())
	}
}

func TestCorruptPartIsQuarantined(t *testing.T) {
	f := &fakeEngine{version: "1", failEvery: 1}
	withFake(t, f)
	dir := t.TempDir()
	s := fakeStudy(t, 50)
	if _, err := Run(context.Background(), s, RunOptions{Out: dir, FlushRows: 10}); err != nil {
		t.Fatal(err)
	}
	parts, _ := dataset.Parts(dir)
	before := len(rows(t, dir))
	os.Rename(parts[1], parts[1]+".aside")
	inPart := int64(before - len(rows(t, dir)))
	os.Rename(parts[1]+".aside", parts[1])
	data, _ := os.ReadFile(parts[1])
	os.WriteFile(parts[1], data[:len(data)/2], 0o644) // truncated
	var log strings.Builder
	res, err := Run(context.Background(), s, RunOptions{Out: dir, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Quarantined) != 1 || res.Ran != inPart || inPart == 0 {
		t.Fatalf("quarantined %v, ran %d", res.Quarantined, res.Ran)
	}
	if !strings.Contains(log.String(), "moved to") {
		t.Fatalf("log: %s", log.String())
	}
	if got := rows(t, dir); len(got) != 50 {
		t.Fatalf("%d rows", len(got))
	}
}

func TestInterruptedRunSaysHowToResume(t *testing.T) {
	f := &fakeEngine{version: "1", failEvery: 1}
	withFake(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, fakeStudy(t, 5), RunOptions{Out: t.TempDir(), Resume: "sweep run fake.toml"})
	if err == nil {
		t.Fatal("no error")
	}
	var ir *Interrupted
	if errors.As(err, &ir) && !strings.Contains(err.Error(), "resume with: sweep run fake.toml") {
		t.Fatalf("%v", err)
	}
}

// TestShardingProbesDoNotCollide: runs of one sharding starting together
// all probe the lock file of another sharding (left by an earlier run) at
// the same moment; none of them may take the others' probes for a run.
func TestShardingProbesDoNotCollide(t *testing.T) {
	dir := t.TempDir()
	if l, err := acquireSharding(dir, 1); err != nil { // an earlier run without --shard
		t.Fatal(err)
	} else {
		l.Release()
	}
	for round := 0; round < 20; round++ {
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l, err := acquireSharding(dir, 4)
				if err != nil {
					errs <- err
					return
				}
				time.Sleep(time.Millisecond)
				l.Release()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}

// preparedFake is fakeEngine with a prepared resolution (engine.Preparer)
// that counts its points and, when wrongAt is set, gives that point's seed
// another value than Resolve does.
type preparedFake struct {
	*fakeEngine
	calls   atomic.Int64
	wrongAt int64
}

func (f *preparedFake) Prepare(dir string, base []engine.Value, vary []int) (func([]engine.Value) error, bool) {
	return func(p []engine.Value) error {
		f.calls.Add(1)
		if err := f.Resolve(dir, p); err != nil {
			return err
		}
		if p[0].I == f.wrongAt {
			p[1] = engine.IntV(2)
		}
		return nil
	}, true
}

// TestPreparedResolution checks that plans and runs resolve through an
// engine's prepared resolution, and that the plan holds it to Resolve on
// its sample: a prepared resolution that differs stops the plan.
func TestPreparedResolution(t *testing.T) {
	f := &preparedFake{fakeEngine: &fakeEngine{version: "1"}}
	Engines["fake"] = func(*Study, map[string]any) (engine.Engine, error) { return f, nil }
	t.Cleanup(func() { delete(Engines, "fake") })
	s := fakeStudy(t, 300)
	dir := filepath.Join(t.TempDir(), "ds")
	res, err := Run(context.Background(), s, RunOptions{Out: dir, Jobs: 2})
	if err != nil || res.OK != 300 {
		t.Fatalf("run: %v, %+v", err, res)
	}
	if n := f.calls.Load(); n != 600 { // the plan's and the run's
		t.Fatalf("prepared resolution ran %d times, want 600", n)
	}
	f.wrongAt = 200
	_, err = Expand(context.Background(), fakeStudy(t, 300), filepath.Join(t.TempDir(), "none"), PlanOptions{})
	if err == nil || !strings.Contains(err.Error(), "seed = 1 by Resolve, 2 by its prepared resolution") {
		t.Fatalf("plan with a wrong prepared resolution: %v", err)
	}
}

// TestJobsBeyondPoints: a run asked for more workers than it has points
// starts one per point (each holds a writer), and refuses more than
// MaxJobs.
func TestJobsBeyondPoints(t *testing.T) {
	withFake(t, &fakeEngine{version: "1"})
	dir := filepath.Join(t.TempDir(), "ds")
	res, err := Run(context.Background(), fakeStudy(t, 5), RunOptions{Out: dir, Jobs: 1000})
	if err != nil || res.OK != 5 || res.Jobs != 5 {
		t.Fatalf("run: %v, %+v", err, res)
	}
	if len(res.Parts) > 5 {
		t.Fatalf("%d parts for 5 points", len(res.Parts))
	}
	if got := rows(t, dir); len(got) != 5 {
		t.Fatalf("%d rows", len(got))
	}
	if _, err := Run(context.Background(), fakeStudy(t, 5), RunOptions{Out: dir, Jobs: MaxJobs + 1}); err == nil {
		t.Fatal("a run with more than MaxJobs jobs started")
	}
}
