package main

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var (
	seedOnce sync.Once
	seedDir  string
	seedErr  string
)

// seedDataset runs studies/seed-moe.toml once for the analysis tests, into
// the test binary's temporary folder (removed by TestMain).
func seedDataset(t *testing.T) string {
	t.Helper()
	seedOnce.Do(func() {
		seedDir = filepath.Join(filepath.Dir(sweepBin), "analysis-seed")
		_, errs, code := runCLI(t, "run", "../../studies/seed-moe.toml", "--out", seedDir, "--progress", "none", "--quiet")
		if code != 0 {
			seedErr = errs
		}
	})
	if seedErr != "" {
		t.Fatalf("running the seed study: %s", seedErr)
	}
	return seedDir
}

// TestBestVerb checks best's CSV and JSON output against each other and
// against the ordering they promise.
func TestBestVerb(t *testing.T) {
	ds := seedDataset(t)
	out, errs, code := runCLI(t, "best", ds, "--by", "tokens_per_s", "--top", "7", "--where", `batch_size >= 128 && moe_ffn_scaling != "capacity"`, "--format", "csv")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("csv: %v\n%s", err, out)
	}
	if want := []string{"rank", "point_id", "num_experts", "moe_ffn_scaling", "batch_size", "top_k", "tokens_per_s"}; !slices.Equal(recs[0], want) {
		t.Fatalf("header %v, want %v", recs[0], want)
	}
	if len(recs) != 8 {
		t.Fatalf("%d rows, want 7", len(recs)-1)
	}
	prev := 0.0
	for i, r := range recs[1:] {
		v, err := strconv.ParseFloat(r[6], 64)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := strconv.Atoi(r[4])
		if r[0] != strconv.Itoa(i+1) || b < 128 || r[3] == "capacity" || (i > 0 && v > prev) {
			t.Errorf("row %d breaks the query: %v", i+1, r)
		}
		prev = v
	}
	// JSON carries the same rows with typed values
	out, _, code = runCLI(t, "best", ds, "--by", "tokens_per_s", "--top", "7", "--where", `batch_size >= 128 && moe_ffn_scaling != "capacity"`, "--format", "json")
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); code != 0 || err != nil {
		t.Fatalf("json: exit %d, %v\n%s", code, err, out)
	}
	for i, r := range rows {
		if r["point_id"] != recs[i+1][1] || strconv.FormatFloat(r["tokens_per_s"].(float64), 'g', -1, 64) != recs[i+1][6] || r["num_experts"].(float64) != mustAtof(t, recs[i+1][2]) {
			t.Errorf("json row %d %v differs from csv %v", i, r, recs[i+1])
		}
	}
	// the text table shows units and the scan counts
	out, _, _ = runCLI(t, "best", ds, "--by", "latency_s", "--top", "3")
	if !strings.Contains(out, "latency_s [s]") || !strings.Contains(out, "(180 rows: 180 ok, 0 failed)") {
		t.Errorf("table:\n%s", out)
	}
}

func mustAtof(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestParetoVerb checks that no printed point dominates another and that
// every point left out is dominated by a printed one.
func TestParetoVerb(t *testing.T) {
	ds := seedDataset(t)
	out, errs, code := runCLI(t, "pareto", ds, "--min", "latency_s", "--min", "params_layer", "--max", "tokens_per_s", "--format", "csv")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	front, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"point_id", "num_experts", "moe_ffn_scaling", "batch_size", "top_k", "latency_s", "params_layer", "tokens_per_s"}; !slices.Equal(front[0], want) {
		t.Fatalf("header %v", front[0])
	}
	all, _, code := runCLI(t, "best", ds, "--by", "latency_s", "--top", "100000", "--cols", "params_layer,tokens_per_s", "--format", "csv")
	if code != 0 {
		t.Fatal(all)
	}
	everyone, _ := csv.NewReader(strings.NewReader(all)).ReadAll()
	if len(everyone) != 181 {
		t.Fatalf("best --top 100000 printed %d rows, want 180", len(everyone)-1)
	}
	// keys: latency, params, -tokens (all minimised)
	key := func(lat, par, tps string) [3]float64 {
		return [3]float64{mustAtof(t, lat), mustAtof(t, par), -mustAtof(t, tps)}
	}
	dom := func(a, b [3]float64) bool {
		return a[0] <= b[0] && a[1] <= b[1] && a[2] <= b[2] && a != b
	}
	onFront := map[string][3]float64{}
	for _, r := range front[1:] {
		onFront[r[0]] = key(r[5], r[6], r[7])
	}
	if len(onFront) == 0 {
		t.Fatal("empty front")
	}
	for _, r := range everyone[1:] {
		// best columns: rank, point_id, axes..., params_layer, tokens_per_s, latency_s
		k := key(r[8], r[6], r[7])
		_, in := onFront[r[1]]
		dominated := false
		for _, f := range onFront {
			if dom(f, k) {
				dominated = true
			}
		}
		if in == dominated {
			t.Errorf("point %s: on the front %v, dominated %v", r[1], in, dominated)
		}
	}
}

