package moe

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sweep-dse/sweep/engine"
)

func TestDeterministic(t *testing.T) {
	e := New()
	sp := seedPoint()
	sp["routing"] = "zipf"
	sp["capacity_factor"] = 1.25
	a := metrics(t, e, sp)
	b := metrics(t, New(), sp)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same point and seed gave different metrics")
	}
	sp["seed"] = 2
	c := metrics(t, e, sp)
	if a["tokens_per_expert_max"] == c["tokens_per_expert_max"] && a["tokens_dropped"] == c["tokens_dropped"] && a["experts_active"] == c["experts_active"] && a["cycles_experts"] == c["cycles_experts"] {
		t.Fatal("another seed gave the same routing")
	}
}

// TestProperties checks invariants over a randomised grid: latency never beats
// the roofline bound, assigned + dropped = batch·top_k, and no metric is NaN
// or Inf.
func TestProperties(t *testing.T) {
	e := New()
	r := rand.New(rand.NewPCG(1, 2))
	pick := func(xs ...any) any { return xs[r.IntN(len(xs))] }
	n := 3000
	if testing.Short() {
		n = 300
	}
	for i := 0; i < n; i++ {
		E := pick(0, 1, 2, 8, 16, 64, 128, 256).(int)
		kv := map[string]any{
			"d_model":       pick(512, 1024, 4096, 5120).(int),
			"n_heads":       pick(8, 32).(int),
			"n_layers":      pick(1, 4, 32).(int),
			"tp":            pick(1, 2, 4, 8).(int),
			"ffn":           pick("gelu", "swiglu"),
			"batch_size":    pick(1, 3, 64, 128, 512, 1000).(int),
			"seq_len":       pick(1, 100, 2048).(int),
			"pim":           pick(true, false),
			"routing":       pick("uniform", "zipf"),
			"seed":          r.IntN(1000),
			"overlap_loads": pick(true, false),
			"arrays":        pick(1, 3, 8).(int),
			"sub_batch":     pick(false, false, true),
		}
		kv["num_experts"] = E
		if E > 0 {
			kv["top_k"] = 1 + r.IntN(min(E, 8))
			kv["moe_ffn_scaling"] = pick("balanced", "compute", "capacity")
			kv["capacity_factor"] = pick(0.0, 0.5, 1.0, 1.25, 2.0)
			kv["routing_skew"] = pick(0.0, 0.8, 1.5, 3.0)
			kv["shared_experts"] = pick(0, 0, 1, 2)
			kv["resident_experts"] = pick(0, 8, 1000)
		}
		m := metrics(t, e, kv)
		for name, v := range m {
			if v.Kind == engine.Float && (math.IsNaN(v.F) || math.IsInf(v.F, 0)) {
				t.Fatalf("%v: %s = %v", kv, name, v.F)
			}
		}
		if m["latency_s"].F < m["roofline_latency_s"].F {
			t.Fatalf("%v: latency %g beats roofline %g", kv, m["latency_s"].F, m["roofline_latency_s"].F)
		}
		if u := m["array_utilization"].F; u < 0 || u > 1 {
			t.Fatalf("%v: utilisation %g", kv, u)
		}
		if E > 0 {
			k := int64(kv["top_k"].(int))
			b := int64(kv["batch_size"].(int))
			// means over the MoE layers: a sum of whole numbers over
			// layers, so the sum is b·k up to rounding
			if got := m["tokens_assigned"].F + m["tokens_dropped"].F; math.Abs(got-float64(b*k)) > 1e-9*float64(b*k) {
				t.Fatalf("%v: assigned+dropped = %g, want %d", kv, got, b*k)
			}
			if m["experts_active"].F > float64(E) || m["tokens_per_expert_max"].F > float64(b) {
				t.Fatalf("%v: expert loads out of range", kv)
			}
		}
	}
}

