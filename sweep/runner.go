package sweep

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sync/errgroup"

	"github.com/sweep-dse/sweep/dataset"
	"github.com/sweep-dse/sweep/engine"
)

// DefaultFlushRows is how many rows a run buffers, over all its workers,
// before each worker writes its share as a part. Rows in the buffer are what
// a crash can cost; larger parts cost less to write (per-part work: column
// chunk headers, statistics, the footer, a file). 32,768 rows wrote the
// 1M-point benchmark study 4 % faster than 16,384, at 110 MB of peak RSS
// against 95 (docs/performance.md, change 16).
const DefaultFlushRows = 1 << 15

// MaxJobs bounds RunOptions.Jobs (--jobs): each worker holds a Parquet
// writer (a few hundred KB with its buffers) and writes its own parts.
const MaxJobs = 1024

// RunOptions configures Run.
type RunOptions struct {
	Out         string        // dataset folder; "" = results/<study name>
	Jobs        int           // parallel evaluations, at most MaxJobs; 0 = CPU count (at most MaxJobs)
	Shard       Shard         // subset to run; zero = all
	RetryFailed bool          // rerun points whose row is failed
	Force       bool          // run above max_points
	FlushRows   int           // write a part every this many rows, over all workers (0 = DefaultFlushRows)
	FlushEvery  time.Duration // ... or this often (0 = 30 s)
	Discard     bool          // evaluate but write nothing (benchmarks)
	Progress    Progress      // nil = none
	Log         io.Writer     // messages; nil = discard
	ToolVersion string        // stored in part metadata
	Resume      string        // the command that resumes, for messages
	KeepWork    bool          // keep the work folders of successful points (external engines)
	MixStudies  bool          // add the points to a dataset written from another study (else refused)
}

// Result summarises a run.
type Result struct {
	Dir                string
	Plan               *Plan
	Ran, OK, Failed    int64
	Jobs               int // workers the run used: --jobs, or fewer when fewer points were pending
	Parts              []string
	Elapsed            time.Duration
	Quarantined        []string
	ArchivedOldVersion []string
}

// DefaultOut is the dataset folder of a study when --out is not given.
func DefaultOut(s *Study) string { return filepath.Join("results", s.Name) }

// Run evaluates the study's pending points in parallel and streams the rows
// into the dataset. On ctx cancellation it stops issuing points, writes what
// finished, and returns *Interrupted. A study with an invalid point fails
// before anything is written: for a dataset folder that does not exist yet,
// before the folder is created.
func Run(ctx context.Context, s *Study, o RunOptions) (*Result, error) {
	out := o.Out
	if out == "" {
		out = DefaultOut(s)
	}
	var pre *Plan
	if _, err := os.Stat(out); errors.Is(err, os.ErrNotExist) && !o.Discard {
		// plan first: nothing exists to be consistent with, and an invalid
		// point must leave no folder behind
		pl, err := Expand(ctx, s, out, PlanOptions{Shard: o.Shard, RetryFailed: o.RetryFailed, Force: o.Force})
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				return nil, &Interrupted{Resume: o.Resume}
			}
			return nil, err
		}
		pre = pl
	}
	return run(ctx, s, o, pre)
}