// TestReportVerb writes the seed study's report and checks the summary and
// the folder.
func TestReportVerb(t *testing.T) {
	ds := seedDataset(t)
	dir := filepath.Join(t.TempDir(), "rep")
	out, errs, code := runCLI(t, "report", ds, "-o", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"180 rows (180 ok, 0 failed)",
		"num_experts         5 values: 8, 16, 32, 64, 128",
		"moe_ffn_scaling     3 values: balanced, compute, capacity",
		"latency_s [s] (min):",
		"points over min latency_s, max tokens_per_s",
		filepath.Join(dir, "report.html"),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	for _, f := range []string{"report.html", "line-latency_s-vs-num_experts.png", "line-tokens_per_s-vs-num_experts.svg", "pareto-latency_s-tokens_per_s.svg", "heatmap-latency_s-num_experts-batch_size.png"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	// overrides: one x axis, series by top_k, own objectives, no heatmap
	dir2 := filepath.Join(t.TempDir(), "rep2")
	out, errs, code = runCLI(t, "report", ds, "-o", dir2, "--metrics", "latency_s", "--x", "batch_size", "--series", "top_k", "--heatmap", "none", "--min", "act_bytes_moe", "--max", "tokens_per_s", "--where", "num_experts >= 32", "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	ents, _ := os.ReadDir(dir2)
	var files []string
	for _, e := range ents {
		files = append(files, e.Name())
	}
	want := []string{"line-latency_s-vs-batch_size.png", "line-latency_s-vs-batch_size.svg", "pareto-act_bytes_moe-tokens_per_s.png", "pareto-act_bytes_moe-tokens_per_s.svg", "report.html"}
	if !slices.Equal(files, want) || strings.TrimSpace(out) != filepath.Join(dir2, "report.html") {
		t.Errorf("files %v, want %v; output %q", files, want, out)
	}
	// the default folder is DIR/_report
	if _, _, code := runCLI(t, "report", ds, "--quiet"); code != 0 {
		t.Fatal("report without -o failed")
	}
	if _, err := os.Stat(filepath.Join(ds, "_report", "report.html")); err != nil {
		t.Error(err)
	}
}

// TestAnalysisErrors: a missing or empty dataset, an unknown metric or a bad
// expression is a clear error with exit status 2.
func TestAnalysisErrors(t *testing.T) {
	ds := seedDataset(t)
	empty := t.TempDir()
	missing := filepath.Join(empty, "missing")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"best", missing, "--by", "latency_s"}, "does not exist"},
		{[]string{"best", empty, "--by", "latency_s"}, "is empty"},
		{[]string{"best", ds, "--by", "latencyy"}, `unknown metric "latencyy"`},
		{[]string{"best", ds, "--by", "bound"}, "not a number"},
		{[]string{"best", ds, "--by", "latency_s", "--where", "batch_size >>> 3"}, "bad expression"},
		{[]string{"best", ds, "--by", "latency_s", "--where", "experts > 3"}, `unknown name "experts"`},
		{[]string{"best", ds, "--by", "latency_s", "--where", `moe_ffn_scaling != "capcity"`}, `--where: "moe_ffn_scaling != \"capcity\"": moe_ffn_scaling is never "capcity": the values are balanced, compute, capacity`},
		{[]string{"pareto", ds, "--min", "latency_s", "--max", "tokens_per_s", "--where", `moe_ffn_scaling not in ["Compute"]`}, `moe_ffn_scaling is never "Compute"`},
		{[]string{"report", ds, "--where", `"balance" == moe_ffn_scaling`}, `moe_ffn_scaling is never "balance"`},
		{[]string{"best", ds}, "--by METRIC is required"},
		{[]string{"best", ds, "--by", "latency_s", "--min", "--max"}, "not both"},
		{[]string{"best", ds, "--by", "latency_s", "--format", "xml"}, "want table, csv or json"},
		{[]string{"pareto", ds, "--min", "latency_s"}, "two or more objectives"},
		{[]string{"pareto", ds, "--min", "latency_s", "--max", "speed"}, `unknown metric "speed"`},
		{[]string{"pareto", ds, "--min", "latency_s", "--min", "latency_s"}, "named twice"},
		{[]string{"pareto", missing, "--min", "latency_s", "--max", "tokens_per_s"}, "does not exist"},
		{[]string{"pareto", ds, "--min", "latency_s", "--max", "tokens_per_s", "--where", "top_k"}, "expected bool"},
		{[]string{"report", empty}, "is empty"},
		{[]string{"report", missing}, "does not exist"},
		{[]string{"report", ds, "--metrics", "latency_s,nope"}, `unknown metric "nope"`},
		{[]string{"report", ds, "--where", "("}, "bad expression"},
		{[]string{"report", ds, "--heatmap", "num_experts"}, "want two different axes"},
		{[]string{"report", ds, "--agg", "median"}, "want mean, min or max"},
	}
	for _, c := range cases {
		_, errs, code := runCLI(t, c.args...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and %q", c.args, code, errs, c.want)
		}
	}
}

