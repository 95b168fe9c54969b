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

// TestPIMStretchedVector checks a vector op's stretch beside a PIM program:
// 1 + SAInterference before Attend begins, 1 + VectorAttendInterference
// while it runs, none after the program ends, with the op's base cycles
// split across those spans by the work each completes.
func TestPIMStretchedVector(t *testing.T) {
	fl, fa := 1+SAInterference, 1+VectorAttendInterference
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	for _, c := range []struct {
		name                        string
		t, base, attendFrom, pimEnd float64
		want                        float64
	}{
		{"no PIM program", 0, 200, 0, 0, 200},
		{"after the program", 500, 200, 100, 400, 200},
		{"within LogitSoftmax", 0, 200, 1000, 2000, 200 * fl},
		{"within Attend", 300, 200, 100, 2000, 200 * fa},
		{"Attend throughout (attendFrom 0)", 0, 200, 0, 2000, 200 * fa},
		// 100 wall cycles at fl complete 100/fl; the rest runs at fa
		{"across the start of Attend", 0, 200, 100, 2000, 100 + (200-100/fl)*fa},
		// 145 wall cycles at fa complete 145/fa; the rest runs unstretched
		{"past the program's end", 0, 200, 0, 145, 145 + 200 - 145/fa},
		// all three spans: 100 at fl, 300 at fa, then the rest at 1
		{"across both ends", 0, 500, 100, 400, 400 + 500 - 100/fl - 300/fa},
		// Attend would begin after the program ends: LogitSoftmax to the end
		{"Attend from beyond the end", 0, 500, 600, 400, 400 + 500 - 400/fl},
	} {
		if got := PIMStretchedVector(c.t, c.base, c.attendFrom, c.pimEnd); !near(got, c.want) {
			t.Errorf("%s: PIMStretchedVector(%v, %v, %v, %v) = %v, want %v", c.name, c.t, c.base, c.attendFrom, c.pimEnd, got, c.want)
		}
	}
	// with Attend after the program's end it is PIMStretched, the GEMMs' stretch
	for _, base := range []float64{0, 50, 700, 5000} {
		for _, start := range []float64{0, 300, 999, 1200} {
			if a, b := PIMStretchedVector(start, base, 1000, 1000), PIMStretched(start, base, 1000); !near(a, b) {
				t.Errorf("t %v base %v: PIMStretchedVector %v, PIMStretched %v", start, base, a, b)
			}
		}
	}
	// wall time grows with the work and never falls below it
	prev := 0.0
	for base := 0.0; base <= 3000; base += 7 {
		w := PIMStretchedVector(50, base, 400, 1500)
		if w < prev || w < base {
			t.Fatalf("base %v: %v cycles after %v", base, w, prev)
		}
		prev = w
	}
}
