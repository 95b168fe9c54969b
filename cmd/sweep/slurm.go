package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/sweep-dse/sweep/sweep"
)

// slurmOptions are the flags of `sweep slurm`.
type slurmOptions struct {
	Tasks        int
	TasksSet     bool // --tasks given; else a study of fewer points gets one task per point
	Parallel     int
	Partition    string
	Time         string
	CPUs         int
	Out          string
	Extra        wordsFlag
	MaxArraySize int
	Submit       bool
	SweepBin     string
}

// wordsFlag is a flag that may be repeated; each value may hold several
// blank-separated words, each kept as one item.
type wordsFlag []string

func (m *wordsFlag) String() string { return strings.Join(*m, " ") }

// Set implements flag.Value.
func (m *wordsFlag) Set(v string) error {
	*m = append(*m, strings.Fields(v)...)
	return nil
}

func runSlurm(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	var o slurmOptions
	fs := newFlags("slurm", "slurm STUDY.toml [flags] [-- RUN-FLAGS...]\n\n"+
		"Writes a Slurm batch script that runs the study as a job array, one shard\n"+
		"(sweep run --shard i/N) per array task, all writing to one shared dataset\n"+
		"folder, plus a final job that verifies every point is present exactly once\n"+
		"and compacts the parts. Arrays are split to respect the cluster's\n"+
		"MaxArraySize. Scripts and logs go to <out>/slurm/. With --submit it submits\n"+
		"them with sbatch; otherwise it prints the commands that would. Flags after\n"+
		"-- go to every sweep run (e.g. -- --retry-failed). Submitting again after a\n"+
		"failure runs only the missing points.\n\n"+
		"The sweep binary, the study and the folder must be reachable at the same\n"+
		"paths on the compute nodes (a shared file system).", stdout)
	fs.IntVar(&o.Tasks, "tasks", 8, "array tasks = shards of the study (default: 8, or one per point for fewer points)")
	fs.IntVar(&o.Parallel, "parallel", 0, "at most this many tasks at once (0: as many as Slurm allows)")
	fs.StringVar(&o.Partition, "partition", "", "Slurm partition (default: the cluster's default)")
	fs.StringVar(&o.Time, "time", "", "time limit per task, as sbatch --time takes it (e.g. 1:00:00)")
	fs.IntVar(&o.CPUs, "cpus", 1, "CPUs per task; each shard evaluates this many points at once")
	fs.StringVar(&o.Out, "out", "", "dataset `folder` on the shared file system (default results/<study name>)")
	fs.Var(&o.Extra, "extra-sbatch", "more sbatch `options`, e.g. '--account=proj --qos=normal' (repeatable)")
	fs.IntVar(&o.MaxArraySize, "max-array-size", 0, "the cluster's MaxArraySize when scontrol cannot tell (default 1001); a smaller value than the cluster's wins")
	fs.BoolVar(&o.Submit, "submit", false, "submit with sbatch (else print the commands)")
	fs.StringVar(&o.SweepBin, "sweep-bin", "", "the sweep binary the jobs run (default: this one)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return handleHelp(fs, err)
	}
	if len(pos) < 1 {
		return usageErr("slurm: want a study file (see `sweep slurm --help`)")
	}
	fs.Visit(func(f *flag.Flag) { o.TasksSet = o.TasksSet || f.Name == "tasks" })
	if o.Tasks < 1 {
		return usageErr(fmt.Sprintf("--tasks %d: must be at least 1", o.Tasks))
	}
	if o.CPUs < 1 || o.CPUs > sweep.MaxJobs {
		return usageErr(fmt.Sprintf("--cpus %d: must be 1 to %d (each task runs sweep run --jobs with it)", o.CPUs, sweep.MaxJobs))
	}
	if o.Parallel < 0 {
		return usageErr(fmt.Sprintf("--parallel %d: must not be negative", o.Parallel))
	}
	if o.MaxArraySize < 0 {
		return usageErr(fmt.Sprintf("--max-array-size %d: must be positive", o.MaxArraySize))
	}
	if o.Time != "" && !slurmTime.MatchString(o.Time) {
		return usageErr(fmt.Sprintf("--time %q: want a Slurm time limit: minutes, minutes:seconds, hours:minutes:seconds, days-hours, days-hours:minutes, days-hours:minutes:seconds, or UNLIMITED", o.Time))
	}
	if err := checkRunFlags(pos[1:]); err != nil {
		return err
	}
	// the command that submits again, for the final job's message: quoted,
	// and from this folder
	command := sweep.ShellJoin(append([]string{"sweep", "slurm"}, args...))
	if wd, err := os.Getwd(); err == nil {
		command = "cd " + sweep.ShellJoin([]string{wd}) + " && " + command
	}
	return slurm(ctx, stdout, pos[0], pos[1:], o, command)
}

// slurmTime is a time limit in one of the forms sbatch --time takes.
var slurmTime = regexp.MustCompile(`^(\d+|\d+:\d+|\d+:\d+:\d+|\d+-\d+|\d+-\d+:\d+|\d+-\d+:\d+:\d+|(?i:unlimited|infinite))$`)

