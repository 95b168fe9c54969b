package command

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sweep-dse/sweep/engine"
)

func TestJSONReader(t *testing.T) {
	e := mustBuild(t, t.TempDir(), `
[study]
name = "j"
engine = "command"
[command]
binary = ["@SIM@", "json"]
args = ["cycles", "{{.n}}", "latency", "{{mul .n 0.5}}", "name", "{{.label}}", "flag", "{{gt .n 2}}", "nested", '{"a": {"b": {{add .n 1}}}}']
[metrics]
cycles = { type = "int", unit = "cycle" }
latency = { type = "float", unit = "s" }
name = "string"
flag = "bool"
deep = { type = "int", key = "nested.a.b" }
absent = { type = "float", optional = true }
[base]
label = "x y"
[axes]
n = [3, 4]
`)
	p := point(t, e, map[string]any{"n": 3, "label": "x y"})
	out, work, err := evaluate(t, e, p, false)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]engine.Value{
		"cycles": engine.IntV(3), "latency": engine.FloatV(1.5), "name": engine.StringV("x y"),
		"flag": engine.BoolV(true), "deep": engine.IntV(4), "absent": {},
	}
	for name, w := range want {
		if got := metric(t, e, out, name); got != w {
			t.Errorf("%s = %+v, want %+v", name, got, w)
		}
	}
	if _, err := os.Stat(work); !os.IsNotExist(err) {
		t.Errorf("the work folder of a successful point is left: %v", err)
	}
	// keep = true keeps it, with the captured output
	_, work, err = evaluate(t, e, p, true)
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(work, stdoutFile)); err != nil || !strings.Contains(string(data), `"cycles": 3`) {
		t.Errorf("kept stdout: %q, %v", data, err)
	}
}

func TestRegexReader(t *testing.T) {
	e := mustBuild(t, t.TempDir(), `
[command]
binary = "@SIM@"
args = ["regex"]
reader = "regex"
regex = ['cycles: (?P<cycles>\d+)', 'util = (?P<util>[0-9.]+)']
[metrics]
cycles = "int"
util = "float"
`)
	out, _, err := evaluate(t, e, point(t, e, nil), false)
	if err != nil {
		t.Fatal(err)
	}
	// the last match wins
	if c, u := metric(t, e, out, "cycles"), metric(t, e, out, "util"); c != engine.IntV(1234) || u != engine.FloatV(0.5) {
		t.Errorf("cycles %v util %v, want 1234 and 0.5", c, u)
	}
}

// Values that a shell would split, expand or execute reach the program as
// exactly one literal argument each.
func TestLiteralArguments(t *testing.T) {
	dir := t.TempDir()
	e := mustBuild(t, dir, `
[command]
binary = "@SIM@"
args = ["argv", "{{.v}}", "x{{.v}}"]
[metrics]
n = "int"
[axes]
v = ["two words", "\"double\" 'single'", "a;b", "$(touch pwned)", "-rf", "--log_dir=/", "`+"`id`"+`", "*", "", "new\nline", "back\\slash", "a|b && c > out"]
`)
	values := []string{"two words", `"double" 'single'`, "a;b", "$(touch pwned)", "-rf", "--log_dir=/", "`id`", "*", "", "new\nline", `back\slash`, "a|b && c > out"}
	for _, v := range values {
		p := point(t, e, map[string]any{"v": v})
		out, work, err := evaluate(t, e, p, true)
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if n := metric(t, e, out, "n"); n != engine.IntV(2) {
			t.Errorf("%q became %v arguments, want 2", v, n)
		}
		data, err := os.ReadFile(filepath.Join(work, stdoutFile))
		if err != nil {
			t.Fatal(err)
		}
		var got struct{ Argv []string }
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatalf("%q: %v in %q", v, err, data)
		}
		if len(got.Argv) != 2 || got.Argv[0] != v || got.Argv[1] != "x"+v {
			t.Errorf("%q reached the program as %q", v, got.Argv)
		}
		if _, err := os.Stat(filepath.Join(work, "pwned")); err == nil {
			t.Errorf("%q was executed", v)
		}
		if _, err := os.Stat(filepath.Join(work, "out")); err == nil {
			t.Errorf("%q was redirected", v)
		}
	}
}

