package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sweep-dse/sweep/dataset"
	"github.com/sweep-dse/sweep/engine"
	"github.com/sweep-dse/sweep/sweep"
)

// statusOptions are the flags of `sweep status`.
type statusOptions struct {
	Study  string
	Verify bool
}

func runStatus(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	var o statusOptions
	fs := newFlags("status", "status DIR [--study FILE] [--verify]\n\nSummarises a dataset. The study is read from the parts' metadata unless\n--study names the file (needed when it references files by relative path).", stdout)
	fs.StringVar(&o.Study, "study", "", "study `file` to compare with")
	fs.BoolVar(&o.Verify, "verify", false, "exit 1 unless every point of the study is present exactly once with status ok")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return handleHelp(fs, err)
	}
	if len(pos) != 1 {
		return usageErr("status: want exactly one dataset folder")
	}
	return status(ctx, stdout, pos[0], o)
}

func status(ctx context.Context, w io.Writer, dir string, o statusOptions) error {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return usageErr(fmt.Sprintf("status: %s is not a dataset folder", dir))
	}
	release, err := lockForReading(ctx, dir, w)
	if err != nil {
		return err
	}
	defer release()
	parts, err := dataset.Parts(dir)
	if err != nil {
		return err
	}
	var size int64
	for _, p := range parts {
		if st, err := os.Stat(p); err == nil {
			size += st.Size()
		}
	}
	type idState struct {
		ok, failed int
		version    string // the engine model version of its rows
	}
	ids := map[string]*idState{}
	versions := map[string]int64{}
	var rows, okRows, failedRows int64
	bad, err := dataset.Index(ctx, dir, func(e dataset.Entry) {
		rows++
		versions[e.EngineVersion]++
		st := ids[e.ID]
		if st == nil {
			st = &idState{version: e.EngineVersion}
			ids[e.ID] = st
		}
		if e.Failed {
			failedRows++
			st.failed++
		} else {
			okRows++
			st.ok++
		}
	})
	if err != nil {
		return err
	}
	var dups, failedPoints, superseded int64
	for _, st := range ids {
		if st.ok > 1 || (st.ok == 0 && st.failed > 1) {
			dups++
		}
		if st.ok == 0 {
			failedPoints++
		}
		if st.ok > 0 && st.failed > 0 {
			superseded++
		}
	}
	fmt.Fprintf(w, "dataset: %s\n", dir)
	fmt.Fprintf(w, "parts:   %d (%s)\n", len(parts), bytesHuman(size))
	fmt.Fprintf(w, "rows:    %d (%d ok, %d failed); %d distinct points\n", rows, okRows, failedRows, len(ids))
	var vs []string
	for v := range versions {
		vs = append(vs, v)
	}
	sort.Strings(vs)
	for _, v := range vs {
		fmt.Fprintf(w, "engine model version %s: %d rows\n", v, versions[v])
	}
	for _, b := range bad {
		fmt.Fprintf(w, "warning: %v\n", b)
	}
	if p := dataset.PendingCompaction(dir); p != "" {
		fmt.Fprintf(w, "warning: %s\n", p)
	}
	// the study: from --study or from the newest part's metadata
	var s *sweep.Study
	if o.Study != "" {
		s, err = sweep.Load(o.Study)
		if err != nil {
			return err
		}
	} else {
		// the newest part that carries a study
		for _, p := range dataset.NewestFirst(parts) {
			m, err := dataset.Metadata(p)
			if err != nil || m[dataset.MetaStudy] == "" {
				continue
			}
			// its relative paths start in the dataset's folder
			s, err = sweep.Parse(sweep.StoredStudyPath(dir), m[dataset.MetaStudy])
			if err != nil {
				fmt.Fprintf(w, "study:   stored study does not load here (%v); pass --study FILE\n", sweep.StoredStudyError(err, sweep.StoredStudyPath(dir)))
				s = nil
			}
			break
		}
	}
	var problems []string
	var pl *sweep.Plan
	if s != nil {
		pl, err = sweep.Expand(ctx, s, dir, sweep.PlanOptions{Force: true, RetryFailed: true, Lenient: true})
		if err != nil && (o.Study != "" || ctx.Err() != nil) {
			return err
		}
		if err != nil {
			// the stored study names input files relative to where it was
			// run from (e.g. model_config = "configs/m.json")
			fmt.Fprintf(w, "study:   stored study does not load here (%v); pass --study FILE\n", sweep.StoredStudyError(err, sweep.StoredStudyPath(dir)))
			s = nil
		}
	}
	if s != nil {
		pending := pl.Points - pl.Done - pl.Failed
		fmt.Fprintf(w, "study:   %s: %d points: %d done, %d failed, %d pending\n", s.Name, pl.Points, pl.Done, pl.Failed, pending)
		other := sweep.OtherStudy(dir, s.Name)
		if other != "" {
			fmt.Fprintf(w, "note:    the dataset also holds rows of study %q, which this check leaves out\n", other)
		}
		// points with rows of this model version that the study as it
		// stands does not have (rows of another version are the run's to
		// archive)
		var current int64
		for _, st := range ids {
			if st.version == s.Engine.Version() {
				current++
			}
		}
		if outside := current - pl.Done - pl.Failed; outside > 0 && other == "" {
			fmt.Fprintf(w, "note:    %d points with rows here are not points of the study as it stands (axis values or constraints since changed, or an input file it names since edited); best, pareto and report read their rows too\n", outside)
		}
		if pending > 0 {
			problems = append(problems, fmt.Sprintf("%d points missing", pending))
		}
		if pl.Failed > 0 {
			problems = append(problems, fmt.Sprintf("%d points failed", pl.Failed))
		}
		if o.Verify && (pending > 0 || pl.Failed > 0) {
			failedIDs := map[string]bool{}
			for id, st := range ids {
				if st.ok == 0 {
					failedIDs[id] = true
				}
			}
			if err := listProblemPoints(ctx, w, dir, s, pl, failedIDs, pending); err != nil {
				if o.Study == "" {
					err = sweep.StoredStudyError(err, sweep.StoredStudyPath(dir))
				}
				return err
			}
		}
	} else if failedPoints > 0 {
		problems = append(problems, fmt.Sprintf("%d points failed", failedPoints))
	}
	if dups > 0 {
		fmt.Fprintf(w, "duplicates: %d points have more than one row\n", dups)
		problems = append(problems, fmt.Sprintf("%d points duplicated", dups))
		if o.Verify {
			var dupIDs []string
			for id, st := range ids {
				if st.ok > 1 || (st.ok == 0 && st.failed > 1) {
					dupIDs = append(dupIDs, id)
				}
			}
			sort.Strings(dupIDs)
			for i, id := range dupIDs[:min(len(dupIDs), problemExamples)] {
				st := ids[id]
				fmt.Fprintf(w, "  %s  %d ok rows, %d failed rows\n", id, st.ok, st.failed)
				if i == problemExamples-1 && len(dupIDs) > problemExamples {
					fmt.Fprintf(w, "  ... and %d more\n", len(dupIDs)-problemExamples)
				}
			}
		}
	}
	if superseded > 0 {
		fmt.Fprintf(w, "superseded: %d points have a failed row beside their ok row (an interrupted --retry-failed run); the next sweep run of the study drops them\n", superseded)
		problems = append(problems, fmt.Sprintf("%d points with superseded failed rows", superseded))
	}
	if len(bad) > 0 {
		problems = append(problems, fmt.Sprintf("%d unreadable parts", len(bad)))
	}
	if o.Verify {
		if s == nil {
			return errors.New("verify: no study to check against; pass --study FILE")
		}
		if len(problems) > 0 {
			return fmt.Errorf("verify failed: %s", strings.Join(problems, ", "))
		}
		fmt.Fprintln(w, "verify:  ok, every point present exactly once")
	}
	return nil
}

