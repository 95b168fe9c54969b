package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFiles writes files (name -> text) into a fresh folder and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestScalingOfAPresetThroughTheCLI: the QA case of moe_ffn_scaling with a
// preset that sets d_ff_expert. The scaling mode now rescales the preset's
// width from its 8 experts (balanced at 32: 14336·8/32 = 3584), and plan
// and run note that at the preset's own 8 experts the modes repeat each
// other.
func TestScalingOfAPresetThroughTheCLI(t *testing.T) {
	dir := writeFiles(t, map[string]string{"study.toml": `[study]
name = "mixtral-scaling"
[base]
model = "mixtral-8x7b"
n_layers = 1
batch_size = 16
[axes]
num_experts = [8, 32]
moe_ffn_scaling = ["balanced", "compute", "capacity"]
`})
	study := filepath.Join(dir, "study.toml")
	out := filepath.Join(dir, "out")
	note := study + `:9: axes.moe_ffn_scaling has no effect on 3 of 6 points (moe_ffn_scaling rescales the model's d_ff_expert from the model's own num_experts, where every mode keeps it; those points have num_experts = 8)`
	stdout, errs, code := runCLI(t, "plan", study, "--out", out)
	if code != 0 || !strings.Contains(stdout, note) {
		t.Fatalf("plan: exit %d, want the note %q\n%s%s", code, note, stdout, errs)
	}
	stdout, errs, code = runCLI(t, "run", study, "--out", out, "--progress", "none")
	if code != 0 || !strings.Contains(errs, note) || strings.Count(errs, "note:") != 1 {
		t.Fatalf("run: exit %d, want one note %q\n%s%s", code, note, stdout, errs)
	}
	want := map[string]int64{"8 balanced": 14336, "8 compute": 14336, "8 capacity": 14336,
		"32 balanced": 3584, "32 compute": 7168, "32 capacity": 14336}
	rows := datasetRows(t, out, "num_experts", "moe_ffn_scaling", "d_ff_expert", "params_per_expert")
	if len(rows) != 6 {
		t.Fatalf("%d rows", len(rows))
	}
	perExpert := map[string]int64{}
	for _, r := range rows {
		k := fmt.Sprintf("%v %v", r["num_experts"], r["moe_ffn_scaling"])
		if got := r["d_ff_expert"].(int64); got != want[k] {
			t.Errorf("%s: d_ff_expert = %d, want %d", k, got, want[k])
		}
		perExpert[k] = r["params_per_expert"].(int64)
	}
	if perExpert["32 balanced"] == perExpert["32 compute"] || perExpert["32 compute"] == perExpert["32 capacity"] {
		t.Errorf("the scaling modes give the same experts at 32: %v", perExpert)
	}
	// sim says where the width came from
	stdout, errs, code = runCLI(t, "sim", "--set", "model=mixtral-8x7b", "--set", "num_experts=32", "--set", "moe_ffn_scaling=balanced", "--set", "n_layers=1")
	if code != 0 || !strings.Contains(stdout, "d_ff_expert = 3584 (model preset mixtral-8x7b's 14336 at 8 experts, moe_ffn_scaling balanced: 14336·8/32)") {
		t.Fatalf("sim: exit %d\n%s%s", code, stdout, errs)
	}
	stdout, errs, code = runCLI(t, "sim", "--set", "model=mixtral-8x7b", "--set", "n_layers=1")
	if code != 0 || !strings.Contains(stdout, "d_ff_expert = 14336 (model preset mixtral-8x7b's)") || strings.Contains(stdout, "balanced") {
		t.Fatalf("sim: exit %d\n%s%s", code, stdout, errs)
	}
}

