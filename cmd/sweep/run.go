package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/sweep-dse/sweep/sweep"
)

// runOptions are the flags of `sweep run`.
type runOptions struct {
	Out           string
	Jobs          int
	Shard         string
	RetryFailed   bool
	Force         bool
	FlushRows     int
	FlushEvery    time.Duration
	Discard       bool
	Progress      string
	ProgressEvery time.Duration
	Quiet         bool
	KeepWork      bool
	MixStudies    bool
	CPUProfile    string
}

// check checks the values of the flags.
func (o *runOptions) check() error {
	switch {
	case o.Jobs < 1:
		return fmt.Errorf("--jobs %d: must be at least 1", o.Jobs)
	case o.Jobs > sweep.MaxJobs:
		return fmt.Errorf("--jobs %d: at most %d (each job holds a Parquet writer and writes its own parts)", o.Jobs, sweep.MaxJobs)
	case o.FlushRows < 1:
		return fmt.Errorf("--flush-rows %d: must be at least 1", o.FlushRows)
	case o.FlushEvery <= 0:
		return fmt.Errorf("--flush-every %v: must be positive", o.FlushEvery)
	case o.ProgressEvery <= 0:
		return fmt.Errorf("--progress-every %v: must be positive", o.ProgressEvery)
	case o.Shard != "":
		if _, err := sweep.ParseShard(o.Shard); err != nil {
			return fmt.Errorf("--shard: %v", err)
		}
	}
	if _, err := progressFor(o.Progress, o.ProgressEvery, io.Discard); err != nil {
		return err
	}
	return nil
}

// runFlags is sweep run's flag set, filling o (also used by sweep slurm to
// check the run flags it passes on).
func runFlags(o *runOptions, stdout io.Writer) *flag.FlagSet {
	fs := newFlags("run", "run STUDY.toml [flags]\n\nEvaluates every point of the study in parallel and streams the rows into a\nParquet dataset (results/<study name>/ unless --out). Running it again resumes:\nonly points without a row run. Ctrl-C stops, saves what finished, exits 130.", stdout)
	fs.StringVar(&o.Out, "out", "", "dataset `folder` (default results/<study name>)")
	fs.IntVar(&o.Jobs, "jobs", min(runtime.NumCPU(), sweep.MaxJobs), "points evaluated in parallel, 1 to 1024 (no more than the points to run are started)")
	fs.StringVar(&o.Shard, "shard", "", "run only shard `i/N` of the study (deterministic, disjoint)")
	fs.BoolVar(&o.RetryFailed, "retry-failed", false, "rerun points whose last row failed")
	fs.BoolVar(&o.Force, "force", false, "run a study larger than its max_points")
	fs.IntVar(&o.FlushRows, "flush-rows", sweep.DefaultFlushRows, "write part files every `N` rows (split over the --jobs workers), or --flush-every, whichever comes first")
	fs.DurationVar(&o.FlushEvery, "flush-every", 30*time.Second, "write part files at least this often, or every --flush-rows rows, whichever comes first")
	fs.BoolVar(&o.Discard, "discard", false, "evaluate but write nothing (measures engine + runner)")
	fs.StringVar(&o.Progress, "progress", "auto", "progress display: auto (bar on a terminal, lines otherwise), bar, lines, none")
	fs.DurationVar(&o.ProgressEvery, "progress-every", 5*time.Second, "interval of progress lines")
	fs.BoolVar(&o.Quiet, "quiet", false, "print no summary")
	fs.BoolVar(&o.KeepWork, "keep-work", false, "engine = \"command\": keep every point's work folder (<dataset>/_work/), not only failed ones")
	fs.BoolVar(&o.MixStudies, "mix-studies", false, "add the points to a --out folder that holds another study's rows (refused otherwise)")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile (pprof) to `file`")
	return fs
}

func runRun(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	var o runOptions
	fs := runFlags(&o, stdout)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return handleHelp(fs, err)
	}
	if len(pos) != 1 {
		return usageErr("run: want exactly one study file (see `sweep run --help`)")
	}
	if err := o.check(); err != nil {
		return usageErr(err.Error())
	}
	sh := sweep.All
	if o.Shard != "" {
		if sh, err = sweep.ParseShard(o.Shard); err != nil {
			return usageErr("--shard: " + err.Error())
		}
	}
	if o.Out != "" {
		if st, err := os.Stat(o.Out); err == nil && !st.IsDir() {
			return usageErr(fmt.Sprintf("--out %s: not a folder", o.Out))
		}
	}
	s, err := sweep.Load(pos[0])
	if err != nil {
		return err
	}
	prog, err := progressFor(o.Progress, o.ProgressEvery, stderr)
	if err != nil {
		return err
	}
	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err != nil {
			return usageErr("--cpuprofile: " + err.Error())
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	resume := "sweep " + strings.Join(append([]string{"run"}, args...), " ")
	res, err := sweep.Run(ctx, s, sweep.RunOptions{
		Out: o.Out, Jobs: o.Jobs, Shard: sh, RetryFailed: o.RetryFailed, Force: o.Force,
		FlushRows: o.FlushRows, FlushEvery: o.FlushEvery, Discard: o.Discard,
		Progress: prog, Log: stderr, ToolVersion: version, Resume: resume, KeepWork: o.KeepWork,
		MixStudies: o.MixStudies,
	})
	if res != nil && !o.Quiet {
		summary(stdout, s, res, o.Discard)
	}
	return err
}

func summary(w io.Writer, s *sweep.Study, r *sweep.Result, discard bool) {
	pl := r.Plan
	if pl == nil {
		return
	}
	rate := 0.0
	if r.Elapsed > 0 {
		rate = float64(r.Ran) / r.Elapsed.Seconds()
	}
	fmt.Fprintf(w, "study %s: %d points", s.Name, pl.Points)
	if pl.Shard.N > 1 {
		fmt.Fprintf(w, " in shard %s", pl.Shard)
	}
	fmt.Fprintf(w, "; ran %d (%d ok, %d failed) in %s (%.0f points/s); %d were already done\n",
		r.Ran, r.OK, r.Failed, r.Elapsed.Round(time.Millisecond), rate, pl.Done)
	if !discard {
		fmt.Fprintf(w, "dataset: %s (%d new part files)\n", r.Dir, len(r.Parts))
	}
	if r.Failed > 0 {
		fmt.Fprintf(w, "%d points failed: see the error column; rerun with --retry-failed\n", r.Failed)
	}
}

// progressFor picks the progress renderer: a bar on a terminal, plain lines
// elsewhere (CI, Slurm logs).
func progressFor(mode string, every time.Duration, stderr io.Writer) (sweep.Progress, error) {
	isTerm := false
	if f, ok := stderr.(*os.File); ok {
		isTerm = term.IsTerminal(int(f.Fd()))
	}
	switch mode {
	case "auto":
		if isTerm {
			return &sweep.BarProgress{W: stderr}, nil
		}
		return &sweep.LineProgress{W: stderr, Every: every}, nil
	case "bar":
		return &sweep.BarProgress{W: stderr}, nil
	case "lines":
		return &sweep.LineProgress{W: stderr, Every: every}, nil
	case "none":
		return sweep.NoProgress{}, nil
	}
	return nil, usageErr(fmt.Sprintf("--progress %q: want auto, bar, lines or none", mode))
}
