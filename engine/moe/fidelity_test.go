package moe_test

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/sweep-dse/sweep/engine/moe/neupimsio"
)

// Fidelity targets against the real NeuPIMs runs in testdata/neupims-results
// (copies of the reference outputs; configs in testdata/neupims).
const (
	targetTotal = 0.03 // iteration total (sum of stage cycles)
	targetStage = 0.07 // each stage's total_cycles
	targetOp    = 0.20 // each op's TotalCycle
)

// knownMisses are the ops that miss the 20 % op target, each with the bound
// the test holds it to and why (docs/fidelity.md, "Where it misses"). Every
// other op must be within 20 %; today there are none. (The two ops once
// listed here, stage C's FFN LayerNorm and stage D's attention residual of
// the sub-batch run, waited for PIM GWRITEs whose address NeuPIMs' address
// counter gave them; moe.GwriteStall models that now.)
var knownMisses = map[string]float64{}

type refRun struct {
	model, sys, trace string
}

var traceFiles = map[string]string{
	"upstream-clb0-bs512": "share-gpt2-bs512-ms7B-tp4-clb-0.csv",
	"gen-clb0-bs256":      "share-gpt2-bs256-ms7B-tp4-pp1-clb-0.csv",
	"gen-clb0-bs128":      "share-gpt2-bs128-ms7B-tp4-pp1-clb-0.csv",
	"gen-s2-clb0-bs192":   "share-gpt2-bs192-ms7B-tp4-pp1-clb-0.csv",
	"gen-s2-rr0-bs64":     "share-gpt2-bs64-ms7B-tp4-pp1-rr-0.csv",
	"upstream-rr0-bs512":  "share-gpt2-bs512-ms7B-tp4-rr-0.csv",
}

func readCSV(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, r := range recs[1:] {
		m := map[string]string{}
		for i, k := range recs[0] {
			m[k] = r[i]
		}
		out = append(out, m)
	}
	return out
}

// readTSV parses a NeuPIMs TSV (every line ends with a tab) into rows keyed
// by the header, checking the trailing tab.
func readTSV(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var head []string
	var out []map[string]string
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if !strings.HasSuffix(line, "\t") {
			t.Fatalf("%s:%d: line does not end with a tab", path, n)
		}
		cells := strings.Split(strings.TrimSuffix(line, "\t"), "\t")
		if head == nil {
			head = cells
			continue
		}
		if len(cells) != len(head) {
			t.Fatalf("%s:%d: %d cells, header has %d", path, n, len(cells), len(head))
		}
		m := map[string]string{}
		for i, k := range head {
			m[k] = cells[i]
		}
		out = append(out, m)
	}
	return out
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func rel(model, ref int64) float64 { return float64(model-ref) / float64(ref) }

// TestFidelity runs the NeuPIMs front end on every reference run's configs,
// reads back the files it writes, and compares them per stage and per op
// with the real NeuPIMs outputs. `go test ./engine/moe -run TestFidelity -v`
// prints the tables of docs/fidelity.md.
func TestFidelity(t *testing.T) {
	checkFidelity(t, "neupims-results", knownMisses)
}