func slurm(ctx context.Context, w io.Writer, study string, runArgs []string, o slurmOptions, command string) error {
	s, err := sweep.Load(study)
	if err != nil {
		return err
	}
	// what Expand checks (max_points, every point resolves) fails here, not
	// in every array task
	pl, err := sweep.Expand(ctx, s, "", sweep.PlanOptions{Force: hasFlag(runArgs, "force")})
	if err != nil {
		return err
	}
	if int64(o.Tasks) > pl.Points {
		if o.TasksSet {
			return usageErr(fmt.Sprintf("--tasks %d: the study has %d points; at most one task per point", o.Tasks, pl.Points))
		}
		o.Tasks = int(pl.Points)
	}
	exe := o.SweepBin
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return fmt.Errorf("slurm: cannot find the sweep binary (%v); pass --sweep-bin", err)
		}
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
	}
	if st, err := os.Stat(exe); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return usageErr(fmt.Sprintf("slurm: %s is not an executable sweep binary", exe))
	}

	// MaxArraySize: the cluster's when scontrol answers, else the flag
	maxArray, source := o.MaxArraySize, "from --max-array-size"
	if maxArray == 0 {
		maxArray, source = sweep.DefaultMaxArraySize, "Slurm's default; scontrol is not available"
	}
	if sc, err := exec.LookPath("scontrol"); err == nil {
		if n, err := sweep.ClusterMaxArraySize(ctx, sc); err == nil {
			if o.MaxArraySize == 0 || n < o.MaxArraySize {
				maxArray, source = n, "from scontrol show config"
			} else {
				source = fmt.Sprintf("from --max-array-size; the cluster allows %d", n)
			}
		} else {
			if o.MaxArraySize == 0 {
				source = "Slurm's default; scontrol could not tell the cluster's"
			}
			fmt.Fprintf(w, "note: %v; using MaxArraySize %d\n", err, maxArray)
		}
	}

	out := o.Out
	if out == "" {
		out = sweep.DefaultOut(s)
	}
	// every task's sweep run would refuse it
	if other := sweep.OtherStudy(out, s.Name); other != "" && !hasFlag(runArgs, "mix-studies") {
		return sweep.OtherStudyError(out, other, s.Name, "-- --mix-studies")
	}
	if other, busy := sweep.OtherShardingBusy(out, o.Tasks); busy && o.Submit {
		return &sweep.ShardingError{Dir: out, N: o.Tasks, Other: other}
	}
	job, err := sweep.WriteSlurm(s, sweep.SlurmOptions{
		Study: study, Out: o.Out, Tasks: o.Tasks, Parallel: o.Parallel,
		Partition: o.Partition, Time: o.Time, CPUs: o.CPUs, Extra: o.Extra,
		MaxArraySize: maxArray, Exe: exe, RunArgs: runArgs,
		Resubmit: command, ToolVersion: version,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "study %s: %d points in %d shards (about %d points each), %d CPU(s) per task\n",
		s.Name, pl.Points, o.Tasks, (pl.Points+int64(o.Tasks)-1)/int64(o.Tasks), o.CPUs)
	fmt.Fprintf(w, "%d job array(s) (MaxArraySize %d, %s) + 1 final verify-and-compact job\n", len(job.Arrays), maxArray, source)
	fmt.Fprintf(w, "wrote %s\nwrote %s\n", job.Script, job.FinishScript)
	fmt.Fprintf(w, "dataset: %s; logs: %s\n", job.Out, job.LogDir)
	if strings.Contains(exe, "go-build") {
		fmt.Fprintf(w, "warning: %s is a temporary binary of `go run`; build sweep (make build) so the jobs can run it\n", exe)
	}

	sbatch, lookErr := exec.LookPath("sbatch")
	if !o.Submit {
		if lookErr != nil {
			fmt.Fprintln(w, "Slurm's sbatch is not on PATH here; on a login node of the cluster, submit with:")
		} else {
			fmt.Fprintln(w, "to submit, run (or add --submit):")
		}
		for _, line := range job.SubmitCommands() {
			fmt.Fprintf(w, "  %s\n", line)
		}
		return nil
	}
	if lookErr != nil {
		return errors.New("--submit: sbatch is not on PATH (is Slurm installed here?); the scripts are written: submit them on a login node of the cluster with:\n  " +
			strings.Join(job.SubmitCommands(), "\n  "))
	}
	sub, err := job.Submit(ctx, sbatch, w)
	if err != nil {
		return fmt.Errorf("slurm: %w", err)
	}
	all := append(append([]string{}, sub.Arrays...), sub.Finish)
	fmt.Fprintf(w, "watch with: squeue -j %s\n", strings.Join(all, ","))
	fmt.Fprintf(w, "when done: %s (the final job's log: %s)\n", sweep.ShellJoin([]string{"sweep", "status", job.Out, "--study", job.StudyPath, "--verify"}), filepath.Join(job.LogDir, job.JobName()+"-finish-"+sub.Finish+".out"))
	return nil
}

// hasFlag reports whether args (run flags) contain --name or -name.
func hasFlag(args []string, name string) bool {
	for _, a := range args {
		n, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && n == name {
			return true
		}
	}
	return false
}

// checkRunFlags checks the flags sweep slurm passes on to every sweep run,
// so that a typo fails here rather than in every array task.
func checkRunFlags(args []string) error {
	var ro runOptions
	fs := runFlags(&ro, io.Discard)
	extra, err := parseFlags(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return usageErr("slurm: --help after -- : the run flags are those of `sweep run --help`")
		}
		return usageErr(fmt.Sprintf("slurm: the run flags after --: %v", err))
	}
	if len(extra) > 0 {
		return usageErr(fmt.Sprintf("slurm: the run flags after -- must be flags of sweep run; %q is not", extra[0]))
	}
	var bad string
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "out" || f.Name == "shard" || f.Name == "jobs" {
			bad = f.Name
		}
	})
	if bad != "" {
		return usageErr(fmt.Sprintf("slurm: --%s after --: every array task sets it itself (--out and --cpus of sweep slurm)", bad))
	}
	if err := ro.check(); err != nil {
		return usageErr("slurm: the run flags after --: " + err.Error())
	}
	return nil
}
