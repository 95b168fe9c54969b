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

// pimPhase is one PIM op of the program beside an array program, as the
// GWRITE collisions need it (moe.GwriteHit, moe.GwriteStall).
type pimPhase struct {
	from, to float64 // cycles since the stage's start
	elems    float64 // bytes its stores take from the address counter, spread evenly over [from, to)
	col      int64   // column of its GWRITE address (moe.HBM.GwriteSpan)
	window   float64 // moe.HBM.GwriteBlockCycles of the op
}

// counterAt is what the PIM ops' stores have taken from the address
// counter by t [B].
func counterAt(pim []pimPhase, t float64) float64 {
	var c float64
	for _, p := range pim {
		if t >= p.to {
			c += p.elems
		} else if t > p.from {
			c += p.elems * (t - p.from) / (p.to - p.from)
		}
	}
	return c
}

// gwriteDelay is the extra wait of an array op whose loads (reads bytes,
// readElems from the counter) or stores (writes, writeElems) reach a GWRITE
// address of a PIM op running beside it (moe.GwriteHit, moe.GwriteStall):
// its loads enter the controller at the acceptance rate from the op's
// start t0, its stores once its loads have streamed in at the bus peak
// behind the backlog. It returns the earliest end of the op, in cycles
// from t0, that the waiting request allows, and 0 when none waits:
//
//	load hit at fraction f:  f·reads/accept + stall + (1−f)·writes/accept
//	store hit at fraction f: (backlog + reads)/peak + writes/accept + stall
//
// (the rows after the waiting one still have their stores to make; a store
// that waits holds its channel's later stores behind it). counter is the
// counter position at t0 [B, since the run began].
//
// A GEMM's loads enter the same way, and its output cannot be complete
// before the waiting operand has arrived and the last tile instruction has
// drained; its few stores are made at its end (cycles), so a store that
// waits delays the end by the wait:
//
//	load hit at fraction f:  f·reads/accept + stall + drain
//	store hit:               cycles + stall
func (r *Run) gwriteDelay(pim []pimPhase, counter, t0, backlog float64, o moe.OpCost, readElems, writeElems int64, vector bool) float64 {
	h := &r.HBM
	period := moe.AddressPeriod(r.DModel, r.TP)
	if len(pim) == 0 || period <= 0 {
		return 0
	}
	accept, peak := h.AcceptBytesPerCycle(), h.PeakBytesPerCycle()
	rd, wr := float64(o.Reads), float64(o.Writes)
	var end float64
	for _, p := range pim {
		if f, ok := h.GwriteHit(counter, counter+float64(readElems), period, p.col); ok {
			t := f * rd / accept
			if st := moe.GwriteStall(t0+t, p.from, p.to, p.window); st > 0 {
				if vector {
					end = max(end, t+st+(1-f)*wr/accept)
				} else {
					end = max(end, t+st+float64(r.Array.DrainCycles()))
				}
			}
		}
		w0 := counter + float64(readElems)
		if _, ok := h.GwriteHit(w0, w0+float64(writeElems), period, p.col); ok {
			t := (backlog + rd) / peak
			if !vector {
				t = float64(o.Cycles)
			}
			if st := moe.GwriteStall(t0+t, p.from, p.to, p.window); st > 0 {
				if vector {
					end = max(end, t+wr/accept+st)
				} else {
					end = max(end, t+st)
				}
			}
		}
	}
	return end
}