// heldOutMisses are the iteration totals ("<run> total"), stages ("<run>
// <stage> (stage)") and ops of the held-out runs that miss their target,
// each with the bound the test holds it to (docs/fidelity.md, "Held-out
// runs"). They record where the model does not yet generalise: 20 of 198
// memory-bound vector ops (1 to 5 % of a stage) are off by 20 to 55 % and
// one sub-batch projection by 23 %. Every total and stage meets its target.
// Nine of the vector ops run beside a PIM op. There a read can wait for the
// PIM: for its refresh slack, whose phase a closed form cannot know
// (docs/fidelity.md, "Vector ops beside PIM work"), or for a GWRITE to its
// address (two ops, whose modelled wait is off in size). The other vector
// ops run with no PIM work beside them. 19 of the 21 are within 20 % of
// NeuPIMs' range over the refresh phases of testdata/neupims-phase; the
// other 2 are phaseMisses.
var heldOutMisses = map[string]float64{
	"gpt3-7B sub-batch-off gen-s2-clb0-bs192 A SA layer0.attn.ln": 0.3,  // +28.4 %
	"gpt3-7B sub-batch-off gen-s2-clb0-bs192 E SA layer0.ffn.ln":  0.28, // +26.6 %
	"gpt3-7B sub-batch-on gen-clb0-bs128 A SA layer0.attn.ln":     0.28, // -26.1 %
	"gpt3-7B sub-batch-on gen-clb0-bs128 C SA layer0.ffn.ln":      0.28, // +26.3 %
	"gpt3-7B sub-batch-on gen-clb0-bs128 D SA layer0.ffn.gelu":    0.33, // -31.1 %
	"gpt3-7B sub-batch-on gen-clb0-bs128 E SA layer0.ffn.gelu":    0.28, // -26.0 %
	"gpt3-7B sub-batch-on gen-clb0-bs128 E SA layer0.ffn.ln":      0.39, // +37.8 %
	"gpt3-7B sub-batch-on gen-clb0-bs128 F SA layer0.attn.proj":   0.25, // -23.1 %
	"gpt3-7B sub-batch-on gen-clb0-bs128 F SA layer0.ffn.gelu":    0.3,  // +28.6 %
	"gpt3-7B sub-batch-on gen-clb0-bs128 F SA layer0.ffn.ln":      0.22, // -20.6 %
	"gpt3-13B sub-batch-on gen-clb0-bs256 C SA layer0.ffn.gelu":   0.33, // -31.3 %
	"gpt3-13B sub-batch-on gen-clb0-bs256 C SA layer0.ffn.ln":     0.42, // +40.7 %
	"gpt3-13B sub-batch-on gen-clb0-bs256 D SA layer0.ffn.gelu":   0.54, // -52.1 %
	"gpt3-13B sub-batch-on gen-clb0-bs256 E SA layer0.ffn.res":    0.26, // -24.6 %

	"gpt3-7B sub-batch-off gen-s2-rr0-bs64 A SA layer0.attn.ln":     0.28, // -26.1 %
	"gpt3-7B sub-batch-off gen-s2-rr0-bs64 E SA layer0.ffn.ln":      0.25, // -23.3 %
	"gpt3-7B sub-batch-off gen-s2-rr0-bs64 E SA layer0.ffn.res":     0.22, // -20.5 %
	"gpt3-7B sub-batch-off upstream-rr0-bs512 E SA layer0.ffn.gelu": 0.24, // -22.3 %
	"gpt3-30B sub-batch-on gen-clb0-bs128 C SA layer0.attn.res":     0.25, // -23.2 %
	"gpt3-30B sub-batch-on gen-clb0-bs128 D SA layer0.attn.ln":      0.23, // -21.0 %
	"gpt3-30B sub-batch-on gen-clb0-bs128 D SA layer0.ffn.ln":       0.43, // +41.8 %
}

// TestFidelityHeldOut is TestFidelity on runs of the real NeuPIMs that no
// constant of the model was fitted on (testdata/neupims-heldout: other batch
// sizes, new traces and round-robin channel placement, GPT-3 30B and 175B,
// sub-batch mode on for 7B, 13B and 30B), held to the same targets except
// where heldOutMisses says otherwise.
func TestFidelityHeldOut(t *testing.T) {
	checkFidelity(t, "neupims-heldout", heldOutMisses)
}