// TestReportWithInfiniteValues: a metric that is +Inf or -Inf in some rows
// (an external simulator's overflow, say) does not stop the report: those
// points are left out of the charts with a note. Failures of an external
// program are counted as one kind of error, though each message names the
// point's own work folder.
func TestReportWithInfiniteValues(t *testing.T) {
	dir := t.TempDir()
	sim := filepath.Join(dir, "sim.sh")
	os.WriteFile(sim, []byte("#!/bin/sh\ncase $2 in\n  inf) echo \"lat=+Inf thr=-Inf\";;\n  fail) echo boom >&2; exit 3;;\n  nan) echo \"lat=NaN thr=5\";;\n  *) echo \"lat=$1 thr=$(($1*2))\";;\nesac\n"), 0o755)
	study := filepath.Join(dir, "s.toml")
	os.WriteFile(study, []byte(`[study]
name = "inf"
engine = "command"
[command]
binary = "./sim.sh"
args = ["{{.x}}", "{{.mode}}"]
reader = "regex"
regex = ['lat=(?P<lat>\S+)', 'thr=(?P<thr_per_s>\S+)']
[metrics]
lat = { type = "float", unit = "s" }
thr_per_s = "float"
[axes]
x = [1, 2, 3, 5, 8]
mode = ["plain", "inf", "fail", "nan"]
`), 0o644)
	out := filepath.Join(dir, "ds")
	if stdout, errs, code := runCLI(t, "run", study, "--out", out, "--progress", "none"); code != 0 || !strings.Contains(stdout, "(15 ok, 5 failed)") {
		t.Fatalf("run: exit %d\n%s%s", code, stdout, errs)
	}
	rep := t.TempDir()
	stdout, errs, code := runCLI(t, "report", out, "-o", rep, "--min", "lat", "--max", "thr_per_s")
	if code != 0 {
		t.Fatalf("report: exit %d\n%s%s", code, stdout, errs)
	}
	html, err := os.ReadFile(filepath.Join(rep, "report.html"))
	if err != nil || !strings.Contains(string(html), "infinite and not drawn") {
		t.Errorf("the report does not say infinite points are left out (%v)", err)
	}
	// best says how many rows had no value to rank (+Inf ranks, NaN does not)
	stdout2, _, _ := runCLI(t, "best", out, "--by", "lat")
	if !strings.Contains(stdout2, "(20 rows: 15 ok, 5 failed; 5 without a value (null or NaN) to rank)") {
		t.Errorf("best: %s", stdout2)
	}
	// the five failures are one kind (each message ends in its own work folder)
	if !strings.Contains(stdout, "5 rows: exit status 3") {
		t.Errorf("the failures are not grouped:\n%s", stdout)
	}
}

// TestReportAggregatesRepeats: the seed that [study] repeats varies is
// aggregated over, not charted as a design axis.
func TestReportAggregatesRepeats(t *testing.T) {
	dir := t.TempDir()
	study := filepath.Join(dir, "rep.toml")
	os.WriteFile(study, []byte("[study]\nname = \"rep\"\nrepeats = 3\n[base]\nnum_experts = 8\nn_layers = 1\n[axes]\nbatch_size = [64, 128, 256]\n"), 0o644)
	out := filepath.Join(dir, "ds")
	if _, errs, code := runCLI(t, "run", study, "--out", out, "--progress", "none", "--quiet"); code != 0 {
		t.Fatal(errs)
	}
	rep := t.TempDir()
	if stdout, errs, code := runCLI(t, "report", out, "-o", rep); code != 0 {
		t.Fatalf("report: exit %d\n%s%s", code, stdout, errs)
	}
	files, _ := filepath.Glob(filepath.Join(rep, "*seed*"))
	if len(files) > 0 {
		t.Errorf("charts over the repeats' seed: %v", files)
	}
	if files, _ := filepath.Glob(filepath.Join(rep, "line-*-vs-batch_size.*")); len(files) == 0 {
		t.Errorf("no chart against batch_size")
	}
	if _, errs, code := runCLI(t, "report", out, "-o", t.TempDir(), "--x", "batch_size,batch_size"); code != 2 || !strings.Contains(errs, "batch_size is named twice") {
		t.Errorf("--x named twice: exit %d %s", code, errs)
	}
	// a report into the same folder with other charts leaves none of the
	// first one's behind
	if _, errs, code := runCLI(t, "report", out, "-o", rep, "--x", "none", "--heatmap", "none"); code != 0 {
		t.Fatalf("second report: %s", errs)
	}
	if files, _ := filepath.Glob(filepath.Join(rep, "line-*")); len(files) > 0 {
		t.Errorf("charts of the first report left: %v", files)
	}
}
