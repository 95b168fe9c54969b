package moe_test

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// phaseMisses are the ops whose front-end cycles lie more than 20 % outside
// NeuPIMs' whole range over the refresh phases of testdata/neupims-phase,
// each with the bound the test holds that distance to (docs/fidelity.md,
// "How far NeuPIMs moves with the refresh phase"). They are what the model
// gets wrong whatever the phase; the other 19 of the 21 held-out misses
// lie within 20 % of NeuPIMs' range. Both are memory-bound vector ops of
// the held-out 7B sub-batch run, at 6 phases (5 besides the reference):
//   - the FFN LayerNorm of stage C beside LogitSoftmax: NeuPIMs 929 to
//     1,135 cycles, about its unstretched time (1,081), where the model
//     stretches it to 1,374 (the same op in stages D and E: 999 to 1,792
//     and 980 to 1,466 cycles);
//   - the GELU of stage F at 64 rows: NeuPIMs 593 to 604 cycles, barely
//     more than its reads at the bus peak, where the model charges 0.42 of
//     its writes too (765), as it does for the same op after the same ops
//     in the 64-request sub-batch-off run, where NeuPIMs takes 841 to
//     1,045.
var phaseMisses = map[string]float64{
	"gpt3-7B sub-batch-on gen-clb0-bs128 C SA layer0.ffn.ln":   0.23, // +21.1 %
	"gpt3-7B sub-batch-on gen-clb0-bs128 F SA layer0.ffn.gelu": 0.28, // +26.7 %
}

// phaseKey names a stage (op "(stage)") or an op ("SA <name>", "PIM
// <name>") of a run.
type phaseKey struct {
	run       refRun
	stage, op string
}

