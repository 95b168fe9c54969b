package sweep

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// DefaultMaxArraySize is Slurm's default MaxArraySize: array indexes must be
// below it.
const DefaultMaxArraySize = 1001

// SlurmOptions describes a Slurm job array that runs a study in shards, one
// shard per array task, all writing to one shared dataset folder.
type SlurmOptions struct {
	Study        string   // study file
	Out          string   // dataset folder; "" = results/<study name>
	Tasks        int      // shards, one per array task
	Parallel     int      // array tasks running at once (0 = no limit)
	Partition    string   // sbatch --partition ("" = the cluster's default)
	Time         string   // sbatch --time ("" = the partition's default)
	CPUs         int      // sbatch --cpus-per-task; each shard runs with --jobs = this
	Extra        []string // more sbatch options, one per #SBATCH line
	MaxArraySize int      // the cluster's MaxArraySize (0 = DefaultMaxArraySize)
	Exe          string   // the sweep binary the jobs run (absolute)
	RunArgs      []string // more flags for each `sweep run`
	WorkDir      string   // relative paths start here ("" = the current folder)
	Resubmit     string   // the command that submits again, for messages
	ToolVersion  string
}

// SlurmArray is one sbatch submission: array tasks 0..Count-1 run shards
// Offset..Offset+Count-1.
type SlurmArray struct{ Offset, Count int }

// SplitArrays splits n tasks into job arrays whose indexes stay below
// maxArraySize (Slurm's MaxArraySize caps the highest index, not the number
// of tasks), each with the offset of its first shard.
func SplitArrays(n, maxArraySize int) []SlurmArray {
	if maxArraySize < 1 {
		maxArraySize = DefaultMaxArraySize
	}
	var out []SlurmArray
	for off := 0; off < n; off += maxArraySize {
		out = append(out, SlurmArray{Offset: off, Count: min(maxArraySize, n-off)})
	}
	return out
}

// SlurmJob is a job array written to disk: its scripts and the sbatch
// submissions that run it.
type SlurmJob struct {
	Opts         SlurmOptions
	StudyName    string
	StudyPath    string // absolute
	Out          string // dataset folder, absolute
	LogDir       string // Out/slurm: scripts and logs
	Script       string // the array task script
	FinishScript string // the final verify + compact job
	Arrays       []SlurmArray
}

// WriteSlurm writes the job array's scripts into <out>/slurm/ and returns
// the job. It checks what it can without Slurm: the study loads, the paths
// are absolute and usable in #SBATCH lines.
func WriteSlurm(s *Study, o SlurmOptions) (*SlurmJob, error) {
	if o.Tasks < 1 {
		return nil, &InputError{Key: "--tasks", Msg: fmt.Sprintf("must be at least 1, got %d", o.Tasks)}
	}
	if o.CPUs < 1 {
		return nil, &InputError{Key: "--cpus", Msg: fmt.Sprintf("must be at least 1, got %d", o.CPUs)}
	}
	if o.Parallel < 0 {
		return nil, &InputError{Key: "--parallel", Msg: fmt.Sprintf("must not be negative, got %d", o.Parallel)}
	}
	if o.MaxArraySize <= 0 {
		o.MaxArraySize = DefaultMaxArraySize
	}
	for _, f := range []struct{ flag, v string }{{"--partition", o.Partition}, {"--time", o.Time}} {
		if strings.ContainsAny(f.v, " \t\n\r'\"") {
			return nil, &InputError{Key: f.flag, Msg: fmt.Sprintf("%q: no spaces or quotes", f.v)}
		}
	}
	for _, e := range o.Extra {
		if !strings.HasPrefix(e, "-") || strings.ContainsAny(e, "\n\r") {
			return nil, &InputError{Key: "--extra-sbatch", Msg: fmt.Sprintf("%q is not an sbatch option (want e.g. --account=proj --qos=normal)", e)}
		}
	}
	for _, a := range o.RunArgs {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case !strings.HasPrefix(a, "-") && a != "":
			// a flag's value
		case name == "shard" || name == "out" || name == "jobs" || name == "progress":
			return nil, &InputError{Key: a, Msg: "set by sweep slurm for each task; not allowed among the run flags"}
		}
	}
	abs := func(p string) (string, error) {
		if o.WorkDir != "" && !filepath.IsAbs(p) {
			p = filepath.Join(o.WorkDir, p)
		}
		return filepath.Abs(p)
	}
	var err error
	j := &SlurmJob{StudyName: s.Name}
	if j.StudyPath, err = abs(o.Study); err != nil {
		return nil, err
	}
	if o.Out == "" {
		o.Out = DefaultOut(s)
	}
	if j.Out, err = abs(o.Out); err != nil {
		return nil, err
	}
	if o.Exe == "" {
		return nil, errors.New("slurm: no sweep binary to run")
	}
	if o.Exe, err = abs(o.Exe); err != nil {
		return nil, err
	}
	// #SBATCH lines are split at blanks; % starts a file-name pattern
	if strings.ContainsAny(j.Out, " \t\n\r%'\"\\") {
		return nil, &InputError{Key: "--out", Msg: fmt.Sprintf("the dataset folder %q contains a blank, quote, backslash or %%, which #SBATCH lines cannot carry; choose another folder", j.Out)}
	}
	j.Opts = o
	j.LogDir = filepath.Join(j.Out, "slurm")
	j.Script = filepath.Join(j.LogDir, s.Name+".sbatch")
	j.FinishScript = filepath.Join(j.LogDir, s.Name+"-finish.sbatch")
	j.Arrays = SplitArrays(o.Tasks, o.MaxArraySize)
	if err := os.MkdirAll(j.LogDir, 0o755); err != nil {
		return nil, fmt.Errorf("slurm: %w", err)
	}
	if err := writeScript(j.Script, j.arrayScript()); err != nil {
		return nil, err
	}
	if err := writeScript(j.FinishScript, j.finishScript()); err != nil {
		return nil, err
	}
	return j, nil
}