// run is Run; pre, when not nil, is the plan made before the dataset
// folder existed, used as long as no part has been written since.
func run(ctx context.Context, s *Study, o RunOptions, pre *Plan) (*Result, error) {
	start := time.Now()
	if o.Out == "" {
		o.Out = DefaultOut(s)
	}
	if o.Jobs > MaxJobs {
		return nil, fmt.Errorf("%d jobs: at most %d", o.Jobs, MaxJobs)
	}
	if o.Jobs <= 0 {
		o.Jobs = min(runtime.NumCPU(), MaxJobs)
	}
	if o.Shard.N == 0 {
		o.Shard = All
	}
	if o.FlushRows <= 0 {
		o.FlushRows = DefaultFlushRows
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = 30 * time.Second
	}
	if o.Progress == nil {
		o.Progress = NoProgress{}
	}
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", args...)
		}
	}
	res := &Result{Dir: o.Out}
	var lock *Lock
	if !o.Discard {
		if err := os.MkdirAll(o.Out, 0o755); err != nil {
			return nil, fmt.Errorf("results folder: %w", err)
		}
		l, stale, err := AcquireLock(o.Out, lockName(o.Shard))
		if err != nil {
			return nil, err
		}
		lock = l
		defer lock.Release()
		if stale != "" {
			logf("taking over a lock left by a run that ended without releasing it (%s)", stale)
		}
		// runs of another sharding would overlap this one
		sl, err := acquireSharding(o.Out, o.Shard.N)
		if err != nil {
			return nil, err
		}
		defer sl.Release()
		// held shared by every run, so no compaction starts under one
		dl, err := dataset.LockShared(ctx, o.Out, func() { logf("waiting for a compaction of %s to finish", o.Out) })
		if err != nil {
			return nil, err
		}
		defer dl.Release()
		if err := removeTemps(o.Out, o.Shard); err != nil {
			return nil, err
		}
	}
	pl := pre
	if parts, _ := dataset.Parts(o.Out); pl == nil || len(parts) > 0 {
		var err error
		pl, err = Expand(ctx, s, o.Out, PlanOptions{Shard: o.Shard, RetryFailed: o.RetryFailed, Force: o.Force})
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				return nil, &Interrupted{Resume: o.Resume}
			}
			return nil, err
		}
	}
	res.Plan = pl
	for _, n := range pl.Notes() {
		logf("%s", n)
	}
	if !o.Discard {
		// another study's dataset is most likely a wrong --out: adding
		// these points would leave one dataset of two studies, whose
		// status and charts follow only the newest
		if other := OtherStudy(o.Out, s.Name); other != "" {
			if !o.MixStudies {
				return nil, OtherStudyError(o.Out, other, s.Name, "--mix-studies")
			}
			logf("note: %s holds rows of study %q; this run adds the points of study %q to them (best, pareto and report read every row; status checks the newest study)", o.Out, other, s.Name)
		}
		if err := dropSuperseded(ctx, o.Out, pl, logf); err != nil {
			return nil, err
		}
		for _, b := range pl.Bad {
			dst, err := dataset.Quarantine(b.Path)
			if err != nil {
				return nil, fmt.Errorf("quarantine %s: %w", b.Path, err)
			}
			logf("warning: %v; moved to %s, its points will be recomputed", b, dst)
			res.Quarantined = append(res.Quarantined, dst)
		}
		if len(pl.Stale) > 0 {
			// runs still writing the old version would keep adding its
			// rows beside the new one's
			if other := otherRunHolding(o.Out, lockName(o.Shard)); other != "" {
				return nil, fmt.Errorf("dataset %s holds rows of another model version of %s, and another run (%s) is still writing it; wait for it to finish, then run again (its rows are then archived)", o.Out, s.Engine.Name(), other)
			}
			moved, err := archiveOldVersions(o.Out, s.Engine)
			if err != nil {
				return nil, err
			}
			res.ArchivedOldVersion = moved
			for v, n := range pl.Stale {
				logf("note: %d rows of %s model version %s (now %s) moved to %s; they are kept apart, not mixed with this run", n, s.Engine.Name(), v, s.Engine.Version(), filepath.Join(o.Out, dataset.ArchiveDir))
			}
		}
	}
	// engines that run programs get a work folder per point under the
	// dataset (the leading underscore keeps dataset readers out of it)
	if wd, ok := s.Engine.(interface {
		SetWorkDir(dir string, keep bool) func()
	}); ok {
		dir := filepath.Join(o.Out, "_work")
		if o.Discard {
			dir = filepath.Join(os.TempDir(), fmt.Sprintf("sweep-work-%d", os.Getpid()))
		}
		defer wd.SetWorkDir(dir, o.KeepWork)()
	}
	total := pl.Pending.Count()
	if pl.Done > 0 || pl.Failed > 0 {
		logf("resuming: %d of %d points already done, %d failed%s, %d to run", pl.Done, pl.Points, pl.Failed, map[bool]string{true: " (retrying)", false: ""}[o.RetryFailed], total)
	}
	o.Progress.Start(total)
	if total == 0 {
		o.Progress.Finish()
		res.Elapsed = time.Since(start)
		return res, nil
	}

	// no more workers than points: each holds a writer and its buffers
	o.Jobs = int(min(int64(o.Jobs), total))
	res.Jobs = o.Jobs

	// One writer per worker: rows are encoded where they are computed, so
	// writing scales with --jobs and nothing funnels through one goroutine.
	// Each buffers FlushRows/jobs rows, so memory does not grow with the study.
	writers := make(chan *dataset.Writer, o.Jobs)
	var all []*dataset.Writer
	flushRows := max(1, o.FlushRows/o.Jobs)
	meta := map[string]string{
		dataset.MetaStudy: s.Text, dataset.MetaStudyName: s.Name,
		dataset.MetaEngine: s.Engine.Name(), dataset.MetaEngineVersion: s.Engine.Version(),
		dataset.MetaToolVersion: o.ToolVersion,
	}
	for j := 0; j < o.Jobs; j++ {
		var w *dataset.Writer
		if !o.Discard {
			stem := fmt.Sprintf("%s-%s-%d-w%d", o.Shard.stem(), start.UTC().Format("20060102T150405"), os.Getpid(), j)
			var err error
			if w, err = dataset.NewWriter(o.Out, stem, s.Engine, meta); err != nil {
				return nil, err
			}
			all = append(all, w)
		}
		writers <- w
	}
	lastFlush := make(map[*dataset.Writer]time.Time)
	var flushMu sync.Mutex

	// IDs written by this run, to drop the rows they supersede
	var retried map[string]bool
	var retriedMu sync.Mutex
	if o.RetryFailed && len(pl.FailedParts) > 0 && !o.Discard {
		retried = map[string]bool{}
	}
	var ran, okN, failedN atomic.Int64

	// tasks: ranges of combinations, small enough to balance and to stop
	// quickly, large enough to amortise scheduling
	width := max(1, min(4096, pl.Combinations/int64(o.Jobs*16)))
	if c, ok := s.Engine.(engine.Costly); ok && c.Costly() {
		width = 1
	}
	nP, nM := len(s.Engine.Params()), len(s.Engine.Metrics())
	rows := sync.Pool{New: func() any {
		return &dataset.Row{Params: make([]engine.Value, nP), Metrics: make([]engine.Value, nM)}
	}}
	hashers := sync.Pool{New: func() any { return NewHasher(s) }}
	// whole points (Fill) even when the prepared resolution reads only
	// their axes: filling the axes alone (FillAxes) measured 2 % slower in
	// the 1M-point run with --discard (2.245 against 2.203 s over 8 runs
	// each, interleaved); why was not found
	resolve, _ := s.Resolver()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Jobs)
	for lo, hi := int64(0), int64(0); lo < pl.Combinations; lo = hi {
		if gctx.Err() != nil {
			break
		}
		// the last tasks shrink, so that the workers finish together
		w := width
		if rest := pl.Combinations - lo; rest < width*int64(o.Jobs)*4 {
			w = max(1, min(width, rest/int64(o.Jobs*4)))
		}
		hi = min(lo+w, pl.Combinations)
		g.Go(func() error {
			w := <-writers
			defer func() { writers <- w }()
			r := rows.Get().(*dataset.Row)
			defer rows.Put(r)
			h := hashers.Get().(*Hasher)
			defer hashers.Put(h)
			var ok, failed int64
			var idHex [2 * len(ID{})]byte
			clock := time.Now()
			for ix := lo; ix < hi; ix++ {
				if !pl.Pending.Has(ix) {
					continue
				}
				s.Fill(ix, r.Params)
				if err := resolve(r.Params); err != nil {
					return s.ErrorAt(err, s.Describe(r.Params))
				}
				// monotonic readings against the task's clock: a reading
				// of the wall clock costs twice as much as one of the
				// monotonic clock, and points cost microseconds
				t0 := time.Since(clock)
				err := s.Engine.Evaluate(gctx, r.Params, r.Metrics)
				t1 := time.Since(clock)
				r.Finished, r.Elapsed = clock.Add(t1), t1-t0
				if err != nil && gctx.Err() != nil {
					break // interrupted: not a result
				}
				if errors.Is(err, engine.ErrStopped) {
					continue // stopped from outside: not a result either
				}
				if w != nil {
					// the hex ID lives in the worker's buffer: the writer
					// copies the point_id column's bytes (it is never a
					// dictionary column)
					id, idErr := h.ID(r.Params)
					if idErr != nil {
						// not after Expand, which hashed the files every
						// point names (each is read once per study)
						return s.ErrorAt(idErr, s.Describe(r.Params))
					}
					hex.Encode(idHex[:], id[:])
					r.ID = unsafe.String(&idHex[0], len(idHex))
				}
				r.Status, r.Error = dataset.StatusOK, ""
				if err != nil {
					r.Status, r.Error = dataset.StatusFailed, err.Error()
					failed++
				} else {
					ok++
				}
				if w != nil {
					w.Append(r)
					if retried != nil {
						retriedMu.Lock()
						retried[strings.Clone(r.ID)] = true
						retriedMu.Unlock()
					}
					if w.Rows() >= flushRows {
						if err := w.Flush(); err != nil {
							return fmt.Errorf("writing results to %s: %w", o.Out, err)
						}
					}
				}
			}
			ran.Add(ok + failed)
			okN.Add(ok)
			failedN.Add(failed)
			o.Progress.Add(ok, failed)
			if w == nil {
				return nil
			}
			flushMu.Lock()
			last, seen := lastFlush[w]
			if !seen {
				last = start
			}
			flushMu.Unlock()
			if w.Rows() > 0 && time.Since(last) >= o.FlushEvery {
				if err := w.Flush(); err != nil {
					return fmt.Errorf("writing results to %s: %w", o.Out, err)
				}
				flushMu.Lock()
				lastFlush[w] = time.Now()
				flushMu.Unlock()
			}
			return nil
		})
	}
	gerr := g.Wait()
	// what finished is written, interrupted or not; the writers' last
	// parts are encoded in parallel, as the others were
	errs := make([]error, len(all))
	var fw sync.WaitGroup
	for i, w := range all {
		fw.Go(func() { errs[i] = w.Flush() })
	}
	fw.Wait()
	var werr error
	for i, w := range all {
		if errs[i] != nil && werr == nil {
			werr = fmt.Errorf("writing results to %s: %w", o.Out, errs[i])
		}
		res.Parts = append(res.Parts, w.Written()...)
	}
	sort.Strings(res.Parts)
	res.Ran, res.OK, res.Failed = ran.Load(), okN.Load(), failedN.Load()
	o.Progress.Finish()
	res.Elapsed = time.Since(start)
	if werr != nil {
		return res, werr
	}
	// retried points now have a newer row: drop their old failed rows, part
	// by part, each replaced atomically
	if len(retried) > 0 {
		rl, err := dataset.LockRewrite(context.WithoutCancel(ctx), o.Out)
		if err != nil {
			return res, err
		}
		defer rl.Release()
		for _, part := range pl.FailedParts {
			if _, err := os.Stat(part); errors.Is(err, os.ErrNotExist) {
				continue // another shard's retry emptied and removed it
			}
			n, err := dataset.DropFailedRows(context.WithoutCancel(ctx), part, func(id string) bool { return retried[id] })
			if err != nil {
				return res, fmt.Errorf("dropping retried rows from %s: %w", part, err)
			}
			if n > 0 {
				logf("replaced %d failed rows of %s by their retries", n, filepath.Base(part))
			}
		}
	}
	if gerr != nil {
		return res, gerr
	}
	if ctx.Err() != nil {
		return res, &Interrupted{Done: pl.Done + res.OK, Total: pl.Points, Resume: o.Resume}
	}
	return res, nil
}