// TestNoEffectThroughTheCLI: a parameter that no point uses fails plan and
// run with exit 2, naming file, line and key, and leaves no dataset; the
// conflict of d_ff_expert and moe_ffn_scaling too. One that some points
// use is a note.
func TestNoEffectThroughTheCLI(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"requests.csv": "seq_len,ch_idx\n100,0\n2048,1\n",
		"skew.toml": `[study]
name = "skew"
[base]
num_experts = 8
[axes]
routing_skew = [0.5, 1.0, 2.0]
`,
		"trace.toml": `[study]
name = "trace"
[base]
num_experts = 8
routing_trace = "no-such-routing.csv"
[axes]
batch_size = [16, 32]
`,
		"seqlen.toml": `[study]
name = "seqlen"
[base]
num_experts = 8
seq_trace = "requests.csv"
[axes]
seq_len = [512, 1024]
`,
		"conflict.toml": `[study]
name = "conflict"
[base]
num_experts = 64
d_ff_expert = 256
[axes]
moe_ffn_scaling = ["balanced", "compute"]
`,
		"partial.toml": `[study]
name = "partial"
[base]
num_experts = 8
n_layers = 1
batch_size = 16
[axes]
routing = ["uniform", "zipf"]
routing_skew = [0.5, 1.0, 2.0]
`,
	})
	for _, tc := range []struct{ file, want string }{
		{"skew.toml", `skew.toml:6: axes.routing_skew: has no effect on any point: routing_skew applies only to routing = "zipf" (every point has routing = "uniform")`},
		{"trace.toml", `trace.toml:5: base.routing_trace: has no effect on any point: routing_trace applies only to routing = "trace" (every point has routing = "uniform")`},
		{"seqlen.toml", `seqlen.toml:7: axes.seq_len: has no effect on any point: seq_len applies only without seq_trace: each request's KV length comes from the trace (every point has seq_trace = "requests.csv")`},
		{"conflict.toml", `conflict.toml:7: axes.moe_ffn_scaling: moe_ffn_scaling = balanced: conflicts with d_ff_expert = 256, which is given too`},
	} {
		study := filepath.Join(dir, tc.file)
		out := filepath.Join(dir, "out-"+tc.file)
		for _, verb := range []string{"plan", "run"} {
			args := []string{verb, study, "--out", out}
			if verb == "run" {
				args = append(args, "--progress", "none")
			}
			_, errs, code := runCLI(t, args...)
			if code != 2 || !strings.Contains(errs, filepath.Join(dir, tc.want)) {
				t.Errorf("%s %s: exit %d, want 2 and\n  %s\ngot\n  %s", verb, tc.file, code, filepath.Join(dir, tc.want), errs)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("%s %s: the dataset folder was created", verb, tc.file)
			}
		}
	}
	study := filepath.Join(dir, "partial.toml")
	note := study + `:9: axes.routing_skew has no effect on 3 of 6 points (routing_skew applies only to routing = "zipf"; those points have routing = "uniform")`
	stdout, errs, code := runCLI(t, "plan", study, "--out", filepath.Join(dir, "out-partial"))
	if code != 0 || !strings.Contains(stdout, note) {
		t.Errorf("plan: exit %d, want the note\n  %s\n%s%s", code, note, stdout, errs)
	}
	stdout, errs, code = runCLI(t, "run", study, "--out", filepath.Join(dir, "out-partial"), "--progress", "none")
	if code != 0 || !strings.Contains(errs, note) || !strings.Contains(stdout, "ran 6 (6 ok, 0 failed)") {
		t.Errorf("run: exit %d, want the note\n  %s\n%s%s", code, note, stdout, errs)
	}
	// status of the dataset of a study that is refused now still reads it
	if _, errs, code := runCLI(t, "status", filepath.Join(dir, "out-partial")); code != 0 {
		t.Errorf("status: exit %d\n%s", code, errs)
	}
}

// TestSimSetWithoutEffect: sweep sim refuses a --set that changes nothing
// (exit 2), before reading its file; the routing trace is checked when it
// is used.
func TestSimSetWithoutEffect(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--set", "num_experts=8", "--set", "routing_trace=no-such.csv"},
			`--set routing_trace=no-such.csv: has no effect: routing_trace applies only to routing = "trace" (the point has routing = "uniform")`},
		{[]string{"--set", "num_experts=8", "--set", "routing_skew=2"},
			`--set routing_skew=2: has no effect: routing_skew applies only to routing = "zipf" (the point has routing = "uniform")`},
		{[]string{"--set", "seed=3", "--set", "routing=zipf"},
			`--set routing=zipf: has no effect: routing applies only to MoE layers, num_experts >= 1 (the point has num_experts = 0); nor has --set seed=3`},
		{[]string{"--set", "num_experts=8", "--set", "routing=trace", "--set", "routing_trace=no-such.csv"},
			`no-such.csv`},
	} {
		_, errs, code := runCLI(t, append([]string{"sim"}, tc.args...)...)
		if code != 2 || !strings.Contains(errs, tc.want) {
			t.Errorf("sim %v: exit %d, want 2 and %q\n%s", tc.args, code, tc.want, errs)
		}
	}
}

// TestShippedStudiesPlan: every study in studies/ plans without error
// (the NeuPIMs one needs a NeuPIMs checkout; TestExampleNeupimsStudy plans
// it against the test configs).
func TestShippedStudiesPlan(t *testing.T) {
	files, _ := filepath.Glob("../../studies/*.toml")
	if len(files) < 4 {
		t.Fatalf("only %d studies", len(files))
	}
	for _, f := range append(files, "../../bench/perf-100k.toml") {
		if filepath.Base(f) == "neupims-command.toml" {
			continue
		}
		stdout, errs, code := runCLI(t, "plan", f, "--out", t.TempDir(), "--show", "0")
		if code != 0 {
			t.Errorf("%s: exit %d\n%s%s", f, code, stdout, errs)
		}
		if strings.Contains(stdout, "note:") && !strings.Contains(f, "perf-") {
			t.Errorf("%s: %s", f, stdout)
		}
	}
}
