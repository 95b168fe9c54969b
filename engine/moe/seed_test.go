package moe

import "testing"

// TestSeedValidationTable reproduces every figure of the seed document's
// "Validation Results" table (d_model 4096, d_ff 16384, 64 experts, top-2,
// balanced, batch 512).
func TestSeedValidationTable(t *testing.T) {
	e := New()
	m := metrics(t, e, seedPoint())
	want := map[string]int64{
		"in.d_ff":               16384,
		"in.d_ff_expert":        256,
		"params_attention":      67108864,
		"params_router":         262144,
		"params_per_expert":     2097152,
		"params_experts":        134217728,
		"params_moe_ffn":        134479872,
		"params_dense_ffn":      134217728,
		"params_layer":          201588736,
		"params_active":         71565312,
		"link_bytes_per_expert": 4194304,
		"act_bytes_dense_ffn":   37748736,
	}
	for name, w := range want {
		if got := m[name].I; got != w {
			t.Errorf("%s = %d, want %d", name, got, w)
		}
	}
	if r := m["active_ratio"].F; r < 0.3545 || r >= 0.3555 {
		t.Errorf("active_ratio = %v, want 35.5 %%", r)
	}
}

func TestSeedScalingModes(t *testing.T) {
	e := New()
	cp := seedPoint()
	cp["moe_ffn_scaling"] = "compute"
	m := metrics(t, e, cp)
	if got := m["in.d_ff_expert"].I; got != 2048 {
		t.Errorf("compute d_ff_expert = %d, want 2048", got)
	}
	if got, dense := m["params_experts"].I, m["params_dense_ffn"].I; got != 8*dense {
		t.Errorf("compute experts = %d, want 8 x dense %d", got, dense)
	}
	cp["moe_ffn_scaling"] = "capacity"
	m = metrics(t, e, cp)
	if got := m["params_experts"].I; got != 8589934592 {
		t.Errorf("capacity experts = %d, want 8,589,934,592", got)
	}
	if got, dense := m["params_experts"].I, m["params_dense_ffn"].I; got != 64*dense {
		t.Errorf("capacity experts = %d, want 64 x dense", got)
	}
}

func TestSeedUnslicedFigure(t *testing.T) {
	// before token slicing, 50 full-width experts each took all 512 tokens:
	// the seed's "~1.9 GB"
	m := metrics(t, New(), map[string]any{"d_model": 4096, "num_experts": 50, "moe_ffn_scaling": "capacity", "batch_size": 512})
	got := m["act_bytes_moe_unsliced"].I
	if got != 50*37748736 {
		t.Errorf("unsliced = %d, want %d", got, 50*37748736)
	}
	if got < 1.85e9 || got > 1.95e9 {
		t.Errorf("unsliced = %d, want ~1.9 GB", got)
	}
}

func TestLinkCycles(t *testing.T) {
	e := New()
	bal := seedPoint()
	bal["link_latency_cycles"] = 0
	bal["link_gbps"] = 32.0
	b := metrics(t, e, bal)
	// 4,194,304 B at 32 B/cycle (32 GB/s at 1 GHz)
	if got := b["link_cycles_per_expert"].I; got != 131072 {
		t.Errorf("balanced link cycles = %d, want 131072", got)
	}
	bal["moe_ffn_scaling"] = "capacity"
	c := metrics(t, e, bal)
	if c["link_cycles_per_expert"].I != 64*b["link_cycles_per_expert"].I {
		t.Errorf("capacity/balanced link cycles = %d/%d, want 64", c["link_cycles_per_expert"].I, b["link_cycles_per_expert"].I)
	}
	bal["moe_ffn_scaling"] = "balanced"
	bal["link_latency_cycles"] = 5000
	l := metrics(t, e, bal)
	if got := l["link_cycles_per_expert"].I; got != 131072+5000 {
		t.Errorf("with latency = %d, want %d", got, 131072+5000)
	}
}

func TestTokenSlicing(t *testing.T) {
	m := metrics(t, New(), seedPoint())
	moe, dense, unsliced := m["act_bytes_moe"].I, m["act_bytes_dense_ffn"].I, m["act_bytes_moe_unsliced"].I
	if float64(moe) > 1.5*float64(dense) {
		t.Errorf("act_bytes_moe %d > 1.5 x dense %d", moe, dense)
	}
	if float64(unsliced) < 30*float64(moe) {
		t.Errorf("unsliced %d < 30 x sliced %d", unsliced, moe)
	}
}
