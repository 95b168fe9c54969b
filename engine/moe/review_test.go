package moe

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeRoutingTrace writes a routing trace of rows tokens over E experts in
// which token t prefers the experts pick(t) (in that order).
func writeRoutingTrace(t *testing.T, E, rows int, pick func(t int) []int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("layer_id,token_id")
	for e := 0; e < E; e++ {
		fmt.Fprintf(&b, ",expert_%d", e)
	}
	b.WriteString("\n")
	for r := 0; r < rows; r++ {
		prob := make([]float64, E)
		for e := range prob {
			prob[e] = 0.01
		}
		for j, e := range pick(r) {
			prob[e] = 0.9 - 0.1*float64(j)
		}
		fmt.Fprintf(&b, "0,%d", r)
		for _, p := range prob {
			fmt.Fprintf(&b, ",%g", p)
		}
		b.WriteString("\n")
	}
	path := filepath.Join(t.TempDir(), "routing.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestResidentExpertsAreThePopularOnes: with a routing trace, the resident
// experts are those the trace picks most, not the lowest-numbered: a trace
// that only ever picks experts 6 and 7 loads nothing when two are resident.
func TestResidentExpertsAreThePopularOnes(t *testing.T) {
	e := New()
	tr := writeRoutingTrace(t, 8, 64, func(int) []int { return []int{6, 7} })
	m := metrics(t, e, map[string]any{"num_experts": 8, "top_k": 2, "routing": "trace", "routing_trace": tr,
		"resident_experts": 2, "batch_size": 64, "n_layers": 1})
	if got := m["experts_loaded"].I; got != 0 {
		t.Errorf("experts_loaded = %d, want 0 (experts 6 and 7 are the popular ones)", got)
	}
	if got := m["link_bytes"].I; got != 0 {
		t.Errorf("link_bytes = %d, want 0", got)
	}
	// zipf: expert 0 is the most popular, so the lowest-numbered stay
	z := metrics(t, e, map[string]any{"num_experts": 8, "top_k": 1, "routing": "zipf", "routing_skew": 50.0,
		"resident_experts": 1, "batch_size": 64, "n_layers": 1})
	if got := z["experts_loaded"].I; got != 0 {
		t.Errorf("zipf: experts_loaded = %d, want 0", got)
	}
}

// TestSubBatchHalvesRouteTheirOwnTokens: the two halves of a sub-batch take
// the routing of their own tokens: traces that differ only in the second
// half's rows give different expert cycles.
func TestSubBatchHalvesRouteTheirOwnTokens(t *testing.T) {
	e := New()
	// first half: every token on experts 0,1; second half: spread, or on 0,1 too
	a := writeRoutingTrace(t, 8, 512, func(r int) []int {
		if r < 256 {
			return []int{0, 1}
		}
		return []int{r % 8, (r + 1) % 8}
	})
	b := writeRoutingTrace(t, 8, 512, func(int) []int { return []int{0, 1} })
	kv := func(tr string) map[string]any {
		return map[string]any{"num_experts": 8, "top_k": 2, "routing": "trace", "routing_trace": tr,
			"resident_experts": 8, "batch_size": 512, "n_layers": 2, "sub_batch": true}
	}
	ma, mb := metrics(t, e, kv(a)), metrics(t, e, kv(b))
	if ma["cycles_experts"].I == mb["cycles_experts"].I {
		t.Errorf("cycles_experts %d with both traces: the second half's rows are not used", ma["cycles_experts"].I)
	}
}

// TestArraysAreNotRoundedUp: an array count that does not divide the array
// height is not credited with more arrays: 65 arrays of 128 rows issue every
// 2 cycles, as 64 do, not every cycle as 128 do.
func TestArraysAreNotRoundedUp(t *testing.T) {
	e := New()
	c := func(arrays int) int64 {
		return metrics(t, e, map[string]any{"arrays": arrays, "n_layers": 1})["cycles_total"].I
	}
	if c65, c64, c128 := c(65), c(64), c(128); c65 != c64 || c65 <= c128 {
		t.Errorf("cycles with 65 arrays %d, 64 %d, 128 %d: want 65 = 64 > 128", c65, c64, c128)
	}
}

// TestLatencyNotBelowRoofline: with scarce HBM bandwidth the iteration is
// not faster than its bytes at the bus peak (the GEMMs' later token tiles
// and outputs cross the bus too).
func TestLatencyNotBelowRoofline(t *testing.T) {
	e := New()
	for _, kv := range []map[string]any{
		{"hbm_bytes_per_cycle": 1.0},
		{"hbm_bytes_per_cycle": 2.0, "pim": false},
		{"hardware": "npu-hbm", "model": "gpt3-7B", "seq_len": 4096, "batch_size": 128, "hbm_channels": 8},
		// sub-batch: the two programs overlap, the bus does not (0.01 %:
		// the stages of the middle layers are rounded once, then repeated)
		{"sub_batch": true, "num_experts": 0, "hbm_bytes_per_cycle": 1.0, "seq_len": 2048},
		{"sub_batch": true, "num_experts": 0, "hbm_bytes_per_cycle": 2.0},
		{"sub_batch": true, "num_experts": 64, "hbm_bytes_per_cycle": 1.0},
	} {
		m := metrics(t, e, kv)
		if lat, roof := m["latency_s"].F, m["roofline_latency_s"].F; lat < roof*(1-1e-4) {
			t.Errorf("%v: latency %g s below the roofline %g s", kv, lat, roof)
		}
	}
}
