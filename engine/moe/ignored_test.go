package moe

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/sweep-dse/sweep/engine"
)

var r = rand.New(rand.NewPCG(9, 10))

// ignoredBy resolves the point and returns what Ignoring reports for it.
//
// Whether the study fixes the given values or varies some (chosen at
// random) must not matter.
func ignoredBy(t testing.TB, e *Engine, in []engine.Value, given []bool) ([]engine.Value, []engine.Ignored) {
	t.Helper()
	p := slices.Clone(in)
	if err := e.Resolve("testdata", p); err != nil {
		t.Fatalf("resolve: %v", err)
	}
	var vary []int // the same study with its given values varied
	for i := range given {
		if given[i] && r.IntN(2) == 0 {
			vary = append(vary, i)
		}
	}
	base := slices.Clone(in)
	for _, i := range vary {
		base[i] = engine.Value{}
	}
	f, g := e.Ignoring(in, nil), e.Ignoring(base, vary)
	if (f == nil) != (g == nil) {
		t.Fatalf("Ignoring of the values fixed and varied: %v and %v", f != nil, g != nil)
	}
	if f == nil {
		return p, nil
	}
	a, b := f(p, nil), g(p, nil)
	if !slices.Equal(a, b) {
		t.Fatalf("the values fixed: ignored %v; varied %v: ignored %v", a, vary, b)
	}
	return p, a
}

// otherValues are values to put in place of parameter i's.
func otherValues(i int, v engine.Value, trace string) []engine.Value {
	switch {
	case i == pRoutingTrace:
		return []engine.Value{engine.StringV(""), engine.StringV(trace), engine.StringV("no-such-file.csv")}
	case i == pSeqTrace || paramTable[i].File:
		return nil
	case len(paramTable[i].Enum) > 0:
		var out []engine.Value
		for _, s := range paramTable[i].Enum {
			if s != v.S {
				out = append(out, engine.StringV(s))
			}
		}
		return out
	}
	switch paramTable[i].Kind {
	case engine.Int:
		var out []engine.Value
		for _, x := range []int64{0, 1, 2, 3, 7, 8, 64, 700, 4096} {
			if x != v.I {
				out = append(out, engine.IntV(x))
			}
		}
		return out
	case engine.Float:
		return []engine.Value{engine.FloatV(0), engine.FloatV(0.5), engine.FloatV(1.25), engine.FloatV(3), engine.FloatV(40)}
	case engine.Bool:
		return []engine.Value{engine.BoolV(!v.Bool())}
	}
	return nil
}

// checkNoEffect evaluates the point with every reported parameter set to
// other values and requires the same metrics, bit for bit; it returns how
// many variants resolved.
func checkNoEffect(t *testing.T, e *Engine, in []engine.Value, given []bool, trace string) int {
	t.Helper()
	p, ign := ignoredBy(t, e, in, given)
	want := make([]engine.Value, nMetrics)
	if err := e.Evaluate(context.Background(), p, want); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, x := range ign {
		if !given[x.Param] {
			t.Fatalf("%s reported, but not given", paramTable[x.Param].Name)
		}
		if !strings.Contains(x.Why, paramTable[x.Param].Name) {
			t.Errorf("%s: the reason %q does not name it", paramTable[x.Param].Name, x.Why)
		}
		for _, v := range otherValues(x.Param, in[x.Param], trace) {
			q := slices.Clone(in)
			q[x.Param] = v
			if err := e.Resolve("testdata", q); err != nil {
				continue // not a valid value here
			}
			n++
			got := make([]engine.Value, nMetrics)
			if err := e.Evaluate(context.Background(), q, got); err != nil {
				t.Fatal(err)
			}
			for m := range got {
				if !got[m].Identical(want[m]) {
					t.Fatalf("point %v: %s is reported without effect (%s), but %s = %v gives %s = %v instead of %v",
						describe(in), paramTable[x.Param].Name, x.Why, paramTable[x.Param].Name, v, metricTable[m].Name, got[m], want[m])
				}
			}
		}
	}
	return n
}

func describe(p []engine.Value) string {
	var s []string
	for i, v := range p {
		if v.IsSet() {
			s = append(s, paramTable[i].Name+"="+v.String())
		}
	}
	return strings.Join(s, " ")
}