func TestFailures(t *testing.T) {
	cases := []struct {
		mode, arg string
		want      []string // substrings of the error
		not       []string
	}{
		{"crash", "", []string{"killed by signal 6 (aborted)"}, nil},
		{"garbage", "", []string{"output: no JSON object on stdout", "Simulation Finished: cycles = lots"}, nil},
		{"fail", "3", []string{"exit status 3 (accepted: [0])", "stderr line 21", "stderr line 30"}, []string{"stderr line 20\n"}},
		{"nonsense", "", []string{"exit status 2", `unknown mode "nonsense"`}, nil},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			e := mustBuild(t, t.TempDir(), `
[command]
binary = "@SIM@"
args = ["{{.mode}}", "{{.arg}}"]
[metrics]
x = "int"
[params]
mode = "string"
arg = "string"
`)
			p := point(t, e, map[string]any{"mode": c.mode, "arg": c.arg})
			_, work, err := evaluate(t, e, p, false)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			for _, w := range c.not {
				if strings.Contains(msg, w) {
					t.Errorf("error %q holds %q: more than the last lines of stderr", msg, w)
				}
			}
			if !strings.Contains(msg, "work folder: "+work) {
				t.Errorf("error %q does not name the kept work folder", msg)
			}
			cmd, err := os.ReadFile(filepath.Join(work, commandFile))
			if err != nil || !strings.Contains(string(cmd), `"`+c.mode+`"`) {
				t.Errorf("kept work folder lacks the command: %q %v", cmd, err)
			}
		})
	}
}

// Where unnamed temporary files are not available, output goes through
// pipes into memory, with the same results.
func TestPipedOutput(t *testing.T) {
	unnamedFiles = false
	defer func() { unnamedFiles = true }()
	TestJSONReader(t)
	TestRegexReader(t)
	TestFailures(t)
}

func TestAcceptedExitStatus(t *testing.T) {
	e := mustBuild(t, t.TempDir(), `
[command]
binary = ["@SIM@", "fail"]
args = ["{{.code}}"]
exit_codes = [0, 7]
reader = "regex"
regex = 'stderr line (?P<x>\d+)'
[metrics]
x = { type = "int", optional = true }
[axes]
code = [7, 8]
`)
	out, _, err := evaluate(t, e, point(t, e, map[string]any{"code": 7}), false)
	if err != nil {
		t.Fatalf("accepted exit status 7: %v", err)
	}
	if x := metric(t, e, out, "x"); x.IsSet() {
		t.Errorf("x = %v from stdout, which is empty", x)
	}
	if _, _, err := evaluate(t, e, point(t, e, map[string]any{"code": 8}), false); err == nil || !strings.Contains(err.Error(), "exit status 8 (accepted: [0 7])") {
		t.Errorf("exit 8: %v", err)
	}
}

// A program that outlives its timeout is killed with its children.
func TestTimeoutKillsProcessGroup(t *testing.T) {
	e := mustBuild(t, t.TempDir(), `
[command]
binary = ["@SIM@", "hang"]
timeout = "300ms"
[metrics]
x = "int"
`)
	_, work, err := evaluate(t, e, point(t, e, nil), false)
	if err == nil || !strings.Contains(err.Error(), "timed out after 300ms; its process group was killed") {
		t.Fatalf("error %v", err)
	}
	if !strings.Contains(err.Error(), "hanging with a child") {
		t.Errorf("error %q lacks the stderr tail", err)
	}
	waitGone(t, readPids(t, filepath.Join(work, "pids.txt")))
}

// What a program leaves running when it exits is killed with its group.
func TestExitKillsLeftovers(t *testing.T) {
	e := mustBuild(t, t.TempDir(), `
[command]
binary = ["@SIM@", "orphan"]
[metrics]
x = "int"
`)
	out, work, err := evaluate(t, e, point(t, e, nil), true)
	if err != nil || out[0] != engine.IntV(1) {
		t.Fatalf("%v %v", out, err)
	}
	waitGone(t, readPids(t, filepath.Join(work, "pids.txt")))
}

