package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

const seedStudy = "../../studies/seed-moe.toml"

// noSlurm empties PATH for the rest of the test, so that neither sbatch nor
// scontrol can be found, and returns the previous PATH.
func noSlurm(t *testing.T) string {
	t.Helper()
	old := os.Getenv("PATH")
	t.Setenv("PATH", t.TempDir())
	return old
}

// runTask runs the array script as Slurm would run array task `task` of
// the array submitted with offset: bash, the argument, the task's
// environment. It returns the combined output and the exit code.
func runTask(t *testing.T, path, script string, offset, task int) (string, int) {
	t.Helper()
	cmd := exec.Command("/bin/bash", script, fmt.Sprint(offset))
	cmd.Env = []string{"PATH=" + path, "HOME=" + os.Getenv("HOME"),
		fmt.Sprintf("SLURM_ARRAY_TASK_ID=%d", task), "SLURM_ARRAY_JOB_ID=77", "SLURM_CPUS_PER_TASK=2"}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

// TestSlurmScriptsWithoutSlurm: with no Slurm on the machine, `sweep slurm`
// writes the scripts and prints how to submit them, split for the given
// MaxArraySize; running the scripts' tasks by hand (as Slurm would: bash,
// offset argument, array-task environment) covers the study, the final
// script fails while a shard is missing and lists it, then verifies and
// compacts, and the result equals a local run.
func TestSlurmScriptsWithoutSlurm(t *testing.T) {
	path := noSlurm(t)
	out := filepath.Join(t.TempDir(), "ds")
	stdout, errs, code := runCLI(t, "slurm", seedStudy, "--tasks", "4", "--max-array-size", "3", "--out", out, "--sweep-bin", sweepBin, "--", "--flush-rows", "10", "--retry-failed")
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, stdout, errs)
	}
	script := filepath.Join(out, "slurm", "seed-moe.sbatch")
	// every run flag after -- reaches the tasks' sweep run
	if b, err := os.ReadFile(script); err != nil || !strings.Contains(string(b), "--flush-rows 10 --retry-failed") {
		t.Errorf("the script does not pass both run flags on (%v):\n%s", err, b)
	}
	finish := filepath.Join(out, "slurm", "seed-moe-finish.sbatch")
	for _, want := range []string{
		"180 points in 4 shards",
		"2 job array(s) (MaxArraySize 3, from --max-array-size)",
		"sbatch is not on PATH",
		"sbatch --parsable --array=0-2 " + script + " 0)",
		"sbatch --parsable --array=0-0 " + script + " 3)",
		"sbatch --parsable --dependency=afterany:$a0:$a1 " + finish,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	t.Setenv("PATH", path)

	// the first array's three tasks at once, as Slurm runs them
	var wg sync.WaitGroup
	outs := make([]string, 3)
	codes := make([]int, 3)
	for task := 0; task < 3; task++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[task], codes[task] = runTask(t, path, script, 0, task)
		}()
	}
	wg.Wait()
	for task := 0; task < 3; task++ {
		if codes[task] != 0 || !strings.Contains(outs[task], fmt.Sprintf("shard %d/4", task)) {
			t.Fatalf("task %d: exit %d\n%s", task, codes[task], outs[task])
		}
	}
	// a task beyond the shards is refused
	if o, c := runTask(t, path, script, 3, 1); c != 2 || !strings.Contains(o, "out of range") {
		t.Fatalf("task 1 of the second array: exit %d\n%s", c, o)
	}
	// the final job with shard 3 missing: non-zero, lists missing points
	o, c := runTask(t, path, finish, 0, 0)
	if c == 0 || !strings.Contains(o, "missing: ") || !strings.Contains(o, "num_experts=") || !strings.Contains(o, "verify failed") || !strings.Contains(o, "submitting again runs what is missing") || !strings.Contains(o, "-- --retry-failed") {
		t.Fatalf("finish with a shard missing: exit %d\n%s", c, o)
	}
	// the second array, then the final job succeeds
	if o, c := runTask(t, path, script, 3, 0); c != 0 || !strings.Contains(o, "shard 3/4") {
		t.Fatalf("second array: exit %d\n%s", c, o)
	}
	o, c = runTask(t, path, finish, 0, 0)
	if c != 0 || !strings.Contains(o, "verify:  ok") || !strings.Contains(o, "parts -> 1") {
		t.Fatalf("finish: exit %d\n%s", c, o)
	}
	got, n := rowsOf(t, out)
	ref := t.TempDir()
	if _, errs, code := runCLI(t, "run", seedStudy, "--out", ref, "--progress", "none", "--quiet"); code != 0 {
		t.Fatal(errs)
	}
	want, _ := rowsOf(t, ref)
	if n != 180 || len(got) != 180 {
		t.Fatalf("%d rows, %d points, want 180", n, len(got))
	}
	for id, v := range want {
		if got[id] != v {
			t.Fatalf("point %s: %q, local run %q", id, got[id], v)
		}
	}
}

