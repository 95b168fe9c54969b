package moe

import "math"

// The op sequence of a stage, shared by the embedded engine (evaluate) and
// the NeuPIMs-compatible front end (neupimsio): both time every array op
// with Seq.GEMM and Seq.Vector and every PIM attention with PIMCost and
// PIMBatch, so the figures of an engine study stand on the mechanisms that
// docs/fidelity.md validates against NeuPIMs.

// Device is the hardware an op sequence runs on.
type Device struct {
	Array Systolic
	HBM   HBM
	Dtype int64 // bytes per value

	reorderTiles float64 // HBM.ReorderTiles of an array weight tile, once known
	invPeak      float64 // 1 / HBM.PeakBytesPerCycle, once known
}

// Seq times ops that run one after another on the systolic array and the
// vector units, as NeuPIMs runs a stage's array program: each op's loads
// queue behind the writes the ops before it left in the DRAM controller
// (Backlog), and while the stage's PIM program is still working (until
// PIMEnd, cycles since the stage's start; 0 when there is none) the
// memory-bound part of an op is stretched: a GEMM's by PIMStretched, a
// vector op's by PIMStretchedVector, which also needs where the program's
// NeuPIMSAttend begins (AttendFrom).
type Seq struct {
	Dev        Device
	Backlog    float64 // writes still queued in the controller [B]
	T          float64 // cycles since the stage's start
	PIMEnd     float64 // end of the stage's PIM program [cycles]
	AttendFrom float64 // start of its NeuPIMSAttend [cycles]; 0: Attend throughout
	Mem        float64 // memory-bound cycles of the ops so far, before stretching
}

// OpCost is the timing and traffic of one op.
type OpCost struct {
	Cycles     int64   // wall cycles
	Compute    int64   // cycles the array or vector units are busy
	WeightLoad int64   // GEMM: cycles preloading weight tiles into the array
	Reads      int64   // bytes read from HBM
	Writes     int64   // bytes written to HBM
	MemBytes   float64 // bytes the op's memory-bound time moves, backlog included
}

// GEMM times the weight-stationary GEMM [T,K]×[K,N] (T tokens, K×N
// weights) after the ops before it [cycles]:
//
//	load   = GEMMLoadCycles(backlog, first, cap)   (first from GEMMBytes,
//	         cap = ReorderCapCycles(ReorderTiles(H·W·dtype), ceil(N/W)))
//	cycles = max(GEMMCycles(T, K, N, PIMStretched(t, load, pim_end)),
//	             (backlog + reads + writes)/peak_bw)
//
// It leaves no write backlog (VectorBacklog). neupimsStore selects
// NeuPIMs' transposed store for the bytes written (GEMMBytes); it does not
// change the cycles.
func (s *Seq) GEMM(T, K, N int64, neupimsStore bool) OpCost {
	if T <= 0 || K <= 0 || N <= 0 {
		return OpCost{}
	}
	d := &s.Dev
	a, h := &d.Array, &d.HBM
	reads, first, writes := a.GEMMBytes(T, K, N, d.Dtype, h.ReqBytes, neupimsStore)
	if d.reorderTiles == 0 {
		d.reorderTiles = h.ReorderTiles(a.H * a.W * d.Dtype)
	}
	load := GEMMLoadCycles(h, first, s.Backlog, a.ReorderCapCycles(d.reorderTiles, ceilDiv(N, a.W)))
	s.Mem += load
	cyc, comp := GEMMCycles(a, T, K, N, PIMStretched(s.T, load, s.PIMEnd))
	// every byte the op moves crosses the bus: the backlog, all reads (the
	// later token tiles' inputs too) and the outputs, at the bus peak, bound
	// it from below (it binds only when memory is scarce)
	if d.invPeak == 0 {
		d.invPeak = 1 / h.PeakBytesPerCycle()
	}
	if bus := (s.Backlog + float64(reads+writes)) * d.invPeak; float64(cyc) < bus {
		cyc = int64(math.Ceil(bus))
	}
	o := OpCost{Cycles: cyc, Compute: comp, WeightLoad: ceilDiv(T, a.H) * ceilDiv(K, a.H) * a.H,
		Reads: reads, Writes: writes, MemBytes: s.Backlog + float64(first)}
	s.Backlog = VectorBacklog(writes, false)
	s.T += float64(cyc)
	return o
}

// RowBytes is what rows rows of width values move: rows·(width·dtype + req)
// [B] (every row of a vector op is one load or store instruction, which
// touches one request more than its bytes; GEMMBytes).
func (d *Device) RowBytes(rows, width int64) int64 {
	return rows * (width*d.Dtype + d.HBM.ReqBytes)
}

// Vector times a memory-bound vector op (LayerNorm, residual add, GELU,
// softmax) reading reads and writing writes bytes after the ops before it,
// whose vector units are busy compute cycles [cycles]:
//
//	mem    = VectorMemCycles(backlog, reads, writes)
//	cycles = max(compute, ceil(PIMStretchedVector(t, mem, attend_from, pim_end)) + read_latency)
//
// It leaves VectorBacklog(writes) for the next op.
func (s *Seq) Vector(reads, writes, compute int64) OpCost {
	h := &s.Dev.HBM
	mem := VectorMemCycles(h, reads, writes, s.Backlog)
	s.Mem += mem
	cyc := max(compute, int64(math.Ceil(PIMStretchedVector(s.T, mem, s.AttendFrom, s.PIMEnd)))+h.ReadLatency())
	o := OpCost{Cycles: cyc, Compute: compute, Reads: reads, Writes: writes,
		MemBytes: s.Backlog + float64(reads) + OwnWriteShare*float64(writes)}
	s.Backlog = VectorBacklog(writes, true)
	s.T += float64(cyc)
	return o
}

// Idle lets the bus drain the write backlog at its peak while the array
// idles for cycles: backlog = max(0, backlog − cycles·peak_bw) [B].
func (s *Seq) Idle(cycles int64) {
	s.Backlog = max(0, s.Backlog-float64(cycles)*s.Dev.HBM.PeakBytesPerCycle())
}