// saProgram lists the array's ops of one stage for a sub-batch of rows
// tokens, in NeuPIMs' order (StageProgram): projection, attention residual,
// LayerNorm, FC1, GELU, FC2, FFN residual when proj is set; LayerNorm and QKV
// generation when qkv is set. Each op's time follows the op before it: the
// write backlog passes from op to op, and the memory-bound part of an op
// that runs while the stage's PIM program is still working (until pimEnd,
// cycles from the stage's start; 0 when none) is stretched by
// moe.PIMStretched. An op whose loads or stores reach the address of a
// GWRITE the PIM program has queued waits for it (gwriteDelay); counter is
// the address counter at the stage's start [B] and pim the PIM program
// (nil when none). saMem is the program's memory-bound cycles before
// stretching and elems what its ops took from the counter [B].
func (r *Run) saProgram(rows int64, proj, qkv bool, pimEnd, carry, counter float64, pim []pimPhase) (ops []Op, saMem, backlog, elems float64) {
	if rows == 0 {
		return nil, 0, carry, 0
	}
	E, tp := r.DModel, r.TP
	dev := r.Device()
	seq := moe.Seq{Dev: dev, Backlog: carry, PIMEnd: pimEnd}
	if len(pim) == 2 { // LogitSoftmax, then Attend
		seq.AttendFrom = pim[1].from
	}
	// run times one op: the op's timing from seq, then the wait for a
	// GWRITE collision, which delays the ops after it too
	run := func(name string, readElems, writeElems int64, vector bool, op func() moe.OpCost) {
		t0, queued := seq.T, seq.Backlog
		c := counter + elems + counterAt(pim, t0)
		o := op()
		if end := r.gwriteDelay(pim, c, t0, queued, o, readElems, writeElems, vector); end > 0 {
			if d := int64(math.Ceil(end)) + r.HBM.ReadLatency() - o.Cycles; d > 0 {
				o.Cycles += d
				seq.T += float64(d)
			}
		}
		elems += float64(readElems + writeElems)
		ops = append(ops, Op{Name: name, Compute: o.Compute, WeightLoad: o.WeightLoad, Reads: o.Reads,
			Writes: o.Writes, End: o.Cycles, memBytes: o.MemBytes})
	}
	gemm := func(name string, K, N int64) {
		re, we := r.Array.GEMMElemBytes(rows, K, N, r.Dtype, true)
		run(name, re, we, false, func() moe.OpCost { return seq.GEMM(rows, K, N, true) })
	}
	// vector op over rows of width w, reading in inputs per row (and, for a
	// LayerNorm, gamma and beta once); one vector pass per row costs pass
	// cycles (NeuPIMs' LayerNorm 2 add-tree + 3 scalar cycles, others 1).
	vector := func(name string, w, in int64, ln bool) {
		readRows, pass := in*rows, int64(1)
		if ln {
			readRows, pass = readRows+2, 5
		}
		run(name, readRows*w*r.Dtype, rows*w*r.Dtype, true, func() moe.OpCost {
			return seq.Vector(dev.RowBytes(readRows, w), dev.RowBytes(rows, w), rows*pass)
		})
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
	return ops, seq.Mem, seq.Backlog, elems
}

// Device is the hardware of the run for the shared op timing.
func (r *Run) Device() moe.Device {
	return moe.Device{Array: r.Array, HBM: r.HBM, Dtype: r.Dtype}
}

// pimProgram returns the two PIM ops (logit+softmax, attend) of a sub-batch
// and the mean channel's cycles and the number of PIM read results, from
// the shared moe.PIMCost and moe.PIMBatch, and for each op what its stores
// take from the address counter and its GWRITE block window (pimPhase;
// from and to are left for the caller).
func (r *Run) pimProgram(reqs []moe.Request) (ops []Op, meanCycles int64, readres int64, phases []pimPhase) {
	if len(reqs) == 0 {
		return nil, 0, 0, nil
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
	// counter bytes of the stores: a softmax store per head of seq values;
	// a partial-sum store, for every value tile of every head, of
	// banks·VTiles values (moe.PIMCost.Request without the extra request
	// of each store instruction)
	var logitElems, attendElems int64
	for _, q := range reqs {
		logitElems += heads * int64(q.SeqLen) * r.Dtype
		if int64(q.SeqLen) > cost.Page {
			attendElems += heads * cost.VTiles * cost.Banks * cost.VTiles * r.Dtype
		}
	}
	phases = []pimPhase{
		{elems: float64(logitElems), col: 0, window: h.GwriteBlockCycles(cost.LogitTransactionCycles(h))},
		{elems: float64(attendElems), col: h.AttendGwriteColumn(), window: h.GwriteBlockCycles(cost.AttendTransactionCycles(h))},
	}
	return ops, lm + am, b.ReadRes, phases
}

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
// the PIM program lasts, and an array op whose addresses reach a GWRITE the
// PIM program has queued waits for it (gwriteDelay; NeuPIMs' address
// counter runs on over all stages). The array's write backlog passes to
// the next stage, less what the bus drains while the array idles.
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
	// counter is NeuPIMs' address counter, in bytes since the run began
	// (moe.AddressPeriod): the array's ops and the PIM ops' stores take
	// from it in the order they run
	var counter float64
	peak := r.HBM.PeakBytesPerCycle()
	for _, p := range plans {
		pim, pimMean, readres, phases := r.pimProgram(p.pim)
		var left, elems float64
		var pimT float64
		for i := range pim {
			pimT += float64(pim[i].End)
		}
		var sa []Op
		if len(pim) > 0 && len(p.sa) > 0 {
			// the PIM program slows by the array traffic that overlaps it,
			// and the array's memory-bound time while the PIM works
			_, saMem, _, _ := r.saProgram(int64(len(p.sa)), p.proj, p.qkv, 0, carry, counter, nil)
			factor := moe.PIMSlowdown(saMem, pimT)
			for i := range pim {
				pim[i].End = int64(math.Round(float64(pim[i].End) * factor))
			}
			pimMean = int64(math.Round(float64(pimMean) * factor))
			pimT *= factor
			// the PIM ops run one after the other from the stage's start,
			// their transactions slowed like the ops
			var t float64
			for i := range phases {
				phases[i].from, phases[i].to = t, t+float64(pim[i].End)
				phases[i].window *= factor
				t = phases[i].to
			}
			sa, _, left, elems = r.saProgram(int64(len(p.sa)), p.proj, p.qkv, pimT, carry, counter, phases)
		} else {
			sa, _, left, elems = r.saProgram(int64(len(p.sa)), p.proj, p.qkv, 0, carry, counter, nil)
		}
		counter += elems
		for _, ph := range phases {
			counter += ph.elems
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
