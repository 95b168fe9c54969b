package moe

import (
	"math"
	"testing"
)

// TestReorderCap checks the bound on a GEMM stream's loss beyond the bus
// peak: the shipped HBM2's per-bank queues hold 256 weight tiles of a
// 128×128 fp16 array (16 requests, one page, per channel), the cap is their
// compute for one token tile (GPT-3 7B's FC1: 32×32 tiles of 19.5 cycles,
// 4,992 cycles), and GEMMLoadCycles takes the proportional loss below the
// cap and the cap above it.
func TestReorderCap(t *testing.T) {
	h := DefaultHBM()
	a := Systolic{H: 128, W: 128, Issue: 16}
	if got := h.ReorderTiles(128 * 128 * 2); got != 256 {
		t.Errorf("ReorderTiles = %v, want 256", got)
	}
	// a tile of 4 KiB per channel halves what the queues hold
	if got := h.ReorderTiles(256 * 256 * 2); got != 64 {
		t.Errorf("ReorderTiles(256×256 fp16) = %v, want 64", got)
	}
	kt, nt := int64(4096/128), int64(4096/128)
	cap7B := a.ReorderCapCycles(h.ReorderTiles(128*128*2), nt)
	if want := 256 * float64(kt*(128+16*(nt-1))) / float64(kt*nt); math.Abs(cap7B-want) > 1e-9 || math.Abs(cap7B-4992) > 1 {
		t.Errorf("ReorderCapCycles(7B FC1) = %v, want %v (4,992)", cap7B, want)
	}
	peak, stream := h.PeakBytesPerCycle(), h.StreamBytesPerCycle()
	small := int64(8 << 20) // 8 MiB: loss below the cap
	if got, want := GEMMLoadCycles(&h, small, 0, cap7B), float64(small)/stream; math.Abs(got-want) > 1e-6 {
		t.Errorf("GEMMLoadCycles(8 MiB) = %v, want %v (stream bandwidth)", got, want)
	}
	big := int64(100 << 20) // 100 MiB: loss capped
	if got, want := GEMMLoadCycles(&h, big, 0, cap7B), float64(big)/peak+cap7B; math.Abs(got-want) > 1e-6 {
		t.Errorf("GEMMLoadCycles(100 MiB) = %v, want %v (peak + cap)", got, want)
	}
	if got := a.ReorderCapCycles(256, 0); got != 0 {
		t.Errorf("ReorderCapCycles of an empty GEMM = %v, want 0", got)
	}
}