func TestSlurmSubmitWithoutSbatch(t *testing.T) {
	noSlurm(t)
	out := filepath.Join(t.TempDir(), "ds")
	stdout, errs, code := runCLI(t, "slurm", seedStudy, "--tasks", "2", "--out", out, "--submit", "--sweep-bin", sweepBin)
	if code != 1 || !strings.Contains(errs, "--submit: sbatch is not on PATH") || !strings.Contains(errs, "sbatch --parsable --array=0-1 ") {
		t.Fatalf("exit %d\n%s%s", code, stdout, errs)
	}
	if _, err := os.Stat(filepath.Join(out, "slurm", "seed-moe.sbatch")); err != nil {
		t.Fatalf("script not written: %v", err)
	}
}

func TestSlurmSplitsArrays(t *testing.T) {
	noSlurm(t)
	out := filepath.Join(t.TempDir(), "ds")
	stdout, errs, code := runCLI(t, "slurm", seedStudy, "--tasks", "10", "--max-array-size", "4", "--parallel", "2", "--cpus", "3", "--out", out, "--sweep-bin", sweepBin)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	script := filepath.Join(out, "slurm", "seed-moe.sbatch")
	for _, want := range []string{
		"3 job array(s) (MaxArraySize 4",
		"a0=$(sbatch --parsable --array=0-3%2 " + script + " 0)",
		"a1=$(sbatch --parsable --array=0-3%2 --dependency=afterany:$a0 " + script + " 4)",
		"a2=$(sbatch --parsable --array=0-1%2 --dependency=afterany:$a1 " + script + " 8)",
		"--dependency=afterany:$a0:$a1:$a2 ",
		"3 CPU(s) per task",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
}

// stubSbatch puts an sbatch on PATH that runs body (bash) and nothing else.
// It stands in for sbatch only to test how failures of sbatch are handled;
// the real scheduler is exercised by .ci/slurm-test.sh.
func stubSbatch(t *testing.T, body string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sbatch"), []byte("#!/bin/bash\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
}

func TestSlurmSubmitFailsLoudly(t *testing.T) {
	for _, c := range []struct{ name, body, want string }{
		{"no job id", `exit 0`, "no job id in sbatch's output"},
		{"not a job id", `echo "Submitted batch job 12"`, `no job id in sbatch's output "Submitted batch job 12"`},
		{"sbatch fails", `echo "sbatch: error: invalid partition specified: nope" >&2; exit 1`, "invalid partition specified: nope"},
		{"second array fails", `n=0; [ -f "$0.n" ] && read -r n <"$0.n"; n=$((n + 1)); echo $n >"$0.n"; [ $n = 1 ] && { echo 101; exit 0; }; echo "sbatch: error: QOSMaxSubmitJobPerUserLimit" >&2; exit 1`,
			"already submitted: job(s) 101 (cancel them with scancel 101)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			stubSbatch(t, c.body)
			out := filepath.Join(t.TempDir(), "ds")
			stdout, errs, code := runCLI(t, "slurm", seedStudy, "--tasks", "4", "--max-array-size", "2", "--out", out, "--submit", "--sweep-bin", sweepBin)
			if code != 1 || !strings.Contains(errs, c.want) {
				t.Fatalf("exit %d, want 1 and %q\n%s%s", code, c.want, stdout, errs)
			}
		})
	}
}