func writeScript(path, text string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o755); err != nil {
		return fmt.Errorf("slurm: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("slurm: %w", err)
	}
	return nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ShellJoin quotes args for a POSIX shell and joins them with spaces.
func ShellJoin(args []string) string { return shellJoin(args) }

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

// sbatchHeader is the #SBATCH lines shared by both scripts.
func (j *SlurmJob) sbatchHeader(b *strings.Builder, name, output string) {
	o := j.Opts
	fmt.Fprintf(b, "#SBATCH --job-name=%s\n", name)
	fmt.Fprintf(b, "#SBATCH --output=%s\n", output)
	b.WriteString("#SBATCH --open-mode=append\n")
	b.WriteString("#SBATCH --ntasks=1\n")
	// the dataset folder is on the shared file system, wherever the
	// command was run from
	fmt.Fprintf(b, "#SBATCH --chdir=%s\n", j.Out)
	if o.Partition != "" {
		fmt.Fprintf(b, "#SBATCH --partition=%s\n", o.Partition)
	}
	if o.Time != "" {
		fmt.Fprintf(b, "#SBATCH --time=%s\n", o.Time)
	}
	for _, e := range o.Extra {
		fmt.Fprintf(b, "#SBATCH %s\n", e)
	}
}

// JobName is the Slurm job name of the array tasks.
func (j *SlurmJob) JobName() string { return "sweep-" + j.StudyName }

func (j *SlurmJob) arrayScript() string {
	o := j.Opts
	var b strings.Builder
	b.WriteString("#!/bin/bash\n")
	fmt.Fprintf(&b, "# Job array of study %s: array task t runs shard t+OFFSET of %d, where OFFSET\n", j.StudyName, o.Tasks)
	fmt.Fprintf(&b, "# is the script's argument. Written by sweep slurm (sweep %s); submit with\n", o.ToolVersion)
	for _, line := range j.SubmitCommands() {
		fmt.Fprintf(&b, "#   %s\n", line)
	}
	j.sbatchHeader(&b, j.JobName(), filepath.Join(j.LogDir, "%x-%A_%a.out"))
	fmt.Fprintf(&b, "#SBATCH --cpus-per-task=%d\n", o.CPUs)
	b.WriteString("set -u\n")
	b.WriteString(`offset=${1:?"usage: sbatch --array=0-K this-script OFFSET"}` + "\n")
	b.WriteString(`task=${SLURM_ARRAY_TASK_ID:?"not running as a Slurm array task"}` + "\n")
	b.WriteString("shard=$((task + offset))\n")
	fmt.Fprintf(&b, "if [ \"$shard\" -lt 0 ] || [ \"$shard\" -ge %d ]; then\n", o.Tasks)
	fmt.Fprintf(&b, "  echo \"sweep: shard $shard is out of range: the study has %d shards\" >&2\n  exit 2\nfi\n", o.Tasks)
	fmt.Fprintf(&b, "echo \"sweep: study %s shard $shard/%d on $(hostname) (job ${SLURM_ARRAY_JOB_ID:-?}_${task}, ${SLURM_CPUS_PER_TASK:-1} CPU(s))\"\n", j.StudyName, o.Tasks)
	args := []string{o.Exe, "run", j.StudyPath, "--out", j.Out}
	fmt.Fprintf(&b, "exec %s --shard \"$shard/%d\" --jobs \"${SLURM_CPUS_PER_TASK:-1}\" --progress lines", shellJoin(args), o.Tasks)
	if len(o.RunArgs) > 0 {
		b.WriteString(" " + shellJoin(o.RunArgs))
	}
	b.WriteString("\n")
	return b.String()
}

func (j *SlurmJob) finishScript() string {
	o := j.Opts
	var b strings.Builder
	b.WriteString("#!/bin/bash\n")
	fmt.Fprintf(&b, "# Final job of study %s, run after every array task has ended (afterany):\n", j.StudyName)
	b.WriteString("# verify every point is present exactly once, then compact the parts.\n")
	fmt.Fprintf(&b, "# Written by sweep slurm (sweep %s).\n", o.ToolVersion)
	j.sbatchHeader(&b, j.JobName()+"-finish", filepath.Join(j.LogDir, "%x-%j.out"))
	b.WriteString("#SBATCH --cpus-per-task=1\n")
	b.WriteString("set -u\nstatus=0\n")
	fmt.Fprintf(&b, "%s || status=$?\n", shellJoin([]string{o.Exe, "status", j.Out, "--study", j.StudyPath, "--verify"}))
	fmt.Fprintf(&b, "%s || { c=$?; [ \"$status\" -ne 0 ] || status=$c; }\n", shellJoin([]string{o.Exe, "compact", j.Out, "--wait", "10m"}))
	b.WriteString("if [ \"$status\" -ne 0 ]; then\n")
	msg := "sweep: the study is not complete (see above); submitting again runs what is missing"
	if o.Resubmit != "" {
		msg += ": " + o.Resubmit
	}
	msg += "; points that failed run again only with -- --retry-failed, and a failure that recurs needs a fix first"
	fmt.Fprintf(&b, "  echo %s >&2\nfi\nexit \"$status\"\n", shellQuote(msg))
	return b.String()
}

// ArrayArgs are the sbatch arguments that submit array a; after, if not
// empty, is a job it must wait for.
func (j *SlurmJob) ArrayArgs(a SlurmArray, after string) []string {
	spec := fmt.Sprintf("--array=0-%d", a.Count-1)
	if j.Opts.Parallel > 0 {
		spec += fmt.Sprintf("%%%d", j.Opts.Parallel)
	}
	args := []string{"--parsable", spec}
	if after != "" {
		args = append(args, "--dependency=afterany:"+after)
	}
	return append(args, j.Script, strconv.Itoa(a.Offset))
}

// chained reports whether each array waits for the previous one: only with
// a --parallel limit, which Slurm applies per array, so that the limit
// holds for the whole study.
func (j *SlurmJob) chained() bool { return j.Opts.Parallel > 0 && len(j.Arrays) > 1 }

// FinishArgs are the sbatch arguments of the final job, after the arrays.
func (j *SlurmJob) FinishArgs(arrayIDs []string) []string {
	return []string{"--parsable", "--dependency=afterany:" + strings.Join(arrayIDs, ":"), j.FinishScript}
}

// SubmitCommands is the shell commands that submit the job by hand.
func (j *SlurmJob) SubmitCommands() []string {
	var lines, vars []string
	for i, a := range j.Arrays {
		after := ""
		if j.chained() && i > 0 {
			after = fmt.Sprintf("$a%d", i-1)
		}
		args := j.ArrayArgs(a, "")
		cmd := "sbatch " + shellJoin(args[:2])
		if after != "" {
			cmd += " --dependency=afterany:" + after
		}
		cmd += " " + shellJoin(args[2:])
		lines = append(lines, fmt.Sprintf("a%d=$(%s) && a%d=${a%d%%%%;*}", i, cmd, i, i))
		vars = append(vars, fmt.Sprintf("$a%d", i))
	}
	lines = append(lines, fmt.Sprintf("sbatch --parsable --dependency=afterany:%s %s", strings.Join(vars, ":"), shellQuote(j.FinishScript)))
	return lines
}

// ParseJobID reads the job ID that `sbatch --parsable` prints ("123" or
// "123;cluster").
func ParseJobID(out string) (string, error) {
	s := strings.TrimSpace(out)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 { // warnings may come first
		s = strings.TrimSpace(s[i+1:])
	}
	id, _, _ := strings.Cut(s, ";")
	if id == "" || strings.Trim(id, "0123456789") != "" {
		return "", fmt.Errorf("no job id in sbatch's output %q", strings.TrimSpace(out))
	}
	return id, nil
}

// Submitted is what Submit submitted.
type Submitted struct {
	Arrays []string // job IDs of the arrays, in order
	Finish string   // job ID of the final job
}

// sbatchTimeout bounds one sbatch call.
const sbatchTimeout = 2 * time.Minute

// Submit submits the arrays, then the final job depending on all of them,
// with the sbatch binary at sbatch. It stops at the first submission that
// fails or prints no job ID; the error names the jobs already submitted.
func (j *SlurmJob) Submit(ctx context.Context, sbatch string, log io.Writer) (*Submitted, error) {
	sub := &Submitted{}
	fail := func(err error) (*Submitted, error) {
		if len(sub.Arrays) > 0 {
			err = fmt.Errorf("%w; already submitted: job(s) %s (cancel them with scancel %s)", err, strings.Join(sub.Arrays, ", "), strings.Join(sub.Arrays, " "))
		}
		return sub, err
	}
	for i, a := range j.Arrays {
		after := ""
		if j.chained() && i > 0 {
			after = sub.Arrays[i-1]
		}
		id, err := runSbatch(ctx, sbatch, j.ArrayArgs(a, after))
		if err != nil {
			return fail(fmt.Errorf("submitting shards %d-%d: %w", a.Offset, a.Offset+a.Count-1, err))
		}
		sub.Arrays = append(sub.Arrays, id)
		if log != nil {
			fmt.Fprintf(log, "submitted job array %s: shards %d-%d of %d\n", id, a.Offset, a.Offset+a.Count-1, j.Opts.Tasks)
		}
	}
	id, err := runSbatch(ctx, sbatch, j.FinishArgs(sub.Arrays))
	if err != nil {
		return fail(fmt.Errorf("submitting the final verify and compact job: %w", err))
	}
	sub.Finish = id
	if log != nil {
		fmt.Fprintf(log, "submitted job %s: verify and compact after jobs %s\n", id, strings.Join(sub.Arrays, ", "))
	}
	return sub, nil
}

func runSbatch(ctx context.Context, sbatch string, args []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, sbatchTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, sbatch, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	msg := strings.TrimSpace(stderr.String())
	if err != nil {
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return "", fmt.Errorf("sbatch %s: %v: %s", shellJoin(args), err, msg)
	}
	id, err := ParseJobID(stdout.String())
	if err != nil {
		if msg != "" {
			err = fmt.Errorf("%w (stderr: %s)", err, msg)
		}
		return "", fmt.Errorf("sbatch %s: %w", shellJoin(args), err)
	}
	return id, nil
}

// ClusterMaxArraySize asks `scontrol show config` for MaxArraySize. It
// fails when scontrol is missing or the controller does not answer.
func ClusterMaxArraySize(ctx context.Context, scontrol string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, scontrol, "show", "config")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("scontrol show config: %v %s", err, strings.TrimSpace(stderr.String()))
	}
	return parseMaxArraySize(out)
}

func parseMaxArraySize(out []byte) (int, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && strings.TrimSpace(k) == "MaxArraySize" {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 1 {
				return 0, fmt.Errorf("scontrol show config: MaxArraySize %q", strings.TrimSpace(v))
			}
			return n, nil
		}
	}
	return 0, errors.New("scontrol show config: no MaxArraySize")
}