// OtherStudyError is the bad input of running study name into dir, which
// holds rows of study other: it names --out, both studies, and the flag
// (mix) that adds the points all the same.
func OtherStudyError(dir, other, name, mix string) error {
	return &InputError{Key: "--out", Msg: fmt.Sprintf("%s holds rows of study %q, and this is study %q; run it into another folder, or pass %s to add its points to that dataset", dir, other, name, mix)}
}

// OtherStudy is the name of a study other than name that a part of the
// dataset in dir was written from, the newest such part's ("" if every
// readable part that names its study is of study name, or there is none).
// Run refuses such a dataset unless RunOptions.MixStudies. It reads every
// part's footer, as Expand reads every part's IDs (parts of one run in one
// process and second share a name stem, so their names cannot stand in).
func OtherStudy(dir, name string) string {
	parts, err := dataset.Parts(dir)
	if err != nil {
		return ""
	}
	for _, p := range dataset.NewestFirst(parts) {
		m, err := dataset.Metadata(p)
		if err != nil {
			continue
		}
		if n := m[dataset.MetaStudyName]; n != "" && n != name {
			return n
		}
	}
	return ""
}

// otherRunHolding names a per-run lock file of dir other than own that a
// live run holds ("" if none).
func otherRunHolding(dir, own string) string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	for _, e := range ents {
		n := e.Name()
		if n == own || !(n == ".lock" || strings.HasPrefix(n, ".lock-shard-")) {
			continue
		}
		if held(filepath.Join(dir, n)) {
			return n
		}
	}
	return ""
}

