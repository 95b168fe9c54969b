package moe

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDRAMClock: DRAM and PIM timings count DRAM cycles (dram_mhz), so
//   - a core and DRAM twice as fast give the same cycles and half the
//     latency, in every mode (without host-link loads: the link keeps its
//     GB/s);
//   - a faster core alone leaves memory time in seconds (the memory
//     roofline) unchanged: a memory-bound point gains only its compute.
func TestDRAMClock(t *testing.T) {
	e := New()
	for _, kv := range []map[string]any{
		{"model": "gpt3-7B", "batch_size": 8},
		{"model": "gpt3-7B", "batch_size": 8, "hardware": "npu-hbm"},
		{"model": "gpt3-7B", "batch_size": 128, "sub_batch": true, "num_experts": 16, "resident_experts": 16}, // no host-link loads: the link keeps its GB/s
		{"model": "mixtral-8x7b", "batch_size": 64, "resident_experts": 8},
	} {
		base := metrics(t, e, kv)
		kv["clock_mhz"], kv["dram_mhz"] = 2000.0, 2000.0
		both := metrics(t, e, kv)
		if both["cycles_total"] != base["cycles_total"] || both["latency_s"].F != base["latency_s"].F/2 {
			t.Errorf("%v: both clocks doubled: %v cycles, %v s; at 1000 MHz %v cycles, %v s",
				kv, both["cycles_total"], both["latency_s"], base["cycles_total"], base["latency_s"])
		}
		kv["dram_mhz"] = 1000.0
		core := metrics(t, e, kv)
		if core["latency_s"].F > base["latency_s"].F || core["latency_s"].F < base["latency_s"].F/2 {
			t.Errorf("%v: a core twice as fast: %v s, at 1000 MHz %v s", kv, core["latency_s"], base["latency_s"])
		}
		if kv["batch_size"] == 8 {
			// memory-bound: the memory roofline holds, and most of the time
			if core["roofline_latency_s"] != base["roofline_latency_s"] || core["latency_s"].F < 0.9*base["latency_s"].F {
				t.Errorf("%v: memory-bound: %v s (roofline %v), at 1000 MHz %v s (roofline %v)", kv,
					core["latency_s"], core["roofline_latency_s"], base["latency_s"], base["roofline_latency_s"])
			}
		}
	}
}

// TestMemConfigDRAMFreq: a NeuPIMs memory config's dram_freq is dram_mhz.
func TestMemConfigDRAMFreq(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ text, want string }{
		{`{"dram_type": "neupims", "dram_channels": 32, "dram_req_size": 64, "dram_freq": 1600}`, ""},
		{`{"dram_type": "neupims", "dram_freq": 0}`, `key "dram_freq": must be positive`},
	} {
		p := filepath.Join(dir, "mem.json")
		if err := os.WriteFile(p, []byte(tc.text), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := LoadMemConfig(p)
		switch {
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want %q", tc.text, err, tc.want)
		case tc.want == "" && (err != nil || out["dram_mhz"].F != 1600):
			t.Errorf("%s: %v, %v; want dram_mhz 1600", tc.text, out, err)
		}
	}
}
