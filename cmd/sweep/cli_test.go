package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sweep-dse/sweep/dataset"
)

var sweepBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sweep-cli-test")
	if err != nil {
		panic(err)
	}
	sweepBin = filepath.Join(dir, "sweep")
	build := exec.Command("go", "build", "-o", sweepBin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building sweep: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runCLI calls run() in-process and returns stdout, stderr and the exit code.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), &out, &errb, args)
	code := exitCode(err, &errb)
	return out.String(), errb.String(), code
}

// rowsOf reads point_id and a few values of every row of a dataset.
func rowsOf(t *testing.T, dir string) (map[string]string, int) {
	t.Helper()
	parts, err := dataset.Parts(dir)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	n := 0
	cols := []string{dataset.ColID, dataset.ColStatus, "latency_s", "cycles_total", "params_layer", "tokens_per_expert_max", "num_experts", "batch_size"}
	for _, p := range parts {
		err := dataset.Scan(context.Background(), p, cols, func(rec arrow.RecordBatch) error {
			for i := 0; i < int(rec.NumRows()); i++ {
				id := rec.Column(0).(*array.String).Value(i)
				var b strings.Builder
				for c := 1; c < len(cols); c++ {
					fmt.Fprintf(&b, "%v|", rec.Column(c).GetOneForMarshal(i))
				}
				rows[id] = b.String()
				n++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return rows, n
}

func planCount(t *testing.T, study string) int {
	out, errs, code := runCLI(t, "plan", study, "--count", "--out", t.TempDir())
	if code != 0 {
		t.Fatalf("plan: %d %s", code, errs)
	}
	var n int
	fmt.Sscan(out, &n)
	return n
}

// TestKillAndResume SIGKILLs a real `sweep run` at random moments, resumes
// each time, and checks the final dataset holds every point exactly once
// with the values of an uninterrupted run.
//
// `make torture` sets SWEEP_TORTURE_KILLS=20 and
// SWEEP_TORTURE_STUDY=testdata/torture.toml (200k points).
func TestKillAndResume(t *testing.T) {
	study := "testdata/kill.toml"
	if s := os.Getenv("SWEEP_TORTURE_STUDY"); s != "" {
		study = s
	}
	want := planCount(t, study)
	ref := t.TempDir()
	if _, errs, code := runCLI(t, "run", study, "--out", ref, "--progress", "none", "--quiet"); code != 0 {
		t.Fatalf("reference run: %s", errs)
	}
	refRows, n := rowsOf(t, ref)
	if n != want || len(refRows) != want {
		t.Fatalf("reference run has %d rows, %d distinct, want %d", n, len(refRows), want)
	}

	dir := t.TempDir()
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	kills := 5
	if os.Getenv("SWEEP_TORTURE_KILLS") != "" {
		fmt.Sscan(os.Getenv("SWEEP_TORTURE_KILLS"), &kills)
	}
	killed := 0
	for i := 0; i < kills; i++ {
		cmd := exec.Command(sweepBin, "run", study, "--out", dir, "--jobs", "2", "--flush-rows", "3000", "--progress", "none", "--quiet")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		if i%2 == 0 {
			// a random early moment: during expansion or the first points
			time.Sleep(time.Duration(r.IntN(150)) * time.Millisecond)
		} else {
			// shortly after a part lands: mid-sweep for sure
			parts0, _ := dataset.Parts(dir)
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
				if p, _ := dataset.Parts(dir); len(p) > len(parts0) {
					break
				}
			}
			time.Sleep(time.Duration(r.IntN(40)) * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		err := <-exited
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			killed++
		} else if err != nil {
			t.Fatalf("run %d failed: %v\n%s", i, err, stderr.String())
		}
	}
	t.Logf("%d of %d runs killed mid-sweep", killed, kills)
	if _, errs, code := runCLI(t, "run", study, "--out", dir, "--progress", "none", "--quiet"); code != 0 {
		t.Fatalf("final resume: %s", errs)
	}
	got, n := rowsOf(t, dir)
	if n != want || len(got) != want {
		t.Fatalf("after kills: %d rows, %d distinct, want %d each", n, len(got), want)
	}
	for id, v := range refRows {
		if got[id] != v {
			t.Fatalf("point %s: %q after kills, %q uninterrupted", id, got[id], v)
		}
	}
	if out, errs, code := runCLI(t, "status", dir, "--verify", "--study", study); code != 0 {
		t.Fatalf("status --verify: %d\n%s%s", code, out, errs)
	}
}

// TestInterruptExit130 sends SIGINT to a real run: exit 130, a resume hint,
// every part readable, and a resume completes the study.
func TestInterruptExit130(t *testing.T) {
	study := "testdata/kill.toml"
	want := planCount(t, study)
	dir := t.TempDir()
	cmd := exec.Command(sweepBin, "run", study, "--out", dir, "--jobs", "2", "--flush-rows", "2000", "--progress", "lines", "--progress-every", "10ms")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// interrupt once the first part has landed: mid-sweep for sure
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if p, _ := dataset.Parts(dir); len(p) > 0 {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Wait()
	code := cmd.ProcessState.ExitCode()
	if code == 0 {
		t.Skip("the run finished before the signal; machine too fast for this study")
	}
	if code != 130 {
		t.Fatalf("exit %d, want 130\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "resume with: sweep run "+study) {
		t.Fatalf("no resume hint:\n%s", stderr.String())
	}
	if strings.Contains(stderr.String(), "\r") {
		t.Fatal("plain progress contains a carriage return")
	}
	rows, n := rowsOf(t, dir) // every part readable
	if n == 0 || n >= want || len(rows) != n {
		t.Fatalf("after SIGINT: %d rows (%d distinct) of %d", n, len(rows), want)
	}
	if _, errs, code := runCLI(t, "run", study, "--out", dir, "--progress", "none", "--quiet"); code != 0 {
		t.Fatalf("resume: %s", errs)
	}
	if _, n := rowsOf(t, dir); n != want {
		t.Fatalf("after resume %d rows, want %d", n, want)
	}
}

// TestEarlyInterrupt interrupts a run before its first point: exit 130.
func TestEarlyInterrupt(t *testing.T) {
	cmd := exec.Command(sweepBin, "run", "testdata/kill.toml", "--out", t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 && code != -1 {
		t.Fatalf("exit %d, want 130\n%s", code, stderr.String())
	}
}

// TestExtendAxisRunsOnlyNewPoints adds a value to an axis of a finished
// study: only the new points run.
func TestExtendAxisRunsOnlyNewPoints(t *testing.T) {
	tmp := t.TempDir()
	study := filepath.Join(tmp, "s.toml")
	write := func(experts string) {
		text := "[study]\nname = \"ext\"\n[axes]\nnum_experts = [" + experts + "]\nbatch_size = [64, 128]\n"
		if err := os.WriteFile(study, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(tmp, "ds")
	write("8, 16")
	if _, errs, code := runCLI(t, "run", study, "--out", out, "--progress", "none", "--quiet"); code != 0 {
		t.Fatal(errs)
	}
	before, _ := rowsOf(t, out)
	write("8, 16, 32")
	stdout, errs, code := runCLI(t, "run", study, "--out", out, "--progress", "none")
	if code != 0 {
		t.Fatal(errs)
	}
	if !strings.Contains(stdout, "ran 2 (2 ok, 0 failed)") || !strings.Contains(stdout, "4 were already done") {
		t.Fatalf("extension ran the wrong points:\n%s", stdout)
	}
	after, n := rowsOf(t, out)
	if n != 6 || len(after) != 6 {
		t.Fatalf("%d rows after extension", n)
	}
	for id, v := range before {
		if after[id] != v {
			t.Fatalf("point %s changed", id)
		}
	}
}

// TestEditedTraceRerunsItsPoints: editing a file the study names makes its
// points pending, for plan, status --verify and run alike; an unchanged
// file reruns nothing.
func TestEditedTraceRerunsItsPoints(t *testing.T) {
	tmp := t.TempDir()
	os.MkdirAll(filepath.Join(tmp, "traces"), 0o755)
	trace := filepath.Join(tmp, "traces", "t.csv")
	writeTrace := func(text string) {
		if err := os.WriteFile(trace, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeTrace("seq_len,ch_idx\n128,0\n256,1\n512,2\n")
	study := filepath.Join(tmp, "s.toml")
	text := "[study]\nname = \"trace\"\nseed = 1\n[base]\nmodel = \"gpt3-7B\"\nn_layers = 1\nseq_trace = \"traces/t.csv\"\n[axes]\nbatch_size = [4, 8]\n"
	if err := os.WriteFile(study, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "ds")
	if _, errs, code := runCLI(t, "run", study, "--out", out, "--progress", "none", "--quiet"); code != 0 {
		t.Fatal(errs)
	}
	check := func(args []string, wantCode int, want string) {
		t.Helper()
		stdout, errs, code := runCLI(t, args...)
		if code != wantCode || !strings.Contains(stdout, want) {
			t.Fatalf("%s: exit %d, want %d and %q in\n%s%s", strings.Join(args, " "), code, wantCode, want, stdout, errs)
		}
	}
	check([]string{"run", study, "--out", out, "--progress", "none"}, 0, "ran 0 (0 ok, 0 failed)")
	check([]string{"status", out, "--study", study, "--verify"}, 0, "verify:  ok")

	writeTrace("seq_len,ch_idx\n1024,0\n2048,1\n4096,2\n")
	check([]string{"plan", study, "--out", out}, 0, "dataset: "+out+": 0 done, 0 failed, 2 pending")
	check([]string{"status", out, "--study", study, "--verify"}, 1, "missing: 2 points")
	check([]string{"run", study, "--out", out, "--progress", "none"}, 0, "ran 2 (2 ok, 0 failed)")
	check([]string{"status", out, "--study", study, "--verify"}, 0, "verify:  ok")
	// the rows of the old trace stay, and status says so
	check([]string{"status", out, "--study", study}, 0, "note:    2 points with rows here are not points of the study as it stands")

	// a file that cannot be read: bad input at the key that names it
	os.Remove(trace)
	_, errs, code := runCLI(t, "plan", study, "--out", out)
	if want := study + ":7: base.seq_trace: " + trace + ": cannot read"; code != 2 || !strings.Contains(errs, want) {
		t.Fatalf("plan with the trace removed: exit %d, want 2 and %q in\n%s", code, want, errs)
	}
}

// TestBadStudiesLeaveDatasetUntouched runs every malformed study against an
// existing dataset: exit 2, a file:line error, and the dataset unchanged.
func TestBadStudiesLeaveDatasetUntouched(t *testing.T) {
	out := t.TempDir()
	if _, errs, code := runCLI(t, "run", "../../studies/seed-moe.toml", "--out", out, "--progress", "none", "--quiet"); code != 0 {
		t.Fatal(errs)
	}
	snap := snapshot(t, out)
	files, _ := filepath.Glob("../../sweep/testdata/bad/*.toml")
	if len(files) < 15 {
		t.Fatalf("only %d malformed studies", len(files))
	}
	for _, f := range files {
		_, errs, code := runCLI(t, "run", f, "--out", out, "--progress", "none")
		if code != 2 {
			t.Errorf("%s: exit %d, want 2\n%s", f, code, errs)
		}
		if !strings.Contains(errs, f) {
			t.Errorf("%s: error does not name the file: %s", f, errs)
		}
		if got := snapshot(t, out); got != snap {
			t.Fatalf("%s changed the dataset", f)
		}
	}
}

// snapshot lists a folder's files with their contents' digests.
func snapshot(t *testing.T, dir string) string {
	var b strings.Builder
	var names []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			names = append(names, p)
		}
		return nil
	})
	sort.Strings(names)
	for _, n := range names {
		data, _ := os.ReadFile(n)
		fmt.Fprintf(&b, "%s %d %x\n", n, len(data), data[:min(len(data), 64)])
		b.Write(data)
	}
	return b.String()
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"frobnicate"},
		{"run"},
		{"run", "a.toml", "b.toml"},
		{"run", "../../studies/seed-moe.toml", "--jobs", "0"},
		{"run", "../../studies/seed-moe.toml", "--shard", "4/4"},
		{"run", "../../studies/seed-moe.toml", "--bogus"},
		{"run", "no-such-study.toml"},
		{"sim", "--set", "num_experts"},
		{"sim", "--set", "nope=1"},
		{"sim", "--set", "top_k=two"},
		{"sim", "--set", "num_experts=8", "--set", "top_k=9"},
		{"sim", "--set", "batch_size=0"},
		{"sim", "--set", "top_k=1", "--set", "top_k=2"},
		{"sim", "--set", "seq_len=100000000", "--set", "batch_size=1000000"}, // 64-bit overflow
		{"sim", "--model-config", "../../engine/moe/testdata/hf/mixtral-8x7b.json", "--set", "model_config=x.json"},
		{"sim", "--model-config", "no-such.json"},
		{"plan", "../../studies/seed-moe.toml", "--show", "-1"},
		{"run", "../../studies/seed-moe.toml", "--flush-every", "0"},
		{"run", "../../studies/seed-moe.toml", "--out", t.TempDir(), "--progress-every", "0s"},
		{"run", "../../studies/seed-moe.toml", "--out", t.TempDir(), "--progress", "lines", "--progress-every", "-1s"},
		{"version", "extra"},
		{"params", "extra"},
		{"run", "../../studies/seed-moe.toml", "--jobs", "5000"},
		{"best", t.TempDir(), "--by", "latency_s", "--bogus"},
		{"compact", "/nonexistent/dataset"},
		{"run", "../../studies/seed-moe.toml", "--out", "../../README.md"},
		{"report", t.TempDir(), "-o", "../../README.md"},
		{"help", "nosuch"},
	} {
		out, errs, code := runCLI(t, args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errs)
		}
		if !strings.HasPrefix(errs, "sweep: ") {
			t.Errorf("%v: error %q", args, errs)
		}
		if out != "" { // a usage on stdout would land in a redirected CSV
			t.Errorf("%v: printed on stdout:\n%s", args, out)
		}
	}
}

// TestPlanHonoursMaxPoints: plan refuses a study above its max_points, as
// run does, unless --force.
func TestPlanHonoursMaxPoints(t *testing.T) {
	text, err := os.ReadFile(seedStudy)
	if err != nil {
		t.Fatal(err)
	}
	study := filepath.Join(t.TempDir(), "capped.toml")
	os.WriteFile(study, []byte(strings.Replace(string(text), "seed = 1\n", "seed = 1\nmax_points = 10\n", 1)), 0o644)
	_, errs, code := runCLI(t, "plan", study, "--count")
	if code != 2 || !strings.Contains(errs, "more than max_points = 10") {
		t.Fatalf("plan above max_points: exit %d %s", code, errs)
	}
	if out, errs, code := runCLI(t, "plan", study, "--count", "--force"); code != 0 || strings.TrimSpace(out) != "180" {
		t.Fatalf("plan --force: exit %d %q %s", code, out, errs)
	}
}

func TestHelp(t *testing.T) {
	for _, v := range verbs() {
		out, errs, code := runCLI(t, v.name, "--help")
		if code != 0 || !strings.Contains(out, "Usage: sweep "+v.name) {
			t.Errorf("%s --help: exit %d\n%s%s", v.name, code, out, errs)
		}
	}
	out, _, code := runCLI(t, "help")
	if code != 0 || !strings.Contains(out, "Verbs:") {
		t.Errorf("help: %d %s", code, out)
	}
}

// TestRunIntoAnotherStudysFolder: running a study into a folder that holds
// another study's dataset is refused with exit 2, naming --out and both
// studies, and leaves the dataset as it was; plan says so beforehand, and
// --mix-studies adds the points.
func TestRunIntoAnotherStudysFolder(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "ds")
	if _, errs, code := runCLI(t, "run", "../../studies/seed-moe.toml", "--out", out, "--progress", "none", "--quiet"); code != 0 {
		t.Fatalf("first run: %d %s", code, errs)
	}
	other := filepath.Join(dir, "other.toml")
	study := "[study]\nname = \"other\"\nengine = \"moe\"\n[base]\nmodel = \"gpt3-7B\"\nhardware = \"neupims\"\n[axes]\nbatch_size = [64, 128]\n"
	if err := os.WriteFile(other, []byte(study), 0o644); err != nil {
		t.Fatal(err)
	}
	before, n := rowsOf(t, out)
	_, errs, code := runCLI(t, "run", other, "--out", out, "--progress", "none")
	if code != 2 || !strings.Contains(errs, "--out: "+out+` holds rows of study "seed-moe", and this is study "other"`) || !strings.Contains(errs, "--mix-studies") {
		t.Fatalf("run of another study: exit %d, stderr %q", code, errs)
	}
	if after, m := rowsOf(t, out); m != n || !maps.Equal(before, after) {
		t.Fatalf("the refused run changed the dataset: %d rows, then %d", n, m)
	}
	if stdout, errs, code := runCLI(t, "plan", other, "--out", out); code != 0 || !strings.Contains(stdout, `holds rows of study "seed-moe"; sweep run refuses`) {
		t.Fatalf("plan: exit %d, stdout %q, stderr %q", code, stdout, errs)
	}
	if _, errs, code := runCLI(t, "run", other, "--out", out, "--progress", "none", "--quiet", "--mix-studies"); code != 0 || !strings.Contains(errs, `this run adds the points of study "other"`) {
		t.Fatalf("run with --mix-studies: exit %d, stderr %q", code, errs)
	}
	if _, m := rowsOf(t, out); m != n+2 {
		t.Fatalf("%d rows after --mix-studies, want %d", m, n+2)
	}
	// status checks one study and names the one it leaves out
	if stdout, errs, code := runCLI(t, "status", out, "--verify"); code != 0 || !strings.Contains(stdout, "study:   other: 2 points") || !strings.Contains(stdout, `also holds rows of study "seed-moe", which this check leaves out`) {
		t.Fatalf("status of the mixed dataset: exit %d, stdout %q, stderr %q", code, stdout, errs)
	}
	if stdout, errs, code := runCLI(t, "status", out, "--study", "../../studies/seed-moe.toml"); code != 0 || !strings.Contains(stdout, `also holds rows of study "other"`) {
		t.Fatalf("status --study of the mixed dataset: exit %d, stdout %q, stderr %q", code, stdout, errs)
	}
}
