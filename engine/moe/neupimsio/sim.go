package neupimsio

import (
	"math"

	"github.com/sweep-dse/sweep/engine/moe"
)

// Op is one row of a SA_stage_<X>.tsv or PIM_stage_<X>.tsv file.
type Op struct {
	Name          string
	PIM           bool  // on the PIM units (else the systolic array / vector units)
	Start, End    int64 // cycles since the iteration began
	Compute       int64 // cycles the array or vector units are busy
	WeightLoad    int64 // cycles spent preloading weight tiles into the array
	Reads, Writes int64 // bytes
	Calc          int64 // multiply-accumulates
	memBytes      float64
}

// Total is End − Start.
func (o *Op) Total() int64 { return o.End - o.Start }

// Stage is one row of _summary.tsv with its ops.
type Stage struct {
	Name      string
	Cycles    int64
	PIMCycles int64   // mean over channels of cycles with PIM work queued
	MemBWUtil float64 // percent of the channels' peak bandwidth
	SA, PIMs  []Op
}

// Result is one decode iteration of one layer.
type Result struct {
	Stages []Stage
}

// Total is the sum of the stages' cycles (one layer's decode iteration).
func (r *Result) Total() int64 {
	var t int64
	for _, s := range r.Stages {
		t += s.Cycles
	}
	return t
}

// saProgram lists the array's ops of one stage for a sub-batch of rows
// tokens, in NeuPIMs' order (StageProgram): projection, attention residual,
// LayerNorm, FC1, GELU, FC2, FFN residual when proj is set; LayerNorm and QKV
// generation when qkv is set. Each op's time follows the op before it: the
// write backlog passes from op to op, and the memory-bound part of an op
// that runs while the stage's PIM program is still working (until pimEnd,
// cycles from the stage's start; 0 when none) is stretched by
// moe.PIMStretched. saMem is the program's memory-bound cycles before
// stretching.
func (r *Run) saProgram(rows int64, proj, qkv bool, pimEnd, carry float64) (ops []Op, saMem, backlog float64) {
	if rows == 0 {
		return nil, 0, carry
	}
	E, tp := r.DModel, r.TP
	dev := r.Device()
	seq := moe.Seq{Dev: dev, Backlog: carry, PIMEnd: pimEnd}
	add := func(name string, o moe.OpCost) {
		ops = append(ops, Op{Name: name, Compute: o.Compute, WeightLoad: o.WeightLoad, Reads: o.Reads,
			Writes: o.Writes, End: o.Cycles, memBytes: o.MemBytes})
	}
	gemm := func(name string, K, N int64) {
		o := seq.GEMM(rows, K, N, true)
		add(name, o)
	}
	// vector op over rows of width w, reading in inputs per row (and, for a
	// LayerNorm, gamma and beta once); one vector pass per row costs pass
	// cycles (NeuPIMs' LayerNorm 2 add-tree + 3 scalar cycles, others 1).
	vector := func(name string, w, in int64, ln bool) {
		readRows, pass := in*rows, int64(1)
		if ln {
			readRows, pass = readRows+2, 5
		}
		add(name, seq.Vector(dev.RowBytes(readRows, w), dev.RowBytes(rows, w), rows*pass))
	}
	if proj {
		gemm("layer0.attn.proj", E/tp, E)
		vector("layer0.attn.res", E, 2, false)
		vector("layer0.ffn.ln", E, 1, true)
		gemm("layer0.ffn.fc1", E, 4*E/tp)
		vector("layer0.ffn.gelu", 4*E/tp, 1, false)
		gemm("layer0.ffn.fc2", 4*E/tp, E)
		vector("layer0.ffn.res", E, 2, false)
	}
	if qkv {
		vector("layer0.attn.ln", E, 1, true)
		gemm("layer0.attn.QKVgen", E, 3*E/tp)
	}
	return ops, seq.Mem, seq.Backlog
}

// Device is the hardware of the run for the shared op timing.
func (r *Run) Device() moe.Device {
	return moe.Device{Array: r.Array, HBM: r.HBM, Dtype: r.Dtype}
}

// pimProgram returns the two PIM ops (logit+softmax, attend) of a sub-batch
// and the mean channel's cycles and the number of PIM read results, from
// the shared moe.PIMCost and moe.PIMBatch.
func (r *Run) pimProgram(reqs []moe.Request) (ops []Op, meanCycles int64, readres int64) {
	if len(reqs) == 0 {
		return nil, 0, 0
	}
	h := &r.HBM
	heads := r.Heads / r.TP
	dk := r.DModel / r.Heads
	cost := h.PIMCosts(heads, dk, dk, r.Dtype)
	b := moe.NewPIMBatch(make([]int64, h.Channels), make([]int64, h.Channels))
	for _, q := range reqs {
		b.Add(&cost, int64(q.Channel), int64(q.SeqLen))
	}
	lc, ac, lm, am := b.Cycles(h)
	ops = []Op{
		{Name: "layer0.attn.NeuPIMSLogitSoftmax", PIM: true, End: lc, Writes: b.LogitWrites, Compute: int64(len(reqs)) * heads * 5},
		{Name: "layer0.attn.NeuPIMSAttend", PIM: true, End: ac, Writes: b.AttendWrites},
	}
	return ops, lm + am, b.ReadRes
}