// problemExamples is how many missing, failed or duplicated points
// status --verify lists.
const problemExamples = 5

// listProblemPoints prints the first few missing and failed points of the
// plan (which must have been expanded with RetryFailed, so that Pending
// holds both), with their IDs, the values the study varies and, for failed
// points, the error of their row. failed holds the IDs whose rows all failed.
func listProblemPoints(ctx context.Context, w io.Writer, dir string, s *sweep.Study, pl *sweep.Plan, failed map[string]bool, missing int64) error {
	type point struct{ id, desc string }
	var miss, fail []point
	p := make([]engine.Value, len(s.Engine.Params()))
	h := sweep.NewHasher(s)
	for _, idx := range pl.PendingList() {
		if len(miss) >= problemExamples && (len(fail) >= problemExamples || int64(len(fail)) == pl.Failed) {
			break
		}
		s.Fill(idx, p)
		desc := s.Describe(p) // the study's own values, before defaults
		if err := s.Engine.Resolve(s.Dir, p); err != nil {
			return s.ErrorAt(err, desc)
		}
		v, err := h.ID(p)
		if err != nil {
			return s.ErrorAt(err, desc)
		}
		id := v.String()
		if failed[id] {
			if len(fail) < problemExamples {
				fail = append(fail, point{id, desc})
			}
		} else if len(miss) < problemExamples {
			miss = append(miss, point{id, desc})
		}
	}
	if len(miss) > 0 {
		fmt.Fprintf(w, "missing: %d points, e.g.\n", missing)
		for _, m := range miss {
			fmt.Fprintf(w, "  %s  %s\n", m.id, m.desc)
		}
	}
	if len(fail) == 0 {
		return nil
	}
	// the error texts of the listed failed points
	errs := map[string]string{}
	want := map[string]bool{}
	for _, f := range fail {
		want[f.id] = true
	}
	parts, err := dataset.Parts(dir)
	if err != nil {
		return err
	}
	for _, part := range parts {
		err := dataset.Scan(ctx, part, []string{dataset.ColID, dataset.ColError}, func(rec arrow.RecordBatch) error {
			ids, ok1 := rec.Column(0).(*array.String)
			es, ok2 := rec.Column(1).(*array.String)
			if !ok1 || !ok2 {
				return nil
			}
			for i := 0; i < ids.Len(); i++ {
				if id := ids.Value(i); want[id] {
					errs[id] = es.Value(i) // the last row's error wins
				}
			}
			return nil
		})
		if err != nil {
			continue // unreadable parts are reported above
		}
	}
	fmt.Fprintf(w, "failed: %d points, e.g. (rerun them with sweep run --retry-failed)\n", pl.Failed)
	for _, f := range fail {
		e := strings.TrimSpace(errs[f.id])
		if i := strings.IndexByte(e, '\n'); i >= 0 {
			e = e[:i] + " ..."
		}
		fmt.Fprintf(w, "  %s  %s: %s\n", f.id, f.desc, e)
	}
	return nil
}

// lockForReading takes the dataset's lock shared, as runs do, so that a
// reader sees the parts before or after a compaction, never in the middle:
// while a compaction holds it, it says so on w and waits. A folder without
// the lock file (no run or compaction ever wrote it, or not a dataset) is
// read without it, and so is one the file cannot be opened in.
func lockForReading(ctx context.Context, dir string, w io.Writer) (release func(), err error) {
	if w == nil {
		w = io.Discard
	}
	if _, err := os.Stat(filepath.Join(dir, dataset.DatasetLockName)); err != nil {
		return func() {}, nil
	}
	l, err := dataset.LockShared(ctx, dir, func() { fmt.Fprintf(w, "waiting for a compaction of %s to finish\n", dir) })
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return func() {}, nil
	}
	return func() { l.Release() }, nil
}
