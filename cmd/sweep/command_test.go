package main

// End-to-end tests of engine = "command": real `sweep run` processes driving
// the fixture program of engine/command/testdata/fakesim and the
// NeuPIMs-compatible front end (`sweep neupims`) as external binaries.

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/sweep-dse/sweep/dataset"
	"github.com/sweep-dse/sweep/engine"
	"github.com/sweep-dse/sweep/engine/command"
	"github.com/sweep-dse/sweep/engine/moe/neupimsio"
	"github.com/sweep-dse/sweep/internal/proctest"
	"github.com/sweep-dse/sweep/sweep"
)

var (
	fakesimOnce sync.Once
	fakesimPath string
	fakesimErr  error
)

// fakesim builds the command engine's fixture program next to the sweep
// binary.
func fakesim(t *testing.T) string {
	t.Helper()
	fakesimOnce.Do(func() {
		fakesimPath = filepath.Join(filepath.Dir(sweepBin), "fakesim")
		cmd := exec.Command("go", "build", "-o", fakesimPath, "../../engine/command/testdata/fakesim")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fakesimErr = fmt.Errorf("building the fixture program: %v\n%s", err, out)
		}
	})
	if fakesimErr != nil {
		t.Fatal(fakesimErr)
	}
	return fakesimPath
}

