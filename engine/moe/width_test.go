package moe

import (
	"math/big"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sweep-dse/sweep/engine"
)

// TestScalingOfAPresetsWidth: moe_ffn_scaling given with a preset that sets
// d_ff_expert rescales the preset's width from its own expert count; without
// moe_ffn_scaling the preset keeps its width. The same holds for the
// model's config file, by Resolve, by the long way and by a prepared
// resolution.
func TestScalingOfAPresetsWidth(t *testing.T) {
	e := New()
	cases := []struct {
		kv   map[string]any
		want int64
	}{
		{map[string]any{"num_experts": 32, "moe_ffn_scaling": "balanced"}, 14336 * 8 / 32},
		{map[string]any{"num_experts": 32, "moe_ffn_scaling": "compute"}, 7168}, // 14336·sqrt(8/32)
		{map[string]any{"num_experts": 32, "moe_ffn_scaling": "capacity"}, 14336},
		{map[string]any{"num_experts": 2, "moe_ffn_scaling": "balanced"}, 14336 * 4},
		{map[string]any{"num_experts": 2, "moe_ffn_scaling": "compute"}, 14336 * 2},
		{map[string]any{"num_experts": 24, "moe_ffn_scaling": "compute"}, 8276}, // 14336/sqrt(3) = 8276.89
		{map[string]any{"num_experts": 8, "moe_ffn_scaling": "balanced"}, 14336},
		{map[string]any{"num_experts": 8, "moe_ffn_scaling": "compute"}, 14336},
		{map[string]any{"num_experts": 32}, 14336}, // no moe_ffn_scaling: the preset's width
		{map[string]any{}, 14336},
	}
	for _, tc := range cases {
		for _, source := range []map[string]any{
			{"model": "mixtral-8x7b"},
			{"model_config": filepath.Join("hf", "mixtral-8x7b.json")},
		} {
			kv := map[string]any{}
			for k, v := range tc.kv {
				kv[k] = v
			}
			for k, v := range source {
				kv[k] = v
			}
			in, _ := values(kv)
			a, b := slices.Clone(in), slices.Clone(in)
			if err := e.Resolve("testdata", a); err != nil {
				t.Fatalf("%v: %v", kv, err)
			}
			if err := e.resolveLong("testdata", b); err != nil {
				t.Fatalf("%v: the long way: %v", kv, err)
			}
			if got := a[pDFFExpert].I; got != tc.want {
				t.Errorf("%v: d_ff_expert = %d, want %d", kv, got, tc.want)
			}
			if got := b[pDFFExpert].I; got != tc.want {
				t.Errorf("%v: d_ff_expert = %d by the long way, want %d", kv, got, tc.want)
			}
			// prepared: the scaling mode and the expert count vary
			base := slices.Clone(in)
			base[pScaling], base[pNumExperts] = engine.Value{}, engine.Value{}
			if resolve, ok := e.Prepare("testdata", base, []int{pScaling, pNumExperts}); ok && in[pScaling].IsSet() && in[pNumExperts].IsSet() {
				c := slices.Clone(in)
				if err := resolve(c); err != nil {
					t.Fatalf("%v: prepared: %v", kv, err)
				}
				if got := c[pDFFExpert].I; got != tc.want {
					t.Errorf("%v: d_ff_expert = %d prepared, want %d", kv, got, tc.want)
				}
			}
		}
	}
	// a preset without d_ff_expert: the rule over d_ff, as before
	p := point(t, e, map[string]any{"model": "gpt3-7B", "num_experts": 8, "moe_ffn_scaling": "compute"})
	if got, want := p[pDFFExpert].I, int64(5792); got != want { // 16384/sqrt(8) = 5792.6
		t.Errorf("gpt3-7B, 8 experts, compute: d_ff_expert = %d, want %d", got, want)
	}
}