func ceil(a, b int64) int64 { return (a + b - 1) / b }

// split divides the requests into NeuPIMs' two sub-batches: in each channel
// the first half of its requests (in trace order) go to the first, the rest
// to the second; an odd count rounds up and down in turn over the channels.
func (r *Run) split() (sb1, sb2 []moe.Request) {
	per := make([][]moe.Request, r.HBM.Channels)
	for _, q := range r.Requests {
		per[q.Channel] = append(per[q.Channel], q)
	}
	up := true
	for _, q := range per {
		n := len(q) / 2
		if len(q)%2 == 1 {
			if up {
				n = (len(q) + 1) / 2
			}
			up = !up
		}
		sb1 = append(sb1, q[:n]...)
		sb2 = append(sb2, q[n:]...)
	}
	return sb1, sb2
}

// Simulate runs the decode iteration stage by stage. Sub-batch off: A (the
// array's LayerNorm + QKV generation), B (attention on PIM), E (projection,
// residuals, LayerNorm, FFN). Sub-batch on, with the halves 1 and 2:
// A QKV#1; B QKV#2 ∥ MHA#1; C proj/FFN#1 + QKV#1 ∥ MHA#2; D proj/FFN#2 +
// QKV#2 ∥ MHA#1; E proj/FFN#1 ∥ MHA#2; F proj/FFN#2. A stage lasts as long as
// the longer of its two programs; when both run, the PIM program slows by
// moe.PIMSlowdown and the array's memory-bound time by moe.PIMStretched while
// the PIM program lasts. The array's write backlog passes to the next stage,
// less what the bus drains while the array idles.
func (r *Run) Simulate() *Result {
	type plan struct {
		name      string
		sa        []moe.Request
		pim       []moe.Request
		proj, qkv bool
	}
	var plans []plan
	if !r.SubBatch {
		all := r.Requests
		plans = []plan{{"A", all, nil, false, true}, {"B", nil, all, false, false}, {"E", all, nil, true, false}}
	} else {
		s1, s2 := r.split()
		plans = []plan{
			{"A", s1, nil, false, true}, {"B", s2, s1, false, true}, {"C", s1, s2, true, true},
			{"D", s2, s1, true, true}, {"E", s1, s2, true, false}, {"F", s2, nil, true, false},
		}
	}
	res := &Result{}
	now := int64(0)
	// carry is the write backlog the array's last op left at the end of the
	// previous stage [B]; the bus drains it at its peak while the array idles
	var carry float64
	peak := r.HBM.PeakBytesPerCycle()
	for _, p := range plans {
		pim, pimMean, readres := r.pimProgram(p.pim)
		var left float64
		var pimT float64
		for i := range pim {
			pimT += float64(pim[i].End)
		}
		var sa []Op
		if len(pim) > 0 && len(p.sa) > 0 {
			// the PIM program slows by the array traffic that overlaps it,
			// and the array's memory-bound time while the PIM works
			_, saMem, _ := r.saProgram(int64(len(p.sa)), p.proj, p.qkv, 0, carry)
			factor := moe.PIMSlowdown(saMem, pimT)
			for i := range pim {
				pim[i].End = int64(math.Round(float64(pim[i].End) * factor))
			}
			pimMean = int64(math.Round(float64(pimMean) * factor))
			pimT *= factor
			sa, _, left = r.saProgram(int64(len(p.sa)), p.proj, p.qkv, pimT, carry)
		} else {
			sa, _, left = r.saProgram(int64(len(p.sa)), p.proj, p.qkv, 0, carry)
		}
		// lay the ops end to end from the stage's start
		t := now
		for i := range sa {
			d := sa[i].End
			sa[i].Start, sa[i].End = t, t+d
			t += d
		}
		saEnd := t
		t = now
		for i := range pim {
			d := pim[i].End
			pim[i].Start, pim[i].End = t, t+d
			t += d
		}
		end := max(saEnd, t)
		carry = max(0, left-float64(end-saEnd)*peak)
		var bytes float64
		for _, o := range sa {
			bytes += float64(o.Reads + o.Writes)
		}
		for _, o := range pim {
			bytes += float64(o.Writes)
		}
		bytes += float64(readres * r.HBM.ReqBytes)
		st := Stage{Name: p.name, Cycles: end - now, PIMCycles: pimMean, SA: sa, PIMs: pim}
		if st.Cycles > 0 {
			st.MemBWUtil = 100 * bytes / (peak * float64(st.Cycles))
		}
		res.Stages = append(res.Stages, st)
		now = end
	}
	return res
}