// TestFidelityRefreshPhase compares the front end with runs of the real
// NeuPIMs that differ from the reference runs only in where the refresh
// schedule stands when the run begins (testdata/neupims-phase: NewtonSim's
// refresh clock started at an offset, so every refresh comes offset cycles
// earlier; nothing else changed). It prints, for every total, stage and op,
// NeuPIMs' cycles at each phase, the front end's error against each, and
// how far the front end lies outside NeuPIMs' range over the phases; and
// it counts how far NeuPIMs itself moves and for how many ops the phase
// decides the verdict against the 20 % target. It fails when a total,
// stage or op lies beyond its target (3, 7, 20 %) of NeuPIMs' whole range
// and is not in phaseMisses (or beyond its bound there), when an op of
// phaseMisses meets the target (so the list stays true), and when the
// phase runs do not hold the same stages and ops as their reference.
func TestFidelityRefreshPhase(t *testing.T) {
	phase := filepath.Join("testdata", "neupims-phase")
	vals := map[phaseKey]map[int64]int64{} // offset → cycles
	offsets := map[refRun][]int64{}
	var runs []refRun
	for _, s := range readCSV(t, filepath.Join(phase, "stages.csv")) {
		r := refRun{s["model"], s["sys_config"], s["trace"]}
		off := atoi(t, s["refresh_offset"])
		if off <= 0 {
			t.Fatalf("%v: refresh_offset %d, want > 0 (offset 0 is the reference run)", r, off)
		}
		if _, ok := offsets[r]; !ok {
			runs = append(runs, r)
		}
		if o := offsets[r]; len(o) == 0 || o[len(o)-1] != off {
			offsets[r] = append(offsets[r], off)
		}
		k := phaseKey{r, s["stage"], "(stage)"}
		if vals[k] == nil {
			vals[k] = map[int64]int64{}
		}
		vals[k][off] = atoi(t, s["total_cycles"])
	}
	for _, o := range readCSV(t, filepath.Join(phase, "ops.csv")) {
		k := phaseKey{refRun{o["model"], o["sys_config"], o["trace"]}, o["stage"], o["unit"] + " " + o["op_name"]}
		if vals[k] == nil {
			vals[k] = map[int64]int64{}
		}
		vals[k][atoi(t, o["refresh_offset"])] = atoi(t, o["total_cycle"])
	}
	// offset 0: the reference runs
	inPhase := map[refRun]bool{}
	for _, r := range runs {
		inPhase[r] = true
	}
	refKeys := map[phaseKey]bool{}
	for _, results := range []string{"neupims-results", "neupims-heldout"} {
		for _, s := range readCSV(t, filepath.Join("testdata", results, "stages.csv")) {
			r := refRun{s["model"], s["sys_config"], s["trace"]}
			if inPhase[r] {
				k := phaseKey{r, s["stage"], "(stage)"}
				refKeys[k] = true
				if vals[k] == nil {
					vals[k] = map[int64]int64{}
				}
				vals[k][0] = atoi(t, s["total_cycles"])
			}
		}
		for _, o := range readCSV(t, filepath.Join("testdata", results, "ops.csv")) {
			r := refRun{o["model"], o["sys_config"], o["trace"]}
			if inPhase[r] {
				k := phaseKey{r, o["stage"], o["unit"] + " " + o["op_name"]}
				refKeys[k] = true
				if vals[k] == nil {
					vals[k] = map[int64]int64{}
				}
				vals[k][0] = atoi(t, o["total_cycle"])
			}
		}
	}
	for k, v := range vals {
		if !refKeys[k] {
			t.Errorf("%v stage %s %s: not in the reference run", k.run, k.stage, k.op)
		} else if len(v) != len(offsets[k.run])+1 {
			t.Errorf("%v stage %s %s: %d phases, the run has %d", k.run, k.stage, k.op, len(v), len(offsets[k.run])+1)
		}
	}

	var table strings.Builder
	table.WriteString("| run | stage | op | NeuPIMs cycles by refresh offset | max/min | sweep cycles | error at 0 | error range | error vs mean | beyond NeuPIMs' range |\n|---|---|---|---|---:|---:|---:|---:|---:|---:|\n")
	var c phaseCounts
	seen := map[string]bool{}
	// row prints one total, stage or op, counts it, and fails the test when
	// the front end lies beyond target of NeuPIMs' whole range over the
	// phases and the key is not listed in phaseMisses (or beyond its bound)
	row := func(name, stage, op string, v map[int64]int64, offs []int64, m int64, kind phaseKind) {
		target := kind.target()
		var cells []string
		var ref []int64
		for _, off := range offs {
			cells = append(cells, fmt.Sprint(v[off]))
			ref = append(ref, v[off])
		}
		p := phaseRow{ref: ref, model: m}
		errs := p.errs()
		fmt.Fprintf(&table, "| %s | %s | %s | %s | %.2f | %d | %+.1f %% | %+.1f to %+.1f %% | %+.1f %% | %+.1f %% |\n",
			name, stage, op, strings.Join(cells, " / "), p.spread(), m, 100*errs[0], 100*slices.Min(errs), 100*slices.Max(errs), 100*p.meanErr(), 100*p.bandErr())
		if kind != kindOp && math.Abs(p.meanErr()) > target {
			t.Errorf("%s %s %s: %+.1f %% from NeuPIMs' mean over the refresh phases (target %.0f %%)", name, stage, op, 100*p.meanErr(), 100*target)
		}
		c.add(p, kind)
		key := strings.TrimSpace(name + " " + stage + " " + op)
		be := math.Abs(p.bandErr())
		if b, listed := phaseMisses[key]; listed {
			seen[key] = true
			if be > b {
				t.Errorf("%s: %.1f %% beyond NeuPIMs' range over the refresh phases (bound %.0f %%)", key, 100*be, 100*b)
			} else if be <= target {
				t.Errorf("%s: within %.0f %% of NeuPIMs' range over the refresh phases now; remove it from phaseMisses", key, 100*target)
			}
		} else if be > target {
			t.Errorf("%s: %.1f %% beyond NeuPIMs' range over the refresh phases (target %.0f %%)", key, 100*be, 100*target)
		}
	}
	for _, run := range runs {
		tf, ok := traceFiles[run.trace]
		if !ok {
			t.Fatalf("no trace file for %q", run.trace)
		}
		name := run.model + " " + run.sys + " " + run.trace
		offs := append([]int64{0}, offsets[run]...)
		fe := frontEnd(t, run, tf)
		gotStages, gotOps := fe.stages, fe.ops
		var offCells []string
		for _, off := range offs {
			offCells = append(offCells, fmt.Sprint(off))
		}
		fmt.Fprintf(&table, "| %s | | (refresh offsets) | %s | | | | | | |\n", name, strings.Join(offCells, " / "))
		var stageNames []string
		for k := range vals {
			if k.run == run && k.op == "(stage)" {
				stageNames = append(stageNames, k.stage)
			}
		}
		sort.Strings(stageNames)
		refTotal := map[int64]int64{}
		var modTotal int64
		for _, st := range stageNames {
			v := vals[phaseKey{run, st, "(stage)"}]
			modTotal += gotStages[st]
			for off, n := range v {
				refTotal[off] += n
			}
			row(name, st, "(stage)", v, offs, gotStages[st], kindStage)
			var opNames []string
			for k := range vals {
				if k.run == run && k.stage == st && k.op != "(stage)" {
					opNames = append(opNames, k.op)
				}
			}
			sort.Strings(opNames)
			for _, op := range opNames {
				m, ok := gotOps[st][op]
				if !ok {
					t.Errorf("%s stage %s: op %s missing from the front end's output", name, st, op)
					continue
				}
				row(name, st, op, vals[phaseKey{run, st, op}], offs, m, kindOp)
			}
		}
		row(name, "total", "", refTotal, offs, modTotal, kindTotal)
	}
	for k := range phaseMisses {
		if !seen[k] {
			t.Errorf("phase miss %q is not among the phase runs", k)
		}
	}
	t.Logf("NeuPIMs at other refresh phases (testdata/neupims-phase) against sweep neupims:\n%s", table.String())
	t.Logf("%d configurations. NeuPIMs' own spread over the refresh phases: up to %.1f %% in an iteration total, %.1f %% in a stage; "+
		"%d of %d ops spread beyond 1.5× (no single value is within 20 %% of every phase). "+
		"The phase decides the front end's verdict for %d totals, %d stages and %d ops "+
		"(ops: %d within their target at offset 0 and beyond it at another phase, %d the other way round). "+
		"Against NeuPIMs' mean over the phases: worst total %.2f %%, worst stage %.2f %%, %d of %d ops beyond 20 %%. "+
		"Beyond their target of NeuPIMs' whole range: %d totals, %d stages, %d ops",
		len(runs), 100*c.totals.spread, 100*c.stages.spread, c.wideOps, c.ops,
		c.totals.decided, c.stages.decided, c.lostOps+c.wonOps, c.lostOps, c.wonOps,
		100*c.totals.mean, 100*c.stages.mean, c.meanOutOps, c.ops,
		c.totals.out, c.stages.out, c.outOps)
}