// TestIgnoredHasNoEffect holds every rule of ignored.go to the model: on
// points where each applies, Ignoring reports the parameters it should,
// and changing a reported parameter's value changes no metric.
func TestIgnoredHasNoEffect(t *testing.T) {
	e := New()
	tr8 := writeRoutingTrace(t, 8, 64, func(r int) []int { return []int{r % 8, (r + 3) % 8} })
	seqTrace := filepath.Join("neupims", "request-traces", "share-gpt2-bs512-ms7B-tp4-clb-0.csv")
	moeKnobs := map[string]any{"moe_ffn_scaling": "compute", "capacity_factor": 1.25, "shared_experts": 1,
		"d_ff_shared": 512, "shared_expert_gate": true, "dense_layers": 1, "moe_layer_freq": 2, "router_bias": true,
		"link_gbps": 16.0, "link_latency_cycles": 100, "resident_experts": 2, "overlap_loads": true,
		"routing": "zipf", "routing_skew": 2.0, "routing_trace": tr8, "seed": 7}
	with := func(a, b map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range a {
			out[k] = v
		}
		for k, v := range b {
			out[k] = v
		}
		return out
	}
	small := map[string]any{"n_layers": 2, "batch_size": 32, "d_model": 512, "n_heads": 8}
	cases := []struct {
		name string
		kv   map[string]any
		want []string
	}{
		{"dense", with(small, with(moeKnobs, map[string]any{"num_experts": 0})),
			[]string{"moe_ffn_scaling", "capacity_factor", "shared_experts", "d_ff_shared", "shared_expert_gate", "dense_layers",
				"moe_layer_freq", "router_bias", "link_gbps", "link_latency_cycles", "resident_experts", "overlap_loads",
				"routing", "routing_skew", "routing_trace", "seed"}},
		{"dense, sub-batch", with(small, with(moeKnobs, map[string]any{"num_experts": 0, "sub_batch": true})),
			[]string{"moe_ffn_scaling", "capacity_factor", "shared_experts", "d_ff_shared", "shared_expert_gate", "dense_layers",
				"moe_layer_freq", "router_bias", "link_gbps", "link_latency_cycles", "resident_experts", "overlap_loads",
				"routing", "routing_skew", "routing_trace", "seed"}},
		{"uniform", with(small, map[string]any{"num_experts": 8, "routing": "uniform", "routing_skew": 2.0, "routing_trace": tr8, "seed": 3}),
			[]string{"routing_skew", "routing_trace"}},
		{"zipf", with(small, map[string]any{"num_experts": 8, "routing": "zipf", "routing_skew": 2.0, "routing_trace": tr8, "seed": 3}),
			[]string{"routing_trace"}},
		{"trace", with(small, map[string]any{"num_experts": 8, "routing": "trace", "routing_skew": 2.0, "routing_trace": tr8, "seed": 3}),
			[]string{"routing_skew", "seed"}},
		{"trace, sub-batch", with(small, map[string]any{"num_experts": 8, "routing": "trace", "routing_trace": tr8, "seed": 3, "sub_batch": true}),
			[]string{"seed"}},
		{"no shared experts", with(small, map[string]any{"num_experts": 8, "d_ff_shared": 100, "shared_expert_gate": true}),
			[]string{"d_ff_shared", "shared_expert_gate"}},
		{"all resident, sub-batch", with(small, map[string]any{"num_experts": 8, "resident_experts": 8, "overlap_loads": true, "sub_batch": true}),
			[]string{"overlap_loads"}},
		{"all resident, overlap", with(small, map[string]any{"num_experts": 8, "resident_experts": 8, "overlap_loads": true}),
			[]string{"overlap_loads"}},
		{"one expert", with(small, map[string]any{"num_experts": 1, "top_k": 1, "moe_ffn_scaling": "capacity"}),
			[]string{"moe_ffn_scaling"}},
		{"preset's own experts", map[string]any{"model": "mixtral-8x7b", "n_layers": 1, "batch_size": 16, "moe_ffn_scaling": "compute"},
			[]string{"moe_ffn_scaling"}},
		{"preset, other experts", map[string]any{"model": "mixtral-8x7b", "n_layers": 1, "batch_size": 16, "num_experts": 32, "moe_ffn_scaling": "compute"},
			nil},
		{"config file's own experts", map[string]any{"model_config": filepath.Join("hf", "mixtral-8x7b.json"), "n_layers": 1, "batch_size": 16, "moe_ffn_scaling": "balanced"},
			[]string{"moe_ffn_scaling"}},
		{"seq_trace", map[string]any{"n_layers": 1, "seq_trace": seqTrace, "seq_len": 4096, "num_experts": 8},
			[]string{"seq_len"}},
		{"seq_trace, sub-batch", map[string]any{"n_layers": 2, "seq_trace": seqTrace, "seq_len": 4096, "sub_batch": true},
			[]string{"seq_len"}},
		{"no PIM", with(small, map[string]any{"pim": false, "pim_gwrite_cycles": 10, "pim_gemv_cycles": 20, "sub_batch": true, "num_experts": 8}),
			[]string{"pim_gwrite_cycles", "pim_gemv_cycles", "sub_batch"}},
		{"npu-hbm", with(small, map[string]any{"hardware": "npu-hbm", "pim_gwrite_cycles": 10, "sub_batch": true}),
			[]string{"pim_gwrite_cycles", "sub_batch"}},
		{"one request", with(small, map[string]any{"batch_size": 1, "sub_batch": true, "num_experts": 8}),
			[]string{"sub_batch"}},
		{"window, no sliding layers", with(small, map[string]any{"sliding_window": 64, "sliding_fraction": 0.0, "seq_len": 512}),
			[]string{"sliding_window"}},
		{"no window", with(small, map[string]any{"sliding_window": 0, "sliding_fraction": 0.5, "seq_len": 512}),
			[]string{"sliding_fraction"}},
		{"window", with(small, map[string]any{"sliding_window": 64, "sliding_fraction": 0.5, "seq_len": 512}),
			nil},
		{"no norms", with(small, map[string]any{"norm": "none", "norms_per_layer": 4}),
			[]string{"norms_per_layer"}},
		{"norms", with(small, map[string]any{"norm": "rmsnorm", "norms_per_layer": 4}),
			nil},
		{"biases of a preset", map[string]any{"model": "mixtral-8x7b", "n_layers": 1, "batch_size": 16, "biases": true},
			[]string{"biases"}},
		{"biases given", with(small, map[string]any{"biases": true, "qkv_bias": false, "out_bias": true, "ffn_bias": false}),
			[]string{"biases"}},
		{"biases", with(small, map[string]any{"biases": true, "qkv_bias": false, "out_bias": true}),
			nil},
		{"biases of a GPT-3 preset", map[string]any{"model": "gpt3-7B", "n_layers": 1, "batch_size": 16, "biases": true},
			nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in, given := values(tc.kv)
			_, ign := ignoredBy(t, e, in, given)
			var got []string
			for _, x := range ign {
				got = append(got, paramTable[x.Param].Name)
			}
			sort.Strings(got)
			want := slices.Clone(tc.want)
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Errorf("ignored %v, want %v", got, want)
			}
			if n := checkNoEffect(t, e, in, given, tr8); len(want) > 0 && n < len(want) {
				t.Errorf("only %d other values resolved", n)
			}
		})
	}
}