func TestInvalidInput(t *testing.T) {
	e := New()
	for _, tc := range []struct {
		kv   map[string]any
		want string
	}{
		{map[string]any{"num_experts": 0, "top_k": 2}, "top_k = 2: needs num_experts >= 1"},
		{map[string]any{"num_experts": 8, "top_k": 9}, "top_k = 9: must be between 1 and num_experts = 8"},
		{map[string]any{"num_experts": -1}, "num_experts = -1"},
		{map[string]any{"num_experts": 8, "moe_ffn_scaling": "wide"}, `moe_ffn_scaling = wide: not one of balanced, compute, capacity`},
		{map[string]any{"batch_size": 0}, "batch_size = 0: must be at least 1"},
		{map[string]any{"num_experts": 8, "d_ff_expert": 0}, "d_ff_expert = 0: must be at least 1"},
		{map[string]any{"model": "gpt5"}, "model = gpt5: unknown model preset"},
		{map[string]any{"link_gbps": 0.0}, "link_gbps = 0: must be a positive number"},
		{map[string]any{"n_heads": 3}, "n_heads = 3: does not divide d_model"},
		{map[string]any{"capacity_factor": -1.0}, "capacity_factor = -1"},
		{map[string]any{"model_config": "missing.json"}, "missing.json: cannot read"},
		{map[string]any{"model_config": "bad-syntax.json"}, "bad-syntax.json:4: malformed JSON"},
		{map[string]any{"model_config": "bad-type.json"}, `bad-type.json:3: key "model_n_embd": want a number`},
		{map[string]any{"model_config": "missing-key.json"}, "missing keys model_n_head"},
		{map[string]any{"seq_trace": "bad-trace.csv"}, `bad-trace.csv:3: seq_len "x12" is not a positive integer`},
		{map[string]any{"seq_trace": "bad-header.csv"}, "bad-header.csv:1: header"},
		{map[string]any{"sliding_window": -1}, "sliding_window = -1: must be 0 (no sliding window) or positive"},
		{map[string]any{"sliding_window": 128, "sliding_fraction": 1.5}, "sliding_fraction = 1.5: must be between 0 and 1"},
		{map[string]any{"sliding_fraction": -0.5}, "sliding_fraction = -0.5: must be between 0 and 1"},
	} {
		_, err := tryPoint(e, tc.kv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.kv, err, tc.want)
		}
		var pe *engine.ParamError
		var fe *engine.FileError
		if err != nil && !errors.As(err, &pe) && !errors.As(err, &fe) {
			t.Errorf("%v: error %T is neither ParamError nor FileError", tc.kv, err)
		}
	}
}

func TestNeuPIMsFiles(t *testing.T) {
	ref := "neupims" // NeuPIMs' own config files, relative to testdata
	e := New()
	p := point(t, e, map[string]any{
		"model_config": filepath.Join(ref, "model_configs", "gpt3-7B.json"),
		"npu_config":   filepath.Join(ref, "systolic_ws_128x128_dev.json"),
		"mem_config":   filepath.Join(ref, "memory_configs", "neupims.json"),
		"seq_trace":    filepath.Join(ref, "request-traces", "share-gpt2-bs512-ms7B-tp4-clb-0.csv"),
	})
	want := map[string]engine.Value{
		"d_model": engine.IntV(4096), "n_heads": engine.IntV(32), "n_layers": engine.IntV(1), "tp": engine.IntV(4),
		"batch_size": engine.IntV(512), "clock_mhz": engine.FloatV(1000), "hbm_channels": engine.IntV(32),
		"hbm_bytes_per_cycle": engine.FloatV(32), "pim": engine.BoolV(true), "arrays": engine.IntV(8),
	}
	for name, w := range want {
		if got := p[engine.ParamIndex(e.Params(), name)]; got != w {
			t.Errorf("%s = %v, want %v", name, got, w)
		}
	}
	out := make([]engine.Value, len(e.Metrics()))
	if err := e.Evaluate(context.Background(), p, out); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkSeedPoint evaluates the seed point over and over: its routing is
// drawn once and then memoised, as in a sweep where many points share one
// routing (BenchmarkSeedPointCold draws it every time).
func BenchmarkSeedPoint(b *testing.B) {
	benchEvaluate(b, map[string]any{"d_model": 4096, "num_experts": 64, "top_k": 2, "batch_size": 512, "n_layers": 1})
}

// benchEvaluate evaluates the point kv over and over.
func benchEvaluate(b *testing.B, kv map[string]any) {
	e := New()
	p := point(b, e, kv)
	out := make([]engine.Value, len(e.Metrics()))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Evaluate(ctx, p, out); err != nil {
			b.Fatal(err)
		}
	}
}

// coldSeed is the last routing seed BenchmarkSeedPointCold used.
var coldSeed int64 = 1 << 40

// BenchmarkSeedPointCold evaluates the seed point with a new routing seed
// each time, so every evaluation draws its routing (512 tokens × top-2), in
// one MoE layer (layers=1) or in each of the seed model's 32 (layers=32).
func BenchmarkSeedPointCold(b *testing.B) {
	for _, layers := range []int{1, 32} {
		b.Run(fmt.Sprintf("layers=%d", layers), func(b *testing.B) { benchCold(b, layers) })
	}
}

func benchCold(b *testing.B, layers int) {
	e := New()
	p := point(b, e, map[string]any{"d_model": 4096, "num_experts": 64, "top_k": 2, "batch_size": 512, "n_layers": layers})
	out := make([]engine.Value, len(e.Metrics()))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		coldSeed++ // never a seed an earlier run (-count) memoised
		p[pSeed] = engine.IntV(coldSeed)
		if err := e.Evaluate(ctx, p, out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "points/s")
}

// BenchmarkPresetPoint evaluates published models at their own layer
// counts (routing memoised, as in a sweep): a MoE layer's experts are
// timed per active expert, so few wide experts over many layers and many
// narrow ones cost differently from the one-layer seed point.
func BenchmarkPresetPoint(b *testing.B) {
	for _, kv := range []map[string]any{
		{"model": "mixtral-8x7b", "batch_size": 256},
		{"model": "deepseek-v3", "batch_size": 64},
		{"model": "gpt-oss-120b", "batch_size": 64},
	} {
		b.Run(fmt.Sprint(kv["model"]), func(b *testing.B) { benchEvaluate(b, kv) })
	}
}