// dropSuperseded drops the failed rows of points that also have an ok row
// (pl.Superseded): a --retry-failed run stopped after it wrote a point's
// new row but before it dropped the old one leaves both, and the point is
// never retried again, so the first run after it cleans up.
func dropSuperseded(ctx context.Context, dir string, pl *Plan, logf func(string, ...any)) error {
	if len(pl.SupersededParts) == 0 {
		return nil
	}
	rl, err := dataset.LockRewrite(ctx, dir)
	if err != nil {
		return err
	}
	defer rl.Release()
	var n int
	for _, part := range pl.SupersededParts {
		if _, err := os.Stat(part); errors.Is(err, os.ErrNotExist) {
			continue // another shard's run rewrote and removed it
		}
		d, err := dataset.DropFailedRows(context.WithoutCancel(ctx), part, pl.IsSuperseded)
		if err != nil {
			return fmt.Errorf("dropping superseded failed rows from %s: %w", part, err)
		}
		n += d
	}
	if n > 0 {
		logf("dropped %d failed rows of points that have an ok row (left by an interrupted --retry-failed run)", n)
	}
	return nil
}

// removeTemps deletes temporaries of crashed writers of this shard.
func removeTemps(dir string, sh Shard) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	prefix := ".tmp-" + dataset.PartPrefix + sh.stem() + "-"
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// archiveOldVersions moves parts written by another model version of the
// engine into _archive/<engine>-v<version>/.
func archiveOldVersions(dir string, eng engine.Engine) ([]string, error) {
	parts, err := dataset.Parts(dir)
	if err != nil {
		return nil, err
	}
	var moved []string
	for _, p := range parts {
		m, err := dataset.Metadata(p)
		if err != nil {
			continue
		}
		v := m[dataset.MetaEngineVersion]
		if v == eng.Version() && m[dataset.MetaEngine] == eng.Name() {
			continue
		}
		dst := filepath.Join(dir, dataset.ArchiveDir, fmt.Sprintf("%s-v%s", m[dataset.MetaEngine], v))
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return moved, err
		}
		to := filepath.Join(dst, filepath.Base(p))
		if err := os.Rename(p, to); err != nil {
			return moved, err
		}
		moved = append(moved, to)
	}
	return moved, nil
}