// TestIgnoredRandom checks the rules on random points: every reported
// parameter can take other values without changing a metric.
func TestIgnoredRandom(t *testing.T) {
	e := New()
	tr8 := writeRoutingTrace(t, 8, 64, func(r int) []int { return []int{r % 8, (r + 5) % 8} })
	r := rand.New(rand.NewPCG(5, 6))
	pick := func(xs ...any) any { return xs[r.IntN(len(xs))] }
	models := append([]string{"custom"}, ModelPresetNames()...)
	checked, reported, variants := 0, 0, 0
	for trial := 0; trial < 400; trial++ {
		kv := map[string]any{"n_layers": pick(1, 2, 3).(int), "batch_size": pick(1, 2, 16, 33).(int)}
		if r.IntN(2) == 0 {
			kv["model"] = models[r.IntN(len(models))]
		} else {
			kv["d_model"], kv["n_heads"] = 256, 4
		}
		opt := map[string]func() any{
			"num_experts":         func() any { return pick(0, 1, 2, 8) },
			"moe_ffn_scaling":     func() any { return pick("balanced", "compute", "capacity") },
			"routing":             func() any { return pick("uniform", "zipf", "trace") },
			"routing_skew":        func() any { return pick(0.0, 1.0, 3.0) },
			"routing_trace":       func() any { return tr8 },
			"seed":                func() any { return pick(1, 2) },
			"shared_experts":      func() any { return pick(0, 1) },
			"d_ff_shared":         func() any { return pick(64, 128) },
			"shared_expert_gate":  func() any { return pick(true, false) },
			"resident_experts":    func() any { return pick(0, 2, 8, 4096) },
			"overlap_loads":       func() any { return pick(true, false) },
			"capacity_factor":     func() any { return pick(0.0, 1.0) },
			"pim":                 func() any { return pick(true, false) },
			"pim_gwrite_cycles":   func() any { return pick(0, 124) },
			"pim_gemv_cycles":     func() any { return pick(0, 157) },
			"sub_batch":           func() any { return pick(true, false) },
			"norm":                func() any { return pick("none", "rmsnorm", "layernorm") },
			"norms_per_layer":     func() any { return pick(2, 4) },
			"biases":              func() any { return pick(true, false) },
			"qkv_bias":            func() any { return pick(true, false) },
			"out_bias":            func() any { return pick(true, false) },
			"ffn_bias":            func() any { return pick(true, false) },
			"seq_len":             func() any { return pick(64, 1000) },
			"dense_layers":        func() any { return pick(0, 1) },
			"moe_layer_freq":      func() any { return pick(1, 2) },
			"router_bias":         func() any { return pick(true, false) },
			"link_gbps":           func() any { return pick(8.0, 32.0) },
			"link_latency_cycles": func() any { return pick(0, 5000) },
		}
		for name, f := range opt {
			if r.IntN(3) == 0 {
				kv[name] = f()
			}
		}
		if r.IntN(4) == 0 {
			kv["seq_trace"] = filepath.Join("neupims", "request-traces", "share-gpt2-bs512-ms7B-tp4-clb-0.csv")
		}
		in, given := values(kv)
		if err := e.Resolve("testdata", slices.Clone(in)); err != nil {
			continue
		}
		checked++
		_, ign := ignoredBy(t, e, in, given)
		reported += len(ign)
		variants += checkNoEffect(t, e, in, given, tr8)
	}
	if checked < 100 || reported < 100 || variants < 1000 {
		t.Fatalf("%d points resolved, %d parameters reported, %d other values tried: too few to mean much", checked, reported, variants)
	}
	t.Logf("%d points, %d parameters reported without effect, %d other values tried", checked, reported, variants)
}

