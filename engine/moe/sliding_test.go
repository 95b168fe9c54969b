package moe

import (
	"math"
	"testing"

	"github.com/sweep-dse/sweep/engine"
)

// TestSlidingAt: sliding_layers s of L layers spread evenly from layer 0.
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
			kv := func(window, layers int) map[string]any {
				return base(map[string]any{"hardware": hw, "sub_batch": sb, "sliding_window": window, "sliding_layers": layers})
			}
			none := metrics(t, e, kv(0, 0))
			long := metrics(t, e, kv(4096, 12))
			for k, v := range none {
				if k != "in.sliding_window" && k != "in.sliding_layers" && long[k] != v {
					t.Errorf("%s sub_batch=%v: a window longer than every request changes %s: %v, without %v", hw, sb, k, long[k], v)
				}
			}
			all := metrics(t, e, kv(128, 24))
			half := metrics(t, e, kv(128, 12))
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
// the even layers over 128 tokens.
func TestGptOssSlides(t *testing.T) {
	e := New()
	for _, tc := range []struct {
		kv     map[string]any
		layers int64
	}{
		{map[string]any{"model": "gpt-oss-120b"}, 18},
		{map[string]any{"model": "gpt-oss-20b"}, 12},
		{map[string]any{"model_config": "hf/gpt-oss-120b.json"}, 18},
		{map[string]any{"model_config": "hf/gpt-oss-20b.json"}, 12},
	} {
		m := metrics(t, e, tc.kv)
		if m["in.sliding_window"] != engine.IntV(128) || m["in.sliding_layers"] != engine.IntV(tc.layers) {
			t.Errorf("%v: sliding_window %v, sliding_layers %v; want 128 and %d", tc.kv, m["in.sliding_window"], m["in.sliding_layers"], tc.layers)
		}
	}
}
