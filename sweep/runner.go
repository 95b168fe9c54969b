package sweep

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sweep-dse/sweep/dataset"
	"github.com/sweep-dse/sweep/engine"
)

// RunOptions configures Run.
type RunOptions struct {
	Out         string        // dataset folder; "" = results/<study name>
	Jobs        int           // parallel evaluations; 0 = CPU count
	Shard       Shard         // subset to run; zero = all
	RetryFailed bool          // rerun points whose row is failed
	Force       bool          // run above max_points
	FlushRows   int           // write a part every this many rows (0 = 65536)
	FlushEvery  time.Duration // ... or this often (0 = 30 s)
	Discard     bool          // evaluate but write nothing (benchmarks)
	Progress    Progress      // nil = none
	Log         io.Writer     // messages; nil = discard
	ToolVersion string        // stored in part metadata
	Resume      string        // the command that resumes, for messages
	KeepWork    bool          // keep the work folders of successful points (external engines)
}

// Result summarises a run.
type Result struct {
	Dir                string
	Plan               *Plan
	Ran, OK, Failed    int64
	Parts              []string
	Elapsed            time.Duration
	Quarantined        []string
	ArchivedOldVersion []string
}

// DefaultOut is the dataset folder of a study when --out is not given.
func DefaultOut(s *Study) string { return filepath.Join("results", s.Name) }

// chunk is a batch of points evaluated by one goroutine.
type chunk struct {
	idx  []int64
	rows []dataset.Row
}

// Run evaluates the study's pending points in parallel and streams the rows
// into the dataset. On ctx cancellation it stops issuing points, writes what
// finished, and returns *Interrupted.
func Run(ctx context.Context, s *Study, o RunOptions) (*Result, error) {
	start := time.Now()
	if o.Out == "" {
		o.Out = DefaultOut(s)
	}
	if o.Jobs <= 0 {
		o.Jobs = runtime.NumCPU()
	}
	if o.Shard.N == 0 {
		o.Shard = All
	}
	if o.FlushRows <= 0 {
		o.FlushRows = 1 << 16
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
	pl, err := Expand(ctx, s, o.Out, PlanOptions{Shard: o.Shard, RetryFailed: o.RetryFailed, Force: o.Force})
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, &Interrupted{Resume: o.Resume}
		}
		return nil, err
	}
	res.Plan = pl
	if !o.Discard {
		for _, b := range pl.Bad {
			dst, err := dataset.Quarantine(b.Path)
			if err != nil {
				return nil, fmt.Errorf("quarantine %s: %w", b.Path, err)
			}
			logf("warning: %v; moved to %s, its points will be recomputed", b, dst)
			res.Quarantined = append(res.Quarantined, dst)
		}
		if len(pl.Stale) > 0 {
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
	total := int64(len(pl.Pending))
	if pl.Done > 0 || pl.Failed > 0 {
		logf("resuming: %d of %d points already done, %d failed%s, %d to run", pl.Done, pl.Points, pl.Failed, map[bool]string{true: " (retrying)", false: ""}[o.RetryFailed], total)
	}
	o.Progress.Start(total)
	if total == 0 {
		o.Progress.Finish()
		res.Elapsed = time.Since(start)
		return res, nil
	}

	var w *dataset.Writer
	if !o.Discard {
		meta := map[string]string{
			dataset.MetaStudy: s.Text, dataset.MetaStudyName: s.Name,
			dataset.MetaEngine: s.Engine.Name(), dataset.MetaEngineVersion: s.Engine.Version(),
			dataset.MetaToolVersion: o.ToolVersion,
		}
		stem := fmt.Sprintf("%s-%s-%d", o.Shard.stem(), start.UTC().Format("20060102T150405"), os.Getpid())
		w, err = dataset.NewWriter(o.Out, stem, s.Engine, meta)
		if err != nil {
			return nil, err
		}
	}

	// chunk size: small enough to balance and to stop quickly, large enough
	// to amortise scheduling
	size := int(max(1, min(256, total/int64(o.Jobs*8))))
	results := make(chan *chunk, 2*o.Jobs)
	pool := sync.Pool{New: func() any { return &chunk{} }}

	// IDs written by this run, to drop the rows they supersede
	var retried map[string]bool
	if o.RetryFailed && len(pl.FailedParts) > 0 && !o.Discard {
		retried = map[string]bool{}
	}
	// writer
	var werr error
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		last := time.Now()
		for c := range results {
			var ok, failed int64
			for i := range c.rows {
				r := &c.rows[i]
				if r.Status == dataset.StatusOK {
					ok++
				} else {
					failed++
				}
				if w != nil && werr == nil {
					w.Append(r)
					if retried != nil {
						retried[r.ID] = true
					}
				}
			}
			res.Ran += ok + failed
			res.OK += ok
			res.Failed += failed
			o.Progress.Add(ok, failed)
			pool.Put(c)
			if w != nil && werr == nil && (w.Rows() >= o.FlushRows || time.Since(last) >= o.FlushEvery) {
				werr = w.Flush()
				last = time.Now()
			}
		}
		if w != nil && werr == nil {
			werr = w.Flush()
		}
	}()

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Jobs)
	nP, nM := len(s.Engine.Params()), len(s.Engine.Metrics())
	h := sync.Pool{New: func() any { return NewHasher(s.Engine) }}
issue:
	for lo := 0; lo < len(pl.Pending); lo += size {
		if gctx.Err() != nil {
			break issue
		}
		idx := pl.Pending[lo:min(lo+size, len(pl.Pending))]
		g.Go(func() error {
			c := pool.Get().(*chunk)
			c.idx = idx
			if cap(c.rows) < len(idx) {
				c.rows = make([]dataset.Row, len(idx))
				for i := range c.rows {
					c.rows[i].Params = make([]engine.Value, nP)
					c.rows[i].Metrics = make([]engine.Value, nM)
				}
			}
			c.rows = c.rows[:len(idx)]
			hs := h.Get().(*Hasher)
			defer h.Put(hs)
			n := 0
			for _, ix := range idx {
				r := &c.rows[n]
				s.Fill(ix, r.Params)
				if err := s.Engine.Resolve(s.Dir, r.Params); err != nil {
					return s.ErrorAt(err, s.Describe(r.Params))
				}
				t0 := time.Now()
				err := s.Engine.Evaluate(gctx, r.Params, r.Metrics)
				r.Finished = time.Now()
				r.Elapsed = r.Finished.Sub(t0)
				if err != nil && gctx.Err() != nil {
					break // interrupted: not a result
				}
				r.ID = hs.ID(r.Params).String()
				r.Status, r.Error = dataset.StatusOK, ""
				if err != nil {
					r.Status, r.Error = dataset.StatusFailed, err.Error()
				}
				n++
			}
			c.rows = c.rows[:n]
			results <- c
			return nil
		})
	}
	gerr := g.Wait()
	close(results)
	<-wdone
	o.Progress.Finish()
	if w != nil {
		res.Parts = w.Written()
	}
	res.Elapsed = time.Since(start)
	if werr != nil {
		return res, fmt.Errorf("writing results to %s: %w", o.Out, werr)
	}
	// retried points now have a newer row: drop their old failed rows, part
	// by part, each replaced atomically
	if len(retried) > 0 {
		for _, part := range pl.FailedParts {
			n, err := dataset.DropRows(context.WithoutCancel(ctx), part, func(id string) bool { return retried[id] })
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
