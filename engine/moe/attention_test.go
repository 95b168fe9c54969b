package moe

import (
	"math/rand/v2"
	"testing"
)

// TestAttentionClosedFormMatchesLoop checks the no-trace closed form of
// attention against the per-request loop it replaces (a trace of equal
// lengths placed round-robin), over random shapes.
func TestAttentionClosedFormMatchesLoop(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	e := New()
	for i := 0; i < 300; i++ {
		kv := map[string]any{
			"batch_size": 1 + r.IntN(1100), "seq_len": 1 + r.IntN(5000),
			"hbm_channels": []int{1, 3, 8, 32, 64}[r.IntN(5)], "tp": 1 + r.IntN(8),
			"pim": r.IntN(4) > 0,
		}
		p := point(t, e, kv)
		c := e.config(p)
		var a, b attnWork
		la, aa := make([]int64, c.channels), make([]int64, c.channels)
		c.attention(&a, la, aa, nil)
		trace := make([]Request, c.batch)
		for j := range trace {
			trace[j] = Request{SeqLen: int32(c.seqLen), Channel: int32(int64(j) % c.channels)}
		}
		c.seqTrace = trace
		lb, ab := make([]int64, c.channels), make([]int64, c.channels)
		c.attention(&b, lb, ab, nil)
		if a != b {
			t.Fatalf("%v: closed form %+v, loop %+v", kv, a, b)
		}
		for ch := range la {
			if la[ch] != lb[ch] || aa[ch] != ab[ch] {
				t.Fatalf("%v: channel %d differs", kv, ch)
			}
		}
	}
}

// TestExpertMemoChangesNothing evaluates random MoE points with and without
// the memo of expert FFN costs (shared by the two sampled layers timed, and
// bypassed beside PIM programs in sub-batch mode): every metric must be
// identical.
func TestExpertMemoChangesNothing(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	e := New()
	for i := 0; i < 300; i++ {
		E := []int{1, 4, 16, 64, 128, 256}[r.IntN(6)]
		kv := map[string]any{
			"num_experts": E, "top_k": 1 + r.IntN(min(E, 8)), "batch_size": 1 + r.IntN(1024),
			"d_model": []int{1024, 4096}[r.IntN(2)], "ffn": []string{"gelu", "swiglu"}[r.IntN(2)],
			"moe_ffn_scaling": []string{"balanced", "compute", "capacity"}[r.IntN(3)],
			"routing":         []string{"uniform", "zipf"}[r.IntN(2)], "seed": r.IntN(100),
			"pim": r.IntN(3) > 0, "n_layers": 1 + r.IntN(12), "sub_batch": r.IntN(2) == 0,
			"capacity_factor": []float64{0, 1.25}[r.IntN(2)], "dense_layers": r.IntN(2), "moe_layer_freq": 1 + r.IntN(2),
		}
		noExpertMemo = false
		a := metrics(t, e, kv)
		noExpertMemo = true
		b := metrics(t, e, kv)
		noExpertMemo = false
		for k, v := range a {
			if b[k] != v {
				t.Fatalf("%v: %s = %v with the memo, %v without", kv, k, v, b[k])
			}
		}
	}
}
