package moe

import (
	"math"
	"path/filepath"
	"testing"
)

// TestEnginePIMMatchesValidatedMechanism checks that the engine's PIM
// attention with its default parameters is the command-level mechanism that
// the NeuPIMs front end validates (hbm.go PIMAttention on the .ini timing,
// docs/fidelity.md): per channel, the engine's busy cycles equal the sum of
// PIMAttention's logit and attend cycles over the requests the trace places
// there, and the stage divides the busiest channel by the refresh factor.
func TestEnginePIMMatchesValidatedMechanism(t *testing.T) {
	trace := filepath.Join("neupims", "request-traces", "share-gpt2-bs512-ms7B-tp4-clb-0.csv")
	for _, m := range []struct {
		d, heads, tp int
	}{{4096, 32, 4}, {5120, 40, 4}, {7168, 56, 4}, {4096, 32, 1}} {
		e := New()
		p := point(t, e, map[string]any{"d_model": m.d, "n_heads": m.heads, "tp": m.tp, "seq_trace": trace})
		c := e.config(p)
		logit, attend := make([]int64, c.channels), make([]int64, c.channels)
		var w attnWork
		c.attention(&w, logit, attend, nil)
		h := DefaultHBM()
		want := make([]int64, c.channels)
		var lMax, aMax, lw, aw int64
		wl, wa := make([]int64, c.channels), make([]int64, c.channels)
		heads := int64(m.heads / m.tp)
		dk := int64(m.d / m.heads)
		for r := int64(0); r < c.batch; r++ {
			q := c.seqTrace[int(r)%len(c.seqTrace)]
			pr := h.PIMAttention(int64(q.SeqLen), heads, dk, dk, c.dtype)
			ch := int64(q.Channel) % c.channels
			want[ch] += pr.Logit + pr.Attend
			wl[ch] += pr.Logit
			wa[ch] += pr.Attend
			lw += pr.LogitWrites
			aw += pr.AttendWrites
		}
		for i := range wl {
			lMax, aMax = max(lMax, wl[i]), max(aMax, wa[i])
		}
		var busiest int64
		for i := range want {
			if got := logit[i] + attend[i]; got != want[i] {
				t.Fatalf("d=%d tp=%d channel %d: engine %d cycles, PIMAttention %d", m.d, m.tp, i, got, want[i])
			}
			busiest = max(busiest, want[i])
		}
		// the stage: two ops, each its busiest channel over refresh plus
		// the write penalty
		lc, _ := h.PIMOpCycles(float64(lMax), 0, lw)
		ac, _ := h.PIMOpCycles(float64(aMax), 0, aw)
		pim := int64(math.Ceil(float64(busiest) / h.RefreshFactor()))
		if w.pimCycles != lc+ac || w.pimCycles < pim {
			t.Errorf("d=%d tp=%d: attention %d cycles, want %d + %d (at least %d)", m.d, m.tp, w.pimCycles, lc, ac, pim)
		}
	}
	h := DefaultHBM()
	if g := h.GwriteCycles(); g != 124 {
		t.Errorf("GWRITE %d cycles, want 124", g)
	}
	if g := h.GemvTileCycles(4, 8); g != 211 {
		t.Errorf("logit tile %d cycles, want 211", g)
	}
	if g := h.GemvTileCycles(1, 32); g != 157 {
		t.Errorf("attend tile %d cycles, want 157", g)
	}
	if f := h.RefreshFactor(); math.Abs(f-0.8667) > 1e-3 {
		t.Errorf("refresh factor %.4f, want 0.867", f)
	}
	pp := paramTable
	if pp[pPIMGwrite].Default.I != h.GwriteCycles() || pp[pPIMGemv].Default.I != h.GemvTileCycles(1, 1) {
		t.Errorf("defaults pim_gwrite_cycles %d, pim_gemv_cycles %d; the .ini gives %d and %d",
			pp[pPIMGwrite].Default.I, pp[pPIMGemv].Default.I, h.GwriteCycles(), h.GemvTileCycles(1, 1))
	}
}