// TestScalingConflictsWithAGivenWidth: d_ff_expert and moe_ffn_scaling
// both given is an error naming both, on every path.
func TestScalingConflictsWithAGivenWidth(t *testing.T) {
	e := New()
	for _, kv := range []map[string]any{
		{"num_experts": 8, "d_ff_expert": 1024, "moe_ffn_scaling": "balanced"},
		{"model": "mixtral-8x7b", "d_ff_expert": 1024, "moe_ffn_scaling": "capacity"},
		{"model_config": filepath.Join("hf", "mixtral-8x7b.json"), "d_ff_expert": 1024, "moe_ffn_scaling": "compute"},
	} {
		_, err := tryPoint(e, kv)
		pe, ok := err.(*engine.ParamError)
		if !ok || pe.Name != "moe_ffn_scaling" || !strings.Contains(pe.Msg, "d_ff_expert = 1024") {
			t.Errorf("%v: error %v, want one on moe_ffn_scaling naming d_ff_expert = 1024", kv, err)
		}
	}
	// either alone is fine
	for _, kv := range []map[string]any{
		{"num_experts": 8, "d_ff_expert": 1024},
		{"model": "mixtral-8x7b", "d_ff_expert": 1024},
		{"num_experts": 8, "moe_ffn_scaling": "capacity"},
	} {
		if _, err := tryPoint(e, kv); err != nil {
			t.Errorf("%v: %v", kv, err)
		}
	}
}

// TestModelWidthExact holds modelWidth to exact arithmetic: floor(w·E0/E),
// floor(w·sqrt(E0/E)) and w, at least 1.
func TestModelWidthExact(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for trial := 0; trial < 20000; trial++ {
		w := int64(1 + r.IntN(1<<20))
		if trial%3 == 0 {
			w = int64(1 + r.IntN(64))
		}
		E0, E := int64(1+r.IntN(4096)), int64(1+r.IntN(4096))
		if trial%5 == 0 { // ratios that are squares: exact integer results
			k := int64(1 + r.IntN(16))
			E0 = E * k * k
			if E0 > 1<<20 {
				continue
			}
		}
		bw, bE0, bE := big.NewInt(w), big.NewInt(E0), big.NewInt(E)
		balanced := new(big.Int).Quo(new(big.Int).Mul(bw, bE0), bE)
		// largest x with x²·E <= w²·E0: isqrt(floor(w²·E0/E))
		compute := new(big.Int).Sqrt(new(big.Int).Quo(new(big.Int).Mul(new(big.Int).Mul(bw, bw), bE0), bE))
		for mode, want := range map[string]int64{"balanced": max(balanced.Int64(), 1), "compute": max(compute.Int64(), 1), "capacity": w} {
			if got := modelWidth(mode, w, E0, E); got != want {
				t.Fatalf("modelWidth(%s, %d, %d, %d) = %d, want %d", mode, w, E0, E, got, want)
			}
		}
	}
}

// TestExpertWidthOrigin: what `sweep sim` prints about d_ff_expert.
func TestExpertWidthOrigin(t *testing.T) {
	e := New()
	for _, tc := range []struct {
		kv   map[string]any
		want string
	}{
		{map[string]any{"model": "mixtral-8x7b"}, "model preset mixtral-8x7b's"},
		{map[string]any{"model": "mixtral-8x7b", "num_experts": 32}, "model preset mixtral-8x7b's 14336 at 8 experts; moe_ffn_scaling rescales it only when given"},
		{map[string]any{"model": "mixtral-8x7b", "num_experts": 32, "moe_ffn_scaling": "balanced"}, "model preset mixtral-8x7b's 14336 at 8 experts, moe_ffn_scaling balanced: 14336·8/32"},
		{map[string]any{"num_experts": 8}, "moe_ffn_scaling balanced: d_ff/E = 16384/8"},
		{map[string]any{"num_experts": 8, "moe_ffn_scaling": "compute"}, "moe_ffn_scaling compute: d_ff/sqrt(E) = 16384/sqrt(8)"},
		{map[string]any{"num_experts": 8, "d_ff_expert": 100}, "given"},
		{map[string]any{}, ""},
	} {
		in, _ := values(tc.kv)
		p := slices.Clone(in)
		if err := e.Resolve("testdata", p); err != nil {
			t.Fatal(err)
		}
		if got := e.ExpertWidthOrigin(in, p); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.kv, got, tc.want)
		}
	}
}