// Cancelling the context (Ctrl-C) kills the program and its children; the
// point is not a result, so its work folder goes.
func TestCancelKillsProcessGroup(t *testing.T) {
	e := mustBuild(t, t.TempDir(), `
[command]
binary = ["@SIM@", "hang"]
[metrics]
x = "int"
`)
	root := t.TempDir()
	release := e.SetWorkDir(root, false)
	p := point(t, e, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // a failing test leaves nothing running
	done := make(chan error, 1)
	go func() { done <- e.Evaluate(ctx, p, make([]engine.Value, 1)) }()
	var pids []int
	for deadline := time.Now().Add(30 * time.Second); ; {
		files, _ := filepath.Glob(filepath.Join(root, "*", "pids.txt"))
		if len(files) == 1 {
			if data, err := os.ReadFile(files[0]); err == nil && len(strings.Fields(string(data))) == 2 {
				pids = readPids(t, files[0])
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the fixture never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Evaluate after cancel: %v", err)
	}
	waitGone(t, pids)
	release()
	if ents, _ := os.ReadDir(root); len(ents) > 0 {
		t.Errorf("work folder %s of an interrupted point is left", ents[0].Name())
	}
	// a cancelled context starts nothing
	if err := e.Evaluate(ctx, p, make([]engine.Value, 1)); !errors.Is(err, context.Canceled) {
		t.Errorf("Evaluate with a cancelled context: %v", err)
	}
}

// Work folders are reused by later points only once emptied, and every
// point gets new files for its output (a later point sees nothing an
// earlier one left); failed points keep theirs under their own name.
func TestWorkFolderReuse(t *testing.T) {
	e := mustBuild(t, t.TempDir(), `
[command]
binary = "@SIM@"
args = ["{{.mode}}"]
[command.files]
"in.txt" = { text = "{{.i}}" }
[metrics]
entries = "int"
[params]
mode = { type = "string", default = "entries" }
i = "int"
`)
	root := t.TempDir()
	release := e.SetWorkDir(root, false)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		mode := "entries"
		if i == 2 {
			mode = "fail"
		}
		p := point(t, e, map[string]any{"i": i, "mode": mode})
		out := make([]engine.Value, 1)
		err := e.Evaluate(ctx, p, out)
		if mode == "fail" {
			if err == nil {
				t.Fatal("fail mode succeeded")
			}
			if msg := err.Error(); strings.Contains(msg, "entries ran") || !strings.Contains(msg, "stderr line 30") {
				t.Errorf("the failed point's report shows other points' output or not its own: %q", msg)
			}
			data, rerr := os.ReadFile(filepath.Join(root, e.WorkKey(p), "in.txt"))
			if rerr != nil || string(data) != "2" {
				t.Errorf("failed point's kept folder: %q %v", data, rerr)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		// the rendered file only: nothing left by earlier points
		if out[0] != engine.IntV(1) {
			t.Errorf("point %d found %v entries in its work folder, want 1", i, out[0])
		}
	}
	release()
	ents, _ := os.ReadDir(root)
	if len(ents) != 1 {
		t.Errorf("after the run %d folders, want the failed point's", len(ents))
	}
}

func TestEnvAndFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cfg.tmpl"), []byte(`{"experts": {{.e}}, "name": {{json .name}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	e := mustBuild(t, dir, `
[command]
binary = "@SIM@"
args = ["argv", "{{.work}}/sub/cfg.json"]
inherit_env = false
[command.env]
SIM_EXPERTS = "{{.e}}"
[command.files]
"sub/cfg.json" = { template = "cfg.tmpl" }
"notes.txt" = { text = "experts={{.e}} dir={{.study_dir}}" }
[metrics]
n = "int"
[base]
name = "q\"uote"
[axes]
e = [8, 16]
`)
	p := point(t, e, map[string]any{"e": 16, "name": `q"uote`})
	inv, err := e.Render(p, "/w")
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Env) != 1 || inv.Env[0] != "SIM_EXPERTS=16" {
		t.Errorf("env %q", inv.Env)
	}
	_, work, err := evaluate(t, e, p, true)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	data, _ := os.ReadFile(filepath.Join(work, "sub", "cfg.json"))
	if err := json.Unmarshal(data, &cfg); err != nil || cfg["experts"] != 16.0 || cfg["name"] != `q"uote` {
		t.Errorf("rendered %q: %v", data, err)
	}
	notes, _ := os.ReadFile(filepath.Join(work, "notes.txt"))
	if string(notes) != "experts=16 dir="+dir {
		t.Errorf("notes.txt = %q", notes)
	}
	if inv.Dir != "/w" {
		t.Errorf("default working directory %q, want the work folder", inv.Dir)
	}
}

func TestVersion(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "sim")
	data, err := os.ReadFile(fakesim)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	study := func(arg string) string {
		return `
[command]
binary = "./sim"
args = ["json", "x", "` + arg + `"]
[metrics]
x = "int"
`
	}
	v1 := mustBuild(t, dir, study("1")).Version()
	if v := mustBuild(t, dir, study("1")).Version(); v != v1 {
		t.Errorf("the same study gives versions %s and %s", v1, v)
	}
	if v := mustBuild(t, dir, study("2")).Version(); v == v1 {
		t.Error("a changed argument template keeps the version")
	}
	if err := os.WriteFile(bin, append(data, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	if v := mustBuild(t, dir, study("1")).Version(); v == v1 {
		t.Error("a rebuilt program keeps the version")
	}
}

func TestResolve(t *testing.T) {
	e := mustBuild(t, t.TempDir(), `
[study]
seed = 3
[command]
binary = "@SIM@"
[metrics]
y = "float"
[params]
scale = { type = "float", default = 2, unit = "x" }
need = "int"
mode = { type = "string", enum = ["a", "b"], default = "a" }
[base]
batch = 512
[axes]
rate = [1, 2.5]
name = ["p", "q"]
on = [true, false]
k = { from = 1, to = 4, step = 1 }
[[zip]]
lr = [1, 2]
tag = ["x", "y"]
`)
	kinds := map[string]engine.Kind{"scale": engine.Float, "need": engine.Int, "mode": engine.String, "batch": engine.Int,
		"rate": engine.Float, "name": engine.String, "on": engine.Bool, "k": engine.Int, "lr": engine.Int, "tag": engine.String, "seed": engine.Int}
	ps := e.Params()
	if len(ps) != len(kinds) {
		t.Errorf("params %v", ps)
	}
	for _, p := range ps {
		if kinds[p.Name] != p.Kind {
			t.Errorf("%s is %v, want %v", p.Name, p.Kind, kinds[p.Name])
		}
	}
	if sc := ps[engine.ParamIndex(ps, "scale")]; sc.Unit != "x" || sc.Default != engine.FloatV(2) {
		t.Errorf("declared param %+v", sc)
	}
	p := make([]engine.Value, len(ps))
	var pe *engine.ParamError
	if err := e.Resolve(".", p); !errors.As(err, &pe) || pe.Name != "need" {
		t.Errorf("unset need: %v", err)
	}
	p[engine.ParamIndex(ps, "need")] = engine.IntV(1)
	for _, n := range []string{"batch", "rate", "name", "on", "k", "lr", "tag"} {
		p[engine.ParamIndex(ps, n)] = ps[engine.ParamIndex(ps, n)].Default
		if !p[engine.ParamIndex(ps, n)].IsSet() {
			p[engine.ParamIndex(ps, n)] = engine.Value{Kind: ps[engine.ParamIndex(ps, n)].Kind}
		}
	}
	if err := e.Resolve(".", p); err != nil {
		t.Fatal(err)
	}
	if got := p[engine.ParamIndex(ps, "mode")]; got != engine.StringV("a") {
		t.Errorf("mode resolved to %v", got)
	}
}

func TestNeupimsPreset(t *testing.T) {
	td := testdataDir(t)
	study := func(output, drop string, exit int, sub string) string {
		return `
[command]
preset = "neupims"
root = "neupims-root"
binary = ["@SIM@", "neupims"]
sys_config = "configs/system_configs/` + sub + `.json"
timeout = "1m"
[command.env]
FAKESIM_OUTPUT = "{{.study_dir}}/neupims-out/` + output + `"
FAKESIM_DROP = "` + drop + `"
FAKESIM_EXIT = "` + itoa(exit) + `"
[axes]
num_experts = [8, 64]
`
	}
	t.Run("summary", func(t *testing.T) {
		e := mustBuild(t, td, study("gpt3-7B-bs512-off", "", 0, "sub-batch-off"))
		p := point(t, e, map[string]any{"num_experts": 8, "moe_ffn_scaling": "compute"})
		out, work, err := evaluate(t, e, p, true)
		if err != nil {
			t.Fatal(err)
		}
		total := int64(87268 + 266239 + 265724)
		lat := float64(total) / 1e9
		bw := (42.98755*87268 + 2.683139*266239 + 47.396876*265724) / float64(total)
		checks := map[string]engine.Value{
			"cycles_total": engine.IntV(total), "pim_cycles": engine.IntV(221553),
			"latency_s": engine.FloatV(lat), "requests": engine.IntV(512), "clock_mhz": engine.FloatV(1000),
			"stages": engine.StringV("ABE"), "neupims_source": engine.StringV("summary"), "exit_status": engine.IntV(0),
			"cycles_stage_a": engine.IntV(87268), "cycles_stage_b": engine.IntV(266239), "cycles_stage_e": engine.IntV(265724),
			"pim_cycles_stage_b": engine.IntV(221553), "mem_bw_util_stage_e": engine.FloatV(47.396876),
			"cycles_stage_c": {}, "cycles_stage_f": {},
		}
		for name, w := range checks {
			if got := metric(t, e, out, name); got != w {
				t.Errorf("%s = %+v, want %+v", name, got, w)
			}
		}
		if got := metric(t, e, out, "tokens_per_s").F; math.Abs(got-512/lat) > 1e-9*got {
			t.Errorf("tokens_per_s = %v, want %v", got, 512/lat)
		}
		if got := metric(t, e, out, "mem_bw_util").F; math.Abs(got-bw) > 1e-9 {
			t.Errorf("mem_bw_util = %v, want %v", got, bw)
		}
		// the model config the point rendered
		data, err := os.ReadFile(filepath.Join(work, "model.json"))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("model.json: %v\n%s", err, data)
		}
		want := map[string]any{"model_n_embd": 4096.0, "model_n_head": 32.0, "n_tp": 4.0, "moe_enabled": true, "num_experts": 8.0,
			"experts_per_token": 2.0, "moe_ffn_scaling": "compute", "expert_capacity_factor": 1.25, "moe_routing_trace_path": ""}
		for k, w := range want {
			if m[k] != w {
				t.Errorf("model.json %s = %v, want %v", k, m[k], w)
			}
		}
		// the real flag names, run from the repository root
		cmd, err := e.Render(p, work)
		if err != nil {
			t.Fatal(err)
		}
		wantArgs := []string{"--config", "configs/systolic_ws_128x128_dev.json", "--mem_config", "configs/memory_configs/neupims.json",
			"--cli_config", "request-traces/clb/share-gpt2-bs512-ms7B-tp4-clb-0.csv", "--model_config", work + "/model.json",
			"--sys_config", "configs/system_configs/sub-batch-off.json", "--log_dir", work + "/log"}
		if got := cmd.Args[2:]; strings.Join(got, " ") != strings.Join(wantArgs, " ") {
			t.Errorf("arguments\n%q\nwant\n%q", got, wantArgs)
		}
		if cmd.Dir != filepath.Join(td, "neupims-root") {
			t.Errorf("runs in %s", cmd.Dir)
		}
	})
	// NeuPIMs exits 255 after the last request without writing
	// _summary.tsv: the stage files give the figures.
	t.Run("exit255", func(t *testing.T) {
		for _, c := range []struct {
			output, sub, stages string
			ends                []int64
		}{
			{"gpt3-7B-bs512-off", "sub-batch-off", "ABE", []int64{87266, 353504, 619227}},
			{"gpt3-7B-bs512-on", "sub-batch-on", "ABCDEF", []int64{49336, 237196, 475656, 718194, 897957, 1058234}},
		} {
			e := mustBuild(t, td, study(c.output, "_summary.tsv", 255, c.sub))
			out, _, err := evaluate(t, e, point(t, e, map[string]any{"num_experts": 64}), false)
			if err != nil {
				t.Fatalf("%s: %v", c.output, err)
			}
			if s := metric(t, e, out, "neupims_source"); s != engine.StringV("stage_files") {
				t.Errorf("source %v", s)
			}
			if s := metric(t, e, out, "stages"); s != engine.StringV(c.stages) {
				t.Errorf("stages %v, want %s", s, c.stages)
			}
			prev := int64(0)
			for i, s := range c.stages {
				name := "cycles_stage_" + strings.ToLower(string(s))
				if got := metric(t, e, out, name); got != engine.IntV(c.ends[i]-prev) {
					t.Errorf("%s %s = %v, want %d", c.output, name, got, c.ends[i]-prev)
				}
				prev = c.ends[i]
			}
			if got := metric(t, e, out, "cycles_total"); got != engine.IntV(prev) {
				t.Errorf("cycles_total = %v, want %d", got, prev)
			}
			if got := metric(t, e, out, "pim_cycles"); got.IsSet() {
				t.Errorf("pim_cycles = %v from the stage files, want null", got)
			}
			if got := metric(t, e, out, "exit_status"); got != engine.IntV(255) {
				t.Errorf("exit_status = %v", got)
			}
		}
	})
	t.Run("incomplete", func(t *testing.T) {
		e := mustBuild(t, td, study("gpt3-7B-bs512-off", "_summary.tsv SA_stage_E.tsv", 255, "sub-batch-off"))
		_, _, err := evaluate(t, e, point(t, e, nil), false)
		if err == nil || !strings.Contains(err.Error(), "_summary.tsv is missing (exit status 255) and the stage files cover stages A,B only") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("crashed", func(t *testing.T) {
		e := mustBuild(t, td, study("gpt3-7B-bs512-off", "", 1, "sub-batch-off"))
		_, _, err := evaluate(t, e, point(t, e, nil), false)
		if err == nil || !strings.Contains(err.Error(), "exit status 1 (accepted: [0 255])") {
			t.Errorf("error %v", err)
		}
	})
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
