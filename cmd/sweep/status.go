package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/sweep-dse/sweep/dataset"
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
	type idState struct{ ok, failed int }
	ids := map[string]*idState{}
	versions := map[string]int64{}
	var rows, okRows, failedRows int64
	bad, err := dataset.Index(ctx, dir, func(e dataset.Entry) {
		rows++
		versions[e.EngineVersion]++
		st := ids[e.ID]
		if st == nil {
			st = &idState{}
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
	var dups, failedPoints int64
	for _, st := range ids {
		if st.ok > 1 || (st.ok == 0 && st.failed > 1) {
			dups++
		}
		if st.ok == 0 {
			failedPoints++
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
	// the study: from --study or from the newest part's metadata
	var s *sweep.Study
	if o.Study != "" {
		s, err = sweep.Load(o.Study)
		if err != nil {
			return err
		}
	} else if len(parts) > 0 {
		m, err := dataset.Metadata(parts[len(parts)-1])
		if err == nil && m[dataset.MetaStudy] != "" {
			s, err = sweep.Parse(filepath.Join(dir, "study.toml"), m[dataset.MetaStudy])
			if err != nil {
				fmt.Fprintf(w, "study:   stored study does not load here (%v); pass --study FILE\n", err)
				s = nil
			}
		}
	}
	var problems []string
	if s != nil {
		pl, err := sweep.Expand(ctx, s, dir, sweep.PlanOptions{Force: true})
		if err != nil {
			return err
		}
		pending := pl.Points - pl.Done - pl.Failed
		fmt.Fprintf(w, "study:   %s: %d points: %d done, %d failed, %d pending\n", s.Name, pl.Points, pl.Done, pl.Failed, pending)
		if pending > 0 {
			problems = append(problems, fmt.Sprintf("%d points missing", pending))
		}
		if pl.Failed > 0 {
			problems = append(problems, fmt.Sprintf("%d points failed", pl.Failed))
		}
	} else if failedPoints > 0 {
		problems = append(problems, fmt.Sprintf("%d points failed", failedPoints))
	}
	if dups > 0 {
		fmt.Fprintf(w, "duplicates: %d points have more than one row\n", dups)
		problems = append(problems, fmt.Sprintf("%d points duplicated", dups))
	}
	if len(bad) > 0 {
		problems = append(problems, fmt.Sprintf("%d unreadable parts", len(bad)))
	}
	if o.Verify {
		if s == nil {
			return errors.New("verify: no study to check against; pass --study FILE")
		}
		if len(problems) > 0 {
			return fmt.Errorf("verify failed: %v", problems)
		}
		fmt.Fprintln(w, "verify:  ok, every point present exactly once")
	}
	return nil
}
