package moe

import (
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/sweep-dse/sweep/engine"
)

// versionDigests pins, per model version, a digest of every metric of
// versionPoints. A change of the model that moves any of them must bump
// Version (engine.go), so that a dataset's rows of the old model are
// archived, not mixed with the new ones; then the new version's digest
// goes here.
var versionDigests = map[string]string{
	"12": "60160a57161ee91b",
}

// versionPoints cover the model's parts: dense and MoE layers, PIM and NPU
// attention, sub-batch mode, zipf and traced routing with capacity,
// shared experts, MLA, grouped-query and sliding-window attention, and a
// core clock apart from the DRAM's.
var versionPoints = []map[string]any{
	{"d_model": 4096, "num_experts": 64, "top_k": 2, "batch_size": 512},
	{"model": "gpt3-7B", "sub_batch": true, "batch_size": 128},
	{"model": "gpt3-7B", "num_experts": 16, "sub_batch": true, "batch_size": 96, "routing": "zipf", "capacity_factor": 1.25},
	{"model": "mixtral-8x7b", "batch_size": 8, "hardware": "npu-hbm"},
	{"model": "deepseek-v3", "batch_size": 64, "resident_experts": 256},
	{"model": "gpt-oss-20b", "batch_size": 64, "seq_len": 2048},
	{"model": "qwen3-30b-a3b", "batch_size": 32, "overlap_loads": true},
	{"model": "gpt3-7B", "batch_size": 8, "clock_mhz": 1500.0, "num_experts": 8, "sub_batch": true},
	{"model_config": filepath.Join("hf", "olmoe-1b-7b.json"), "batch_size": 16, "seq_trace": filepath.Join("neupims", "request-traces", "share-gpt2-bs128-ms7B-tp4-pp1-clb-0.csv")},
}

// TestVersionGuard fails when the model's results change without a new
// Version.
func TestVersionGuard(t *testing.T) {
	e := New()
	h := sha256.New()
	trace := writeRoutingTrace(t, 8, 64, func(r int) []int { return []int{r % 8, (r + 3) % 8} })
	points := append(versionPoints, map[string]any{"model": "gpt3-7B", "num_experts": 8, "batch_size": 48,
		"routing": "trace", "routing_trace": trace, "resident_experts": 3, "capacity_factor": 1.0})
	for _, kv := range points {
		m := metrics(t, e, kv)
		for _, f := range e.Metrics() {
			// floats to 10 digits: the last bits may differ between
			// architectures (fused multiply-adds), a model change does not
			if v := m[f.Name]; v.Kind == engine.Float {
				fmt.Fprintf(h, "%s=%.10g;", f.Name, v.F)
			} else {
				fmt.Fprintf(h, "%s=%v;", f.Name, v)
			}
		}
	}
	got := fmt.Sprintf("%x", h.Sum(nil))[:16]
	want, ok := versionDigests[Version]
	switch {
	case !ok:
		t.Fatalf("model version %s has no digest: add %q: %q to versionDigests", Version, Version, got)
	case got != want:
		t.Fatalf("the model's results changed (digest %s, version %s pins %s): bump Version in engine.go and pin the new version's digest, %q", got, Version, want, got)
	}
}