// writeStudy writes a study file into a fresh folder; @SIM@ stands for the
// fixture program and @TD@ for engine/command/testdata.
func writeStudy(t *testing.T, text string) string {
	t.Helper()
	td, err := filepath.Abs("../../engine/command/testdata")
	if err != nil {
		t.Fatal(err)
	}
	text = strings.ReplaceAll(text, "@SIM@", fakesim(t))
	text = strings.ReplaceAll(text, "@TD@", td)
	path := filepath.Join(t.TempDir(), "study.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// datasetRows reads the named columns of every row of a dataset.
func datasetRows(t *testing.T, dir string, cols ...string) []map[string]any {
	t.Helper()
	parts, err := dataset.Parts(dir)
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	for _, p := range parts {
		err := dataset.Scan(context.Background(), p, cols, func(rec arrow.RecordBatch) error {
			for i := 0; i < int(rec.NumRows()); i++ {
				r := map[string]any{}
				for c, name := range cols {
					col := rec.Column(c)
					if col.IsNull(i) {
						r[name] = nil
					} else {
						r[name] = col.GetOneForMarshal(i)
					}
				}
				rows = append(rows, r)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return rows
}

// markedProcesses lists running processes whose environment holds marker.
func markedProcesses(marker string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(env, []byte(marker)) {
			continue
		}
		if proctest.Alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func hangPids(t *testing.T, path string) []int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no pid file of the hanging fixture: %v", err)
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, n)
	}
	return pids
}

// Each misbehaving fixture gives its documented row status; the hanging one
// is killed at its timeout with its child; every other point is recorded.
func TestCommandFixtureRows(t *testing.T) {
	study := writeStudy(t, `
[study]
name = "fixtures"
engine = "command"

[command]
binary = "@SIM@"
args = ["{{.mode}}", "{{.a1}}", "{{.a2}}"]
timeout = "1s"

[metrics]
x = { type = "int", optional = true }
n = { type = "int", optional = true }

[[zip]]
mode = ["json", "argv", "crash", "hang", "garbage", "fail"]
a1 = ["x", "-rf", "c", "h", "g", "3"]
a2 = ["7", "$(id); ls", "c", "h", "g", "f"]
`)
	out := t.TempDir()
	stdout, stderr, code := runCLI(t, "run", study, "--out", out, "--jobs", "6", "--progress", "none")
	if code != 0 {
		t.Fatalf("run: exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "ran 6 (2 ok, 4 failed)") {
		t.Errorf("summary: %s", stdout)
	}
	rows := datasetRows(t, out, "mode", "status", "error", "x", "n")
	if len(rows) != 6 {
		t.Fatalf("%d rows, want 6", len(rows))
	}
	want := map[string]struct {
		status string
		errs   []string
		x, n   any
	}{
		"json":    {"ok", nil, int64(7), nil},
		"argv":    {"ok", nil, nil, int64(2)},
		"crash":   {"failed", []string{"killed by signal 6 (aborted)"}, nil, nil},
		"hang":    {"failed", []string{"timed out after 1s; its process group was killed", "hanging with a child"}, nil, nil},
		"garbage": {"failed", []string{"output: no JSON object on stdout"}, nil, nil},
		"fail":    {"failed", []string{"exit status 3 (accepted: [0])", "stderr line 30"}, nil, nil},
	}
	work := filepath.Join(out, command.WorkDirName)
	for _, r := range rows {
		mode := r["mode"].(string)
		w := want[mode]
		if r["status"] != w.status || r["x"] != w.x || r["n"] != w.n {
			t.Errorf("%s: status %v x %v n %v, want %s %v %v (error %v)", mode, r["status"], r["x"], r["n"], w.status, w.x, w.n, r["error"])
		}
		msg, _ := r["error"].(string)
		for _, s := range w.errs {
			if !strings.Contains(msg, s) {
				t.Errorf("%s: error %q lacks %q", mode, msg, s)
			}
		}
		if w.status == "failed" && !strings.Contains(msg, "work folder: "+work) {
			t.Errorf("%s: error %q does not name its work folder", mode, msg)
		}
		if mode == "hang" {
			_, folder, _ := strings.Cut(msg, "work folder: ")
			if left := proctest.Outliving(hangPids(t, filepath.Join(folder, "pids.txt")), nil); len(left) > 0 {
				t.Errorf("processes %v of the hanging point outlived its timeout", left)
			}
		}
	}
	// failed points keep their work folder, successful ones do not
	ents, err := os.ReadDir(work)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 4 {
		t.Errorf("%d work folders kept, want the 4 failed points'", len(ents))
	}
	// nothing is lost or run twice: a second run has nothing to do
	stdout, _, code = runCLI(t, "run", study, "--out", out, "--progress", "none")
	if code != 0 || !strings.Contains(stdout, "ran 0 (0 ok, 0 failed)") {
		t.Errorf("rerun: exit %d: %s", code, stdout)
	}
	// --keep-work keeps successful points' folders too
	out2 := t.TempDir()
	if _, errs, code := runCLI(t, "run", study, "--out", out2, "--jobs", "6", "--progress", "none", "--keep-work"); code != 0 {
		t.Fatalf("run --keep-work: %s", errs)
	}
	if ents, _ := os.ReadDir(filepath.Join(out2, command.WorkDirName)); len(ents) != 6 {
		t.Errorf("--keep-work kept %d work folders, want 6", len(ents))
	}
}

// NeuPIMs exits 255 after a complete run: accepted when its output is
// complete, a failed row when it is not.
func TestCommandNeupimsExit255(t *testing.T) {
	study := writeStudy(t, `
[study]
name = "exit255"
engine = "command"

[command]
preset = "neupims"
root = "@TD@/neupims-root"
binary = ["@SIM@", "neupims"]

[command.env]
FAKESIM_OUTPUT = "@TD@/neupims-out/gpt3-7B-bs512-off"
FAKESIM_EXIT = "255"
FAKESIM_DROP = "{{.drop}}"

[axes]
drop = ["", "_summary.tsv", "_summary.tsv SA_stage_E.tsv"]
`)
	out := t.TempDir()
	if _, errs, code := runCLI(t, "run", study, "--out", out, "--progress", "none"); code != 0 {
		t.Fatalf("run: %s", errs)
	}
	rows := datasetRows(t, out, "drop", "status", "error", "cycles_total", "neupims_source", "exit_status")
	want := map[string][]any{
		"":                            {"ok", int64(619231), "summary", int64(255)},
		"_summary.tsv":                {"ok", int64(619227), "stage_files", int64(255)},
		"_summary.tsv SA_stage_E.tsv": {"failed", nil, nil, nil},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows", len(rows))
	}
	for _, r := range rows {
		w := want[r["drop"].(string)]
		got := []any{r["status"], r["cycles_total"], r["neupims_source"], r["exit_status"]}
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("drop %q: %v, want %v (error %v)", r["drop"], got, w, r["error"])
		}
	}
}

// Ctrl-C during a command sweep kills every running program and its
// children: no process started by the run outlives it.
func TestCommandInterruptLeavesNoProcesses(t *testing.T) {
	study := writeStudy(t, `
[study]
name = "interrupt"
engine = "command"

[command]
binary = ["@SIM@", "hang"]
args = ["{{.i}}"]

[metrics]
x = "int"

[axes]
i = [1, 2, 3, 4, 5, 6, 7, 8]
`)
	out := t.TempDir()
	marker := fmt.Sprintf("SWEEP_INTERRUPT_TEST=%d-%d", os.Getpid(), time.Now().UnixNano())
	cmd := exec.Command(sweepBin, "run", study, "--out", out, "--jobs", "4", "--progress", "none")
	cmd.Env = append(os.Environ(), marker)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// wait for 4 hanging programs, each with a child
	work := filepath.Join(out, command.WorkDirName)
	var pids []int
	for deadline := time.Now().Add(time.Minute); len(pids) < 8; {
		if time.Now().After(deadline) {
			cmd.Process.Signal(syscall.SIGINT) // stops the fixtures it started
			cmd.Wait()
			t.Fatalf("the fixtures did not start: %v\n%s", pids, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
		pids = pids[:0]
		files, _ := filepath.Glob(filepath.Join(work, "*", "pids.txt"))
		for _, f := range files {
			if data, err := os.ReadFile(f); err == nil && len(strings.Fields(string(data))) == 2 {
				pids = append(pids, hangPids(t, f)...)
			}
		}
	}
	if n := len(markedProcesses(marker)); n < 9 {
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		t.Fatalf("%d marked processes before the interrupt, want sweep and 8 fixtures", n)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Fatalf("exit %d, want 130\n%s", code, stderr.String())
	}
	if left := proctest.Outliving(pids, func() []int { return markedProcesses(marker) }); len(left) > 0 {
		t.Fatalf("processes %v outlived the interrupted run", left)
	}
	// interrupted points are not results: no rows, no work folders
	if rows := datasetRows(t, out, "i"); len(rows) != 0 {
		t.Errorf("%d rows written for interrupted points", len(rows))
	}
	if ents, _ := os.ReadDir(work); len(ents) != 0 {
		t.Errorf("%d work folders left", len(ents))
	}
}

// Mistakes in [command] are input errors at the key's line: exit 2.
func TestCommandStudyErrors(t *testing.T) {
	cases := []struct{ text, want string }{
		{`[study]
name = "bad"
engine = "command"

[command]
binary = "@SIM@"
timeout = "soon"
`, `study.toml:7: command.timeout: want a duration`},
		{`[study]
name = "bad"
engine = "command"

[command]
binary = "@SIM@"
args = ["--experts", "{{.experts}}"]

[metrics]
y = "int"

[axes]
num_experts = [8]
`, `study.toml:7: command.args: argument 2: template "{{.experts}}" uses experts`},
		{`[study]
name = "bad"
engine = "command"

[command]
binary = "@SIM@"

[command.files]
"../escape.json" = { text = "{}" }

[metrics]
y = "int"
`, `study.toml:9: command.files.../escape.json: the destination must be a relative path`},
		{`[study]
name = "bad"
engine = "command"

[command]
binary = "@SIM@"

[metrics]
y = { type = "int", unit = "s", units = "s" }
`, `study.toml:9: metrics.y.units: unknown key`},
		{`[study]
name = "bad"

[params]
x = "int"
`, `study.toml:4: params: [params] is for engine = "command"`},
	}
	for _, c := range cases {
		study := writeStudy(t, c.text)
		for _, verb := range []string{"run", "plan"} {
			_, stderr, code := runCLI(t, verb, study, "--out", t.TempDir())
			if code != 2 || !strings.Contains(stderr, c.want) {
				t.Errorf("%s: exit %d, stderr %q; want 2 and %q", verb, code, stderr, c.want)
			}
		}
	}
}

// The acceptance test of the command engine: a study drives `sweep neupims`
// (the NeuPIMs-compatible front end of the embedded simulator) as an
// external binary through the NeuPIMs preset and reader, over model size,
// batch (request trace) and sub-batch mode; every row of the dataset equals
// what the embedded simulator computes in-process for the same files.
func TestCommandDrivesNeupimsFrontEnd(t *testing.T) {
	study := writeStudy(t, `
[study]
name = "neupims-front-end"
engine = "command"

[command]
preset = "neupims"
root = "@TD@/neupims-root"
binary = ["`+sweepBin+`", "neupims"]
cli_config = "request-traces/clb/{{.trace}}"
sys_config = "configs/system_configs/{{.sys}}.json"
timeout = "1m"

[base]
num_experts = 0   # dense: the front end has no MoE layer

[axes]
sys = ["sub-batch-off", "sub-batch-on"]
trace = ["share-gpt2-bs128-ms7B-tp4-pp1-clb-0.csv", "share-gpt2-bs512-ms7B-tp4-clb-0.csv"]

[[zip]]
model_name = ["GPT3-7B", "GPT3-13B"]
d_model = [4096, 5120]
n_heads = [32, 40]
`)
	out := t.TempDir()
	if stdout, errs, code := runCLI(t, "run", study, "--out", out, "--jobs", "4", "--progress", "none"); code != 0 || !strings.Contains(stdout, "(8 ok, 0 failed)") {
		t.Fatalf("run: exit %d\n%s%s", code, stdout, errs)
	}
	s, err := sweep.Load(study)
	if err != nil {
		t.Fatal(err)
	}
	eng := s.Engine.(*command.Engine)
	cols := []string{"sys", "trace", "model_name", "d_model", "n_heads", "status", "error", "cycles_total", "pim_cycles", "mem_bw_util",
		"latency_s", "tokens_per_s", "requests", "clock_mhz", "stages", "neupims_source", "exit_status"}
	for _, st := range "abcdef" {
		cols = append(cols, "cycles_stage_"+string(st), "pim_cycles_stage_"+string(st), "mem_bw_util_stage_"+string(st))
	}
	rows := datasetRows(t, out, cols...)
	if len(rows) != 8 {
		t.Fatalf("%d rows, want 8", len(rows))
	}
	for _, r := range rows {
		name := fmt.Sprintf("%v/%v/%v", r["model_name"], r["sys"], r["trace"])
		if r["status"] != "ok" {
			t.Errorf("%s: %v", name, r["error"])
			continue
		}
		// the same files, simulated in-process
		params := eng.Params()
		p := make([]engine.Value, len(params))
		for _, n := range []string{"sys", "trace", "model_name"} {
			p[engine.ParamIndex(params, n)] = engine.StringV(r[n].(string))
		}
		for _, n := range []string{"d_model", "n_heads"} {
			p[engine.ParamIndex(params, n)] = engine.IntV(r[n].(int64))
		}
		p[engine.ParamIndex(params, "num_experts")] = engine.IntV(0) // as in [base]
		if err := eng.Resolve(s.Dir, p); err != nil {
			t.Fatal(err)
		}
		work := t.TempDir()
		inv, err := eng.Render(p, work)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range inv.Files {
			if err := os.WriteFile(filepath.Join(work, f.Path), []byte(f.Text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		arg := func(flag string) string {
			for i, a := range inv.Args {
				if a == flag {
					if filepath.IsAbs(inv.Args[i+1]) {
						return inv.Args[i+1]
					}
					return filepath.Join(inv.Dir, inv.Args[i+1])
				}
			}
			t.Fatalf("no %s", flag)
			return ""
		}
		run, err := neupimsio.Load(neupimsio.Files{Config: arg("--config"), MemConfig: arg("--mem_config"), CliConfig: arg("--cli_config"),
			ModelConfig: arg("--model_config"), SysConfig: arg("--sys_config")})
		if err != nil {
			t.Fatal(err)
		}
		res := run.Simulate()
		var total, pim int64
		var bw float64
		stages := ""
		for _, st := range res.Stages {
			l := strings.ToLower(st.Name)
			stages += st.Name
			total += st.Cycles
			pim += st.PIMCycles
			bw += st.MemBWUtil * float64(st.Cycles)
			if r["cycles_stage_"+l] != st.Cycles || r["pim_cycles_stage_"+l] != st.PIMCycles {
				t.Errorf("%s stage %s: cycles %v pim %v, embedded %d %d", name, st.Name, r["cycles_stage_"+l], r["pim_cycles_stage_"+l], st.Cycles, st.PIMCycles)
			}
			if got, _ := r["mem_bw_util_stage_"+l].(float64); math.Abs(got-st.MemBWUtil) > 1e-6 {
				t.Errorf("%s stage %s: mem_bw_util %v, embedded %v", name, st.Name, got, st.MemBWUtil)
			}
		}
		lat := float64(total) / (run.ClockMHz * 1e6)
		tps := float64(len(run.Requests)) / lat
		if r["cycles_total"] != total || r["pim_cycles"] != pim || r["stages"] != stages || r["requests"] != int64(len(run.Requests)) ||
			r["clock_mhz"] != run.ClockMHz || r["neupims_source"] != "summary" || r["exit_status"] != int64(0) {
			t.Errorf("%s: %v\nembedded: cycles %d pim %d stages %s requests %d clock %v", name, r, total, pim, stages, len(run.Requests), run.ClockMHz)
		}
		if got := r["latency_s"].(float64); math.Abs(got-lat) > 1e-12*lat {
			t.Errorf("%s: latency_s %v, embedded %v", name, got, lat)
		}
		if got := r["tokens_per_s"].(float64); math.Abs(got-tps) > 1e-9*tps {
			t.Errorf("%s: tokens_per_s %v, embedded %v", name, got, tps)
		}
		if got := r["mem_bw_util"].(float64); math.Abs(got-bw/float64(total)) > 1e-6 {
			t.Errorf("%s: mem_bw_util %v, embedded %v", name, got, bw/float64(total))
		}
		want := map[string]int{"sub-batch-off": 3, "sub-batch-on": 6}[r["sys"].(string)]
		if len(stages) != want {
			t.Errorf("%s: stages %s", name, stages)
		}
	}
}

// The shipped NeuPIMs study is valid and runs: with root pointed at the
// test configs and `sweep neupims` standing in for the NeuPIMs binary, every
// point runs and fails with the front end's refusal of a MoE model config
// (it models the dense decoder only), which names the key.
func TestExampleNeupimsStudy(t *testing.T) {
	data, err := os.ReadFile("../../studies/neupims-command.toml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, r := range [][2]string{
		{`root = "../NeuPIMs"`, `root = "@TD@/neupims-root"` + "\nbinary = [\"" + sweepBin + "\", \"neupims\"]"},
		{`timeout = "30m"`, `timeout = "1m"`},
	} {
		if !strings.Contains(text, r[0]) {
			t.Fatalf("the study no longer has %s", r[0])
		}
		text = strings.Replace(text, r[0], r[1], 1)
	}
	study := writeStudy(t, text)
	out := t.TempDir()
	stdout, errs, code := runCLI(t, "plan", study, "--out", out)
	if code != 0 || !strings.Contains(stdout, "points:  36") {
		t.Fatalf("plan: exit %d\n%s%s", code, stdout, errs)
	}
	stdout, errs, code = runCLI(t, "run", study, "--out", out, "--jobs", "8", "--progress", "none")
	if code != 0 || !strings.Contains(stdout, "(0 ok, 36 failed)") {
		t.Fatalf("run: exit %d\n%s%s", code, stdout, errs)
	}
	for _, r := range datasetRows(t, out, "error") {
		if e := r["error"].(string); !strings.Contains(e, `key "moe_enabled": true: sweep neupims models NeuPIMs' dense GPT-3 decoder`) {
			t.Fatalf("error %q", e)
		}
	}
}

// TestAnalysisWithoutTheProgram: best and report read a command-engine
// dataset's axes from its stored study even where the program is not
// (a relative binary path, or a dataset copied from another machine).
func TestAnalysisWithoutTheProgram(t *testing.T) {
	dir := t.TempDir()
	sim := filepath.Join(dir, "sim")
	data, err := os.ReadFile(fakesim(t))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(sim, data, 0o755)
	study := filepath.Join(dir, "study.toml")
	os.WriteFile(study, []byte(`[study]
name = "rel"
engine = "command"

[command]
binary = "./sim"
args = ["json", "x", "{{.a}}"]

[metrics]
x = { type = "int", optional = true }

[axes]
a = [1, 2, 3]
`), 0o644)
	out := filepath.Join(t.TempDir(), "ds")
	if stdout, errs, code := runCLI(t, "run", study, "--out", out, "--progress", "none"); code != 0 || !strings.Contains(stdout, "(3 ok, 0 failed)") {
		t.Fatalf("run: exit %d\n%s%s", code, stdout, errs)
	}
	os.Remove(sim) // the program is gone
	stdout, errs, code := runCLI(t, "best", out, "--by", "x", "--format", "csv")
	if code != 0 || !strings.HasPrefix(stdout, "rank,point_id,a,x") {
		t.Fatalf("best without the program: exit %d\n%s%s", code, stdout, errs)
	}
	// nor its template files, work folder or NeuPIMs root
	study2 := filepath.Join(dir, "study2.toml")
	os.WriteFile(filepath.Join(dir, "model.tmpl"), []byte("{{.a}}"), 0o644)
	os.WriteFile(sim, data, 0o755)
	os.WriteFile(study2, []byte(`[study]
name = "rel2"
engine = "command"

[command]
binary = "./sim"
args = ["json", "x", "{{.a}}"]
files = { "cfg/m.json" = { template = "model.tmpl" } }

[metrics]
x = { type = "int", optional = true }

[axes]
a = [1, 2, 3]
`), 0o644)
	out2 := filepath.Join(t.TempDir(), "ds2")
	if stdout, errs, code := runCLI(t, "run", study2, "--out", out2, "--progress", "none"); code != 0 {
		t.Fatalf("run: exit %d\n%s%s", code, stdout, errs)
	}
	os.Remove(sim)
	os.Remove(filepath.Join(dir, "model.tmpl"))
	stdout, errs, code = runCLI(t, "best", out2, "--by", "x", "--format", "csv")
	if code != 0 || !strings.HasPrefix(stdout, "rank,point_id,a,x") {
		t.Fatalf("best without the program: exit %d\n%s%s", code, stdout, errs)
	}
	stdout, errs, code = runCLI(t, "report", out, "-o", t.TempDir())
	if code != 0 || strings.Contains(stdout+errs, "study unknown") {
		t.Fatalf("report without the program: exit %d\n%s%s", code, stdout, errs)
	}
}

// TestAnalysisAcrossSchemas: after a command study gains a [base]
// parameter, the dataset's older parts lack its column; best and report
// read them as nulls there instead of failing.
func TestAnalysisAcrossSchemas(t *testing.T) {
	text := `[study]
name = "grow"
engine = "command"

[command]
binary = "@SIM@"
args = ["json", "x", "{{.a}}"]

[metrics]
x = { type = "int", optional = true }
@BASE@
[axes]
a = [1, 2, 3]
`
	out := filepath.Join(t.TempDir(), "ds")
	for _, base := range []string{"", "[base]\nextra = 1\n"} {
		study := writeStudy(t, strings.Replace(text, "@BASE@", base, 1))
		if stdout, errs, code := runCLI(t, "run", study, "--out", out, "--progress", "none"); code != 0 {
			t.Fatalf("run: exit %d\n%s%s", code, stdout, errs)
		}
	}
	stdout, errs, code := runCLI(t, "best", out, "--by", "x", "--cols", "extra", "--where", "extra == 1", "--format", "csv")
	if code != 0 || strings.Count(stdout, "\n") != 4 {
		t.Fatalf("best over parts with and without extra: exit %d\n%s%s", code, stdout, errs)
	}
	if stdout, errs, code := runCLI(t, "report", out, "-o", t.TempDir(), "--metrics", "x,extra"); code != 0 {
		t.Fatalf("report: exit %d\n%s%s", code, stdout, errs)
	}
}