// checkFidelity compares the front end with the NeuPIMs runs of
// testdata/<results>, holding every total, stage and op to its target or
// to its bound in misses.
func checkFidelity(t *testing.T, results string, misses map[string]float64) {
	stages := readCSV(t, filepath.Join("testdata", results, "stages.csv"))
	ops := readCSV(t, filepath.Join("testdata", results, "ops.csv"))
	var runs []refRun
	seen := map[refRun]bool{}
	for _, s := range stages {
		r := refRun{s["model"], s["sys_config"], s["trace"]}
		if !seen[r] {
			seen[r] = true
			runs = append(runs, r)
		}
	}
	if len(runs) == 0 {
		t.Fatal("no reference runs")
	}
	seenMisses := map[string]bool{}
	// limit returns the bound of key, whose error is e: its entry in
	// misses, or target. A listed key that meets target fails the test, so
	// that misses lists only what still misses.
	limit := func(key string, e, target float64) float64 {
		if b, ok := misses[key]; ok {
			seenMisses[key] = true
			if math.Abs(e) <= target {
				t.Errorf("%s: %+.1f %%, within the %.0f %% target now; remove it from the list of misses", key, 100*e, 100*target)
			}
			return b
		}
		return target
	}
	var table strings.Builder
	table.WriteString("| run | stage | op | NeuPIMs cycles | sweep cycles | error |\n|---|---|---|---:|---:|---:|\n")
	var worstTotal, worstStage, worstOp float64
	var opMisses, nOps, stageMisses, totalMisses, farOps, farMisses int
	var missShifts []string
	for _, run := range runs {
		tf, ok := traceFiles[run.trace]
		if !ok {
			t.Fatalf("no trace file for %q", run.trace)
		}
		name := run.model + " " + run.sys + " " + run.trace
		fe := frontEnd(t, run, tf)
		got := fe.stages
		var refTotal, modTotal int64
		for _, s := range stages {
			if (refRun{s["model"], s["sys_config"], s["trace"]}) != run {
				continue
			}
			st := s["stage"]
			ref := atoi(t, s["total_cycles"])
			m, ok := got[st]
			if !ok {
				t.Errorf("%s: stage %s missing from _summary.tsv", name, st)
				continue
			}
			refTotal += ref
			modTotal += m
			e := rel(m, ref)
			worstStage = max(worstStage, math.Abs(e))
			mark := ""
			if math.Abs(e) > targetStage {
				stageMisses++
				mark = " (over 7 %)"
			}
			fmt.Fprintf(&table, "| %s | %s | (stage) | %d | %d | %+.1f %%%s |\n", name, st, ref, m, 100*e, mark)
			if b := limit(name+" "+st+" (stage)", e, targetStage); math.Abs(e) > b {
				t.Errorf("%s stage %s: %d cycles, NeuPIMs %d (%+.1f %%, limit ±%.0f %%)", name, st, m, ref, 100*e, 100*b)
			}
			modOps := fe.ops[st]
			var keys []string
			refOps, refStarts := map[string]int64{}, map[string]int64{}
			for _, o := range ops {
				if (refRun{o["model"], o["sys_config"], o["trace"]}) != run || o["stage"] != st {
					continue
				}
				k := o["unit"] + " " + o["op_name"]
				refOps[k] = atoi(t, o["total_cycle"])
				refStarts[k] = atoi(t, o["start_cycle"])
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				m, ok := modOps[k]
				if !ok {
					t.Errorf("%s stage %s: op %s missing", name, st, k)
					continue
				}
				e := rel(m, refOps[k])
				nOps++
				worstOp = max(worstOp, math.Abs(e))
				// How far the front end starts the op from where NeuPIMs
				// does, in NeuPIMs' refresh periods: the refresh phase an op
				// meets moves its cycles, and a model that starts it a
				// period or more away cannot know that phase.
				shift := float64(fe.starts[st][k]-refStarts[k]) / float64(fe.period)
				far := math.Abs(shift) >= 1
				if far {
					farOps++
				}
				mark := ""
				if math.Abs(e) > targetOp {
					opMisses++
					mark = " (over 20 %)"
					missShifts = append(missShifts, fmt.Sprintf("%s %s %s starts %+.2f", name, st, k, shift))
					if far {
						farMisses++
					}
				}
				fmt.Fprintf(&table, "| %s | %s | %s | %d | %d | %+.1f %%%s |\n", name, st, k, refOps[k], m, 100*e, mark)
				if b := limit(name+" "+st+" "+k, e, targetOp); math.Abs(e) > b {
					t.Errorf("%s stage %s op %s: %d cycles, NeuPIMs %d (%+.1f %%, limit ±%.0f %%)", name, st, k, m, refOps[k], 100*e, 100*b)
				}
			}
		}
		e := rel(modTotal, refTotal)
		worstTotal = max(worstTotal, math.Abs(e))
		mark := ""
		if math.Abs(e) > targetTotal {
			totalMisses++
			mark = " (over 3 %)"
		}
		fmt.Fprintf(&table, "| %s | total | | %d | %d | %+.2f %%%s |\n", name, refTotal, modTotal, 100*e, mark)
		if b := limit(name+" total", e, targetTotal); math.Abs(e) > b {
			t.Errorf("%s: iteration %d cycles, NeuPIMs %d (%+.2f %%, limit ±%.1f %%)", name, modTotal, refTotal, 100*e, 100*b)
		}
	}
	for k := range misses {
		if !seenMisses[k] {
			t.Errorf("known miss %q is not among the reference runs", k)
		}
	}
	t.Logf("relative error, sweep neupims vs NeuPIMs (testdata/%s):\n%s", results, table.String())
	t.Logf("worst: total %.2f %%, stage %.2f %%, op %.1f %%; beyond target: %d of %d totals, %d stages, %d of %d ops",
		100*worstTotal, 100*worstStage, 100*worstOp, totalMisses, len(runs), stageMisses, opMisses, nOps)
	t.Logf("ops the front end starts one refresh period (tREFI/ranks) or more from where NeuPIMs starts them: %d of %d; of the %d ops beyond 20 %%: %d",
		farOps, nOps, opMisses, farMisses)
	if len(missShifts) > 0 {
		t.Logf("start of each op beyond 20 %%, front end against NeuPIMs, in refresh periods:\n%s", strings.Join(missShifts, "\n"))
	}
}