// TestIgnoringNothingToCheck: a study that gives no parameter any rule
// concerns costs nothing per point.
func TestIgnoringNothingToCheck(t *testing.T) {
	base := make([]engine.Value, nParams)
	base[pNumExperts], base[pBatch], base[pModel] = engine.IntV(8), engine.IntV(16), engine.StringV("mixtral-8x7b")
	if New().Ignoring(base, []int{pTopK, pHardware}) != nil {
		t.Error("Ignoring returned a check for parameters no rule concerns")
	}
}

// TestScalingIgnoredOverDFF: the shortcut of scalingIgnored over d_ff
// agrees with comparing the widths of every mode.
func TestScalingIgnoredOverDFF(t *testing.T) {
	p := make([]engine.Value, nParams)
	for _, dff := range []int64{1, 2, 3, 7, 100, 16384} {
		for E := int64(1); E <= 300; E++ {
			p[pDFF] = engine.IntV(dff)
			same := true
			for _, m := range scalingModes {
				same = same && expertWidth(m, dff, E) == expertWidth("balanced", dff, E)
			}
			if got := scalingIgnored(p, E, nil) != ""; got != same {
				t.Fatalf("d_ff %d, E %d: ignored %v, the widths agree: %v", dff, E, got, same)
			}
		}
	}
}

// BenchmarkIgnoring is the check per point of the 1M-point benchmark
// study (bench/perf-1m.toml): what Expand adds to each point.
func BenchmarkIgnoring(b *testing.B) {
	e := New()
	in, _ := values(map[string]any{"model": "gpt3-7B", "n_layers": 1, "seed": 1, "num_experts": 64,
		"moe_ffn_scaling": "compute", "batch_size": 256, "top_k": 2, "seq_len": 1024})
	p := slices.Clone(in)
	if err := e.Resolve("", p); err != nil {
		b.Fatal(err)
	}
	base := slices.Clone(in)
	vary := []int{pNumExperts, pScaling, pBatch, pTopK, pSeqLen}
	for _, i := range vary {
		base[i] = engine.Value{}
	}
	f := e.Ignoring(base, vary)
	var dst []engine.Ignored
	b.ReportAllocs()
	for b.Loop() {
		dst = f(p, dst[:0])
	}
}