// phaseRow is one total, stage or op: NeuPIMs' cycles at each refresh
// phase (offset 0 first) and the front end's.
type phaseRow struct {
	ref   []int64
	model int64
}

// errs are the front end's relative errors against each phase.
func (p phaseRow) errs() []float64 {
	var e []float64
	for _, r := range p.ref {
		e = append(e, rel(p.model, r))
	}
	return e
}

// spread is NeuPIMs' largest over its smallest value.
func (p phaseRow) spread() float64 {
	return float64(slices.Max(p.ref)) / float64(slices.Min(p.ref))
}

// meanErr is the front end's relative error against NeuPIMs' mean over
// the phases.
func (p phaseRow) meanErr() float64 {
	var sum float64
	for _, r := range p.ref {
		sum += float64(r)
	}
	return float64(p.model)/(sum/float64(len(p.ref))) - 1
}

// bandErr is how far the front end lies outside NeuPIMs' range over the
// phases, relative to the nearer end: 0 inside [min, max].
func (p phaseRow) bandErr() float64 {
	lo, hi := slices.Min(p.ref), slices.Max(p.ref)
	switch {
	case p.model < lo:
		return rel(p.model, lo)
	case p.model > hi:
		return rel(p.model, hi)
	}
	return 0
}

// phaseCounts are TestFidelityRefreshPhase's summary figures.
type phaseCounts struct {
	ops, wideOps    int // ops; ops whose spread is beyond 1.5
	lostOps, wonOps int // ops within target at offset 0 and beyond at another phase; the other way round
	outOps          int // ops beyond target of NeuPIMs' range
	totals, stages  levelCounts
	meanOutOps      int // ops beyond target of NeuPIMs' mean over the phases
}

// levelCounts are phaseCounts' figures of the iteration totals, or of the
// stages.
type levelCounts struct {
	decided int     // within target at some phase and beyond at another
	out     int     // beyond target of NeuPIMs' range
	spread  float64 // largest spread − 1
	mean    float64 // largest |meanErr|
}

// phaseKind says what a phaseRow is: an iteration total, a stage or an op.
type phaseKind int

const (
	kindTotal phaseKind = iota
	kindStage
	kindOp
)

// target is the fidelity target of the kind.
func (k phaseKind) target() float64 {
	return [...]float64{kindTotal: targetTotal, kindStage: targetStage, kindOp: targetOp}[k]
}

// add counts p, a row of the given kind.
func (c *phaseCounts) add(p phaseRow, kind phaseKind) {
	target := kind.target()
	errs := p.errs()
	in0 := math.Abs(errs[0]) <= target
	var in, out bool
	for _, e := range errs {
		if math.Abs(e) <= target {
			in = true
		} else {
			out = true
		}
	}
	beyond := math.Abs(p.bandErr()) > target
	switch kind {
	case kindOp:
		c.ops++
		if p.spread() > 1.5 {
			c.wideOps++
		}
		if in0 && out {
			c.lostOps++
		}
		if !in0 && in {
			c.wonOps++
		}
		if beyond {
			c.outOps++
		}
		if math.Abs(p.meanErr()) > target {
			c.meanOutOps++
		}
	default:
		lv := &c.totals
		if kind == kindStage {
			lv = &c.stages
		}
		lv.spread = max(lv.spread, p.spread()-1)
		lv.mean = max(lv.mean, math.Abs(p.meanErr()))
		if in && out {
			lv.decided++
		}
		if beyond {
			lv.out++
		}
	}
}