// frontEndRun is what the front end wrote for one run.
type frontEndRun struct {
	stages map[string]int64            // each stage's total_cycles
	ops    map[string]map[string]int64 // per stage, each op's TotalCycle keyed "SA <name>" or "PIM <name>"
	starts map[string]map[string]int64 // per stage, each op's StartCycle (from the iteration's start), keyed as ops
	period int64                       // NeuPIMs' refresh period, tREFI/ranks [cycles]
}

// frontEnd runs the NeuPIMs front end on the configs of run (trace file tf)
// into a temporary log_dir and reads back what it wrote.
func frontEnd(t *testing.T, run refRun, tf string) frontEndRun {
	t.Helper()
	td := filepath.Join("testdata", "neupims")
	dir := t.TempDir()
	r, err := neupimsio.Load(neupimsio.Files{
		Config:      filepath.Join(td, "systolic_ws_128x128_dev.json"),
		MemConfig:   filepath.Join(td, "memory_configs", "neupims.json"),
		CliConfig:   filepath.Join(td, "request-traces", tf),
		ModelConfig: filepath.Join(td, "model_configs", run.model+".json"),
		SysConfig:   filepath.Join(td, "system_configs", run.sys+".json"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Write(dir, r.Simulate()); err != nil {
		t.Fatal(err)
	}
	out := frontEndRun{
		stages: map[string]int64{}, ops: map[string]map[string]int64{}, starts: map[string]map[string]int64{},
		period: r.HBM.TREFI / max(1, r.HBM.Ranks),
	}
	for _, row := range readTSV(t, filepath.Join(dir, "_summary.tsv")) {
		st := row["Stage"]
		out.stages[st] = atoi(t, row["total_cycles"])
		out.ops[st], out.starts[st] = map[string]int64{}, map[string]int64{}
		for _, unit := range []string{"SA", "PIM"} {
			p := filepath.Join(dir, unit+"_stage_"+st+".tsv")
			if _, err := os.Stat(p); err != nil {
				continue
			}
			for _, o := range readTSV(t, p) {
				out.ops[st][unit+" "+o["OpName"]] = atoi(t, o["TotalCycle"])
				out.starts[st][unit+" "+o["OpName"]] = atoi(t, o["StartCycle"])
			}
		}
	}
	return out
}

// TestFrontEndRefusesExperts: sweep neupims models the dense decoder, so a
// model config with experts (moe_enabled true, num_experts > 0) is a file
// error naming the key, and a malformed moe_enabled is one too.
func TestFrontEndRefusesExperts(t *testing.T) {
	td := filepath.Join("testdata", "neupims")
	base, err := os.ReadFile(filepath.Join(td, "model_configs", "gpt3-7B.json"))
	if err != nil {
		t.Fatal(err)
	}
	for extra, want := range map[string]string{
		`"moe_enabled": true,`:   `key "moe_enabled": true: sweep neupims models`,
		`"num_experts": 8,`:      `key "num_experts": 8: sweep neupims models`,
		`"moe_enabled": "true",`: `key "moe_enabled": want true or false`,
	} {
		model := filepath.Join(t.TempDir(), "m.json")
		os.WriteFile(model, []byte(strings.Replace(string(base), "{", "{"+extra, 1)), 0o644)
		_, err := neupimsio.Load(neupimsio.Files{
			Config:      filepath.Join(td, "systolic_ws_128x128_dev.json"),
			MemConfig:   filepath.Join(td, "memory_configs", "neupims.json"),
			CliConfig:   filepath.Join(td, "request-traces", traceFiles["gen-clb0-bs128"]),
			ModelConfig: model,
			SysConfig:   filepath.Join(td, "system_configs", "sub-batch-off.json"),
		})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", extra, err, want)
		}
	}
}
