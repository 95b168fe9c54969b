package moe

import (
	"math"
	"testing"

	"github.com/sweep-dse/sweep/engine"
)

// TestSlidingAt: s sliding layers of L spread evenly from layer 0.
func TestSlidingAt(t *testing.T) {
	for _, tc := range []struct {
		L, s int64
		want string
	}{
		{36, 18, "101010101010101010101010101010101010"}, // gpt-oss: the even layers
		{6, 6, "111111"},
		{6, 0, "000000"},
		{6, 1, "100000"},
		{6, 2, "100100"},
		{5, 3, "11010"},
	} {
		c := config{nLayers: tc.L, slidingLayers: tc.s, window: 128}
		got := ""
		for l := int64(0); l < tc.L; l++ {
			got += string("01"[b2i(c.slidingAt(l))])
		}
		if got != tc.want {
			t.Errorf("%d of %d layers: %s, want %s", tc.s, tc.L, got, tc.want)
		}
	}
}

// TestSlidingWindow holds sliding-window attention to what it means:
//   - a window at least as long as every request's KV cache changes no
//     metric (with and without PIM, sub-batch mode on and off);
//   - with a shorter window every sliding layer's attention reads the window
//     only: half the layers sliding costs the mean of none and all sliding
//     (an even n_layers: the first and later layers split alike), and the
//     attention cycles fall;
//   - in sub-batch mode the iteration lies between none and all sliding.
func TestSlidingWindow(t *testing.T) {
	e := New()
	base := func(kv map[string]any) map[string]any {
		out := map[string]any{"model": "gpt-oss-20b", "batch_size": 64, "seq_len": 2048, "resident_experts": 32}
		for k, v := range kv {
			out[k] = v
		}
		return out
	}
	for _, hw := range []string{"neupims", "npu-hbm"} {
		for _, sb := range []bool{false, true} {
			if sb && hw == "npu-hbm" {
				continue // sub-batch mode needs PIM
			}
			kv := func(window int, frac float64) map[string]any {
				return base(map[string]any{"hardware": hw, "sub_batch": sb, "sliding_window": window, "sliding_fraction": frac})
			}
			none := metrics(t, e, kv(0, 1))
			long := metrics(t, e, kv(4096, 0.5))
			for k, v := range none {
				if k != "in.sliding_window" && k != "in.sliding_fraction" && k != "sliding_layers" && long[k] != v {
					t.Errorf("%s sub_batch=%v: a window longer than every request changes %s: %v, without %v", hw, sb, k, long[k], v)
				}
			}
			all := metrics(t, e, kv(128, 1))
			half := metrics(t, e, kv(128, 0.5))
			if all["sliding_layers"].I != 24 || half["sliding_layers"].I != 12 || none["sliding_layers"].I != 0 {
				t.Errorf("sliding layers %v, %v, %v; want 24, 12, 0", all["sliding_layers"], half["sliding_layers"], none["sliding_layers"])
			}
			n, a, h := float64(none["cycles_total"].I), float64(all["cycles_total"].I), float64(half["cycles_total"].I)
			if !(a < h && h < n) || all["cycles_attention"].I >= none["cycles_attention"].I {
				t.Errorf("%s sub_batch=%v: cycles none %v, half %v, all sliding %v; attention %v against %v", hw, sb, n, h, a,
					all["cycles_attention"].I, none["cycles_attention"].I)
			}
			if mean := (n + a) / 2; !sb && math.Abs(h-mean) > 1e-4*mean {
				t.Errorf("%s: half the layers sliding %v cycles, the mean of none and all %v", hw, h, mean)
			}
		}
	}
}

// TestGptOssSlides: the gpt-oss presets and their config.json both slide
// half the layers (the even ones) over 128 tokens, whatever n_layers the
// point sets, and sliding_window = 0 turns it off.
func TestGptOssSlides(t *testing.T) {
	e := New()
	for _, tc := range []struct {
		kv     map[string]any
		window int64
		layers int64
	}{
		{map[string]any{"model": "gpt-oss-120b"}, 128, 18},
		{map[string]any{"model": "gpt-oss-20b"}, 128, 12},
		{map[string]any{"model_config": "hf/gpt-oss-120b.json"}, 128, 18},
		{map[string]any{"model_config": "hf/gpt-oss-20b.json"}, 128, 12},
		{map[string]any{"model": "gpt-oss-20b", "n_layers": 5}, 128, 3},
		{map[string]any{"model_config": "hf/gpt-oss-20b.json", "n_layers": 4}, 128, 2},
		{map[string]any{"model": "gpt-oss-20b", "sliding_window": 0}, 0, 0},
		{map[string]any{"model": "mixtral-8x7b"}, 0, 0},
	} {
		m := metrics(t, e, tc.kv)
		if m["in.sliding_window"] != engine.IntV(tc.window) || m["sliding_layers"] != engine.IntV(tc.layers) {
			t.Errorf("%v: sliding_window %v, sliding_layers %v; want %d and %d", tc.kv, m["in.sliding_window"], m["sliding_layers"], tc.window, tc.layers)
		}
	}
}

// TestSlidingLayerCycles: cycles_layer of a model whose only layer of its
// FFN kind is a sliding layer 0 is a sliding layer's (it never exceeds the
// iteration).
func TestSlidingLayerCycles(t *testing.T) {
	e := New()
	for _, sb := range []bool{false, true} {
		for _, kv := range []map[string]any{
			{"n_layers": 2, "num_experts": 8, "moe_layer_freq": 2},
			{"n_layers": 2, "num_experts": 8, "dense_layers": 2},
			{"n_layers": 1, "num_experts": 8},
		} {
			kv["sliding_window"], kv["seq_len"], kv["sub_batch"] = 100, 4000, sb
			m := metrics(t, e, kv)
			kv["sliding_window"], kv["seq_len"] = 0, 100
			short := metrics(t, e, kv)
			if l, tot := m["cycles_layer"].I, m["cycles_total"].I; l > tot || l != short["cycles_layer"].I {
				t.Errorf("%v: cycles_layer %d (iteration %d), with seq_len 100 and no window %d", kv, l, tot, short["cycles_layer"].I)
			}
		}
	}
}

// TestLayerCyclesWithoutMoELayers: a model with experts but no MoE layer
// (dense_layers = n_layers) reports the dense layer it has.
func TestLayerCyclesWithoutMoELayers(t *testing.T) {
	e := New()
	for _, kv := range []map[string]any{{}, {"sliding_window": 16, "sliding_fraction": 0.5, "seq_len": 600}} {
		kv["n_layers"], kv["dense_layers"] = 2, 2
		kv["num_experts"] = 8
		moe := metrics(t, e, kv)
		kv["num_experts"], kv["dense_layers"] = 0, 0
		dense := metrics(t, e, kv)
		if moe["cycles_layer"] != dense["cycles_layer"] || moe["cycles_total"] != dense["cycles_total"] {
			t.Errorf("%v: cycles_layer %v (total %v), the dense model's %v (%v)", kv, moe["cycles_layer"], moe["cycles_total"], dense["cycles_layer"], dense["cycles_total"])
		}
	}
}
