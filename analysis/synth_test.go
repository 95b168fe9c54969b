package analysis

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sweep-dse/sweep/dataset"
	"github.com/sweep-dse/sweep/engine"
	"github.com/sweep-dse/sweep/engine/moe"
)

// synthStudy declares the axes of synthetic datasets.
const synthStudy = `[study]
name = "synth"
description = "synthetic rows for analysis tests"
engine = "moe"
where = ["top_k <= num_experts"]

[base]
model = "gpt3-7B"

[axes]
num_experts = [8, 16, 32, 64]
moe_ffn_scaling = ["balanced", "compute", "capacity"]
batch_size = [64, 128, 256, 512]
top_k = [1, 2]
`

// synthRow is what a test knows of one written row.
type synthRow struct {
	id       string
	ok       bool
	experts  int64
	scaling  string
	batch    int64
	topK     int64
	vals     map[string]engine.Value // metrics by name; Unset = null
	errorMsg string
}

// num is a metric as a number; false for null.
func (r synthRow) num(m string) (float64, bool) {
	v := r.vals[m]
	switch v.Kind {
	case engine.Int:
		return float64(v.I), true
	case engine.Float:
		return v.F, true
	}
	return 0, false
}

// synthMetrics are the metrics given random values (the others stay null).
var synthMetrics = []string{"latency_s", "tokens_per_s", "params_layer", "act_bytes_moe", "link_bytes", "array_utilization"}

// writeSynth writes n rows with random metric values into dir, in parts of
// at most partRows rows. Values come from small sets so that ties and
// duplicates are common; about 5 % of rows fail and 2 % of ok rows have a
// null latency.
func writeSynth(t testing.TB, dir string, n, partRows int, seed uint64) []synthRow {
	t.Helper()
	return writeSynthStudy(t, dir, n, partRows, seed, synthStudy)
}

// writeSynthStudy is writeSynth with the given study text in the metadata
// ("" = none).
func writeSynthStudy(t testing.TB, dir string, n, partRows int, seed uint64, study string) []synthRow {
	t.Helper()
	eng := moe.New()
	params, metrics := eng.Params(), eng.Metrics()
	meta := map[string]string{
		dataset.MetaStudyName:     "synth",
		dataset.MetaEngine:        eng.Name(),
		dataset.MetaEngineVersion: eng.Version(),
		dataset.MetaToolVersion:   "test",
	}
	if study != "" {
		meta[dataset.MetaStudy] = study
	}
	w, err := dataset.NewWriter(dir, "synth", eng, meta)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	pi := func(name string) int {
		i := engine.ParamIndex(params, name)
		if i < 0 {
			t.Fatalf("no parameter %s", name)
		}
		return i
	}
	experts := []int64{8, 16, 32, 64}
	scalings := []string{"balanced", "compute", "capacity"}
	batches := []int64{64, 128, 256, 512}
	var rows []synthRow
	for i := 0; i < n; i++ {
		r := synthRow{
			id:      fmt.Sprintf("%016x", rng.Uint64()),
			ok:      rng.IntN(100) >= 5,
			experts: experts[rng.IntN(len(experts))],
			scaling: scalings[rng.IntN(len(scalings))],
			batch:   batches[rng.IntN(len(batches))],
			topK:    int64(1 + rng.IntN(2)),
			vals:    map[string]engine.Value{},
		}
		p := make([]engine.Value, len(params))
		p[pi("model")] = engine.StringV("gpt3-7B")
		p[pi("num_experts")] = engine.IntV(r.experts)
		p[pi("moe_ffn_scaling")] = engine.StringV(r.scaling)
		p[pi("batch_size")] = engine.IntV(r.batch)
		p[pi("top_k")] = engine.IntV(r.topK)
		m := make([]engine.Value, len(metrics))
		if r.ok {
			for _, name := range synthMetrics {
				j := engine.FieldIndex(metrics, name)
				var v engine.Value
				if metrics[j].Kind == engine.Int {
					v = engine.IntV(int64(rng.IntN(40)) * 1_000_000)
				} else {
					v = engine.FloatV(float64(rng.IntN(60)) / 8)
				}
				if name == "latency_s" && rng.IntN(100) < 2 {
					v = engine.Value{}
				}
				m[j] = v
				r.vals[name] = v
			}
		} else {
			r.errorMsg = fmt.Sprintf("synthetic failure %d", rng.IntN(3))
		}
		rows = append(rows, r)
		status := dataset.StatusOK
		if !r.ok {
			status = dataset.StatusFailed
		}
		w.Append(&dataset.Row{ID: r.id, Status: status, Error: r.errorMsg, Params: p, Metrics: m,
			Elapsed: time.Millisecond, Finished: time.Unix(1_700_000_000, 0)})
		if w.Rows() >= partRows {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return rows
}