func TestSlurmUsageErrors(t *testing.T) {
	noSlurm(t)
	for _, args := range [][]string{
		{"slurm"},
		{"slurm", seedStudy, "--tasks", "0"},
		{"slurm", seedStudy, "--cpus", "0"},
		{"slurm", seedStudy, "--cpus", "2048"}, // every task's sweep run would refuse --jobs 2048
		{"slurm", seedStudy, "--parallel", "-1"},
		{"slurm", seedStudy, "--time", "abc"},
		{"slurm", seedStudy, "--time", "1:00:00:00"},
		{"slurm", seedStudy, "--sweep-bin", sweepBin, "--out", t.TempDir(), "--tasks", "181"}, // the seed study has 180 points
		{"slurm", seedStudy, "--nope"},
		{"slurm", "no-such-study.toml", "--sweep-bin", sweepBin},
		{"slurm", seedStudy, "--sweep-bin", "/nonexistent/sweep"},
		{"slurm", seedStudy, "--sweep-bin", sweepBin, "--out", t.TempDir(), "--", "--shard", "0/2"},
		{"slurm", seedStudy, "--sweep-bin", sweepBin, "--out", t.TempDir(), "--", "--retry-failed", "--bogus"},
		{"slurm", seedStudy, "--sweep-bin", sweepBin, "--out", t.TempDir(), "--", "--flush-rows", "many"},
		{"slurm", seedStudy, "--sweep-bin", sweepBin, "--out", t.TempDir(), "--", "--retry-failed", "stray"},
		{"slurm", seedStudy, "--sweep-bin", sweepBin, "--out", t.TempDir(), "--", "--out", "elsewhere"},
		{"slurm", seedStudy, "--sweep-bin", sweepBin, "--out", t.TempDir(), "--", "--flush-rows", "0"},
		{"slurm", seedStudy, "--sweep-bin", sweepBin, "--out", t.TempDir(), "--", "--flush-every", "0s"},
		{"slurm", seedStudy, "--sweep-bin", sweepBin, "--out", t.TempDir(), "--", "--progress", "fancy"},
	} {
		if _, errs, code := runCLI(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errs)
		}
	}
}

// TestSlurmRefusesWhileAnotherShardingWrites: submitting an array of 4
// shards into a folder that a run without --shard is writing is refused
// before anything is submitted (every task would be refused).
func TestSlurmRefusesWhileAnotherShardingWrites(t *testing.T) {
	noSlurm(t)
	out := t.TempDir()
	f, err := os.OpenFile(filepath.Join(out, ".lock-sharding-1"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		t.Fatal(err)
	}
	_, errs, code := runCLI(t, "slurm", seedStudy, "--tasks", "4", "--out", out, "--sweep-bin", sweepBin, "--submit")
	if code != 1 || !strings.Contains(errs, "being written by a sweep run without --shard") {
		t.Fatalf("exit %d: %s", code, errs)
	}
}

// TestSlurmTimeForms: --time takes every form sbatch --time documents and
// nothing else.
func TestSlurmTimeForms(t *testing.T) {
	for _, v := range []string{"30", "30:15", "1:00:00", "2-12", "2-12:30", "2-12:30:15", "UNLIMITED", "infinite"} {
		if !slurmTime.MatchString(v) {
			t.Errorf("--time %q refused", v)
		}
	}
	for _, v := range []string{"abc", "1h", "1:00:00:00", "-5", "1-", "1:", "1.5", " 10"} {
		if slurmTime.MatchString(v) {
			t.Errorf("--time %q accepted", v)
		}
	}
}

// TestSlurmSmallStudyAndOtherStudy: a study of fewer points than the
// default 8 tasks gets one task per point (an explicit --tasks beyond the
// points is refused, TestSlurmUsageErrors); a --out folder holding another
// study's rows is refused as every task's sweep run would refuse it,
// unless -- --mix-studies is passed on.
func TestSlurmSmallStudyAndOtherStudy(t *testing.T) {
	noSlurm(t)
	dir := t.TempDir()
	small := filepath.Join(dir, "small.toml")
	study := "[study]\nname = \"small\"\nengine = \"moe\"\n[base]\nmodel = \"gpt3-7B\"\nhardware = \"neupims\"\n[axes]\nbatch_size = [64, 128]\n"
	if err := os.WriteFile(small, []byte(study), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, errs, code := runCLI(t, "slurm", small, "--out", filepath.Join(dir, "small"), "--sweep-bin", sweepBin)
	if code != 0 || !strings.Contains(stdout, "2 points in 2 shards") || !strings.Contains(stdout, "--array=0-1") {
		t.Fatalf("slurm of a 2-point study: exit %d\n%s%s", code, stdout, errs)
	}
	seed := filepath.Join(dir, "seed")
	if _, errs, code := runCLI(t, "run", seedStudy, "--out", seed, "--progress", "none", "--quiet"); code != 0 {
		t.Fatalf("run: %s", errs)
	}
	stdout, errs, code = runCLI(t, "slurm", small, "--out", seed, "--sweep-bin", sweepBin)
	if code != 2 || !strings.Contains(errs, `--out: `+seed+` holds rows of study "seed-moe", and this is study "small"`) {
		t.Fatalf("slurm into another study's folder: exit %d\n%s%s", code, stdout, errs)
	}
	if _, err := os.Stat(filepath.Join(seed, "slurm")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused slurm wrote scripts: %v", err)
	}
	if stdout, errs, code := runCLI(t, "slurm", small, "--out", seed, "--sweep-bin", sweepBin, "--", "--mix-studies"); code != 0 {
		t.Fatalf("slurm -- --mix-studies: exit %d\n%s%s", code, stdout, errs)
	}
}
