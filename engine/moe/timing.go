package moe

import (
	"math"
	"math/bits"
)

// Timing model of one decode iteration on one device (one tensor-parallel
// shard). Times are core cycles; sizes are elements unless named bytes.
//
// Sources: the weight-stationary GEMM issue timing, double-buffered weight
// loads, vector-unit passes and PIM command costs follow NeuPIMs
// (casys-kaist/NeuPIMs: SystolicWS, NeuPIMSAttend/LogitSoftmax, the PIM
// scheduler's command estimates); the host-link load follows the NeuPIMs MoE
// fork (bytes / bandwidth + a fixed latency per expert).

// tally accumulates the work of a sequence of ops.
type tally struct {
	cycles   int64 // wall cycles of the ops, run one after another
	macs     int64 // multiply-accumulates on the systolic arrays
	flops    int64 // all floating-point operations (2 per MAC, 1 per vector element-op)
	hbmBytes int64 // bytes moved between HBM and the NPU
	pimBytes int64 // KV-cache bytes read inside HBM by the PIM units
	compute  int64 // array cycles if memory were free (for utilisation)
}

// add adds n times the work of u to t.
func (t *tally) add(u *tally, n int64) {
	t.cycles += n * u.cycles
	t.macs += n * u.macs
	t.flops += n * u.flops
	t.hbmBytes += n * u.hbmBytes
	t.pimBytes += n * u.pimBytes
	t.compute += n * u.compute
}

// ceilDiv is ceil(a/b) for a >= 0, b > 0. Tile sizes, pages and banks are
// mostly powers of two: those take a shift instead of a division.
func ceilDiv(a, b int64) int64 {
	if b > 0 && b&(b-1) == 0 && a >= 0 {
		return (a + b - 1) >> uint(bits.TrailingZeros64(uint64(b)))
	}
	return (a + b - 1) / b
}

// hbmCycles is the time to move bytes over all HBM channels:
// ceil(bytes / (hbm_channels · hbm_bytes_per_cycle)) [cycles].
func (c *config) hbmCycles(bytes int64) int64 {
	return int64(math.Ceil(float64(bytes) / c.dev.HBM.PeakBytesPerCycle()))
}

// issueCycles is the spacing between two tile instructions on the arrays:
// ceil(array_height / arrays) [cycles], at least 1. One H×W weight tile
// takes H token rows; arrays working side by side issue a new tile every
// H/arrays cycles, in whole cycles, so an array count that does not divide
// H is timed as the next smaller one that gives the same spacing (rounding
// down credited 65 arrays with the speed of 128). (NeuPIMs issues
// core_width/8 cycles apart; with its 128×128 core and 8 arrays both give
// 16.)
func (c *config) issueCycles() int64 { return max(1, ceilDiv(c.H, c.arrays)) }

// device is the hardware of the point for the shared op timing
// (program.go): the array H×W issuing every issueCycles, and NeuPIMs' HBM2
// PIM (DefaultHBM: 64 B requests, the .ini's DRAM and PIM timing) with
// hbm_channels channels of hbm_bytes_per_cycle each and the GWRITE and GEMV
// tile costs pim_gwrite_cycles and pim_gemv_cycles.
func (c *config) device() Device {
	h := DefaultHBM()
	h.Channels = c.channels
	h.ChannelBytesPerCycle = c.bytesPerCycleCh
	h.Gwrite, h.GemvFixed = c.gwrite, c.gemv
	if c.dramMHz > 0 {
		h.Scale = c.clockMHz / c.dramMHz // core cycles per DRAM cycle
	}
	return Device{Array: Systolic{H: c.H, W: c.W, Issue: c.issueCycles()}, HBM: h, Dtype: c.dtype}
}

// gemm adds the GEMM [T,K]×[K,N] (T tokens, weights K×N) to t, timed by
// the shared Seq.GEMM after the ops before it (program.go; hbm.go
// GEMMCycles, validated against NeuPIMs in docs/fidelity.md). With
// tt = ceil(T/H), kt = ceil(K/H), nt = ceil(N/W), issue i = H/arrays and
// row = kt·(H + i·(nt−1)):
//
//	cycles = max((backlog + first)/stream_bw, row) + (tt−1)·row + (H + W − 2 + max(i, 4))
//	first  = (K·N + min(T,H)·K)·dtype + req·(kt·nt + kt)      [B]
//
// All loads are issued at once and a tile instruction waits for its
// operands, so the first token tile runs at the pace the weights stream
// in; the later token tiles find the weights on chip. A tile with fewer
// than H tokens costs as much as a full one (why tiny experts are
// inefficient). hbm_bytes counts the true output, not NeuPIMs' transposed
// store.
func (c *config) gemm(t *tally, T, K, N int64) {
	o := c.seq.GEMM(T, K, N, false)
	t.cycles += o.Cycles
	t.compute += o.Compute
	t.macs += T * K * N
	t.flops += 2 * T * K * N
	t.hbmBytes += o.Reads + o.Writes
}

// vector adds an element-wise op over n elements reading rIn rows of wIn
// values and writing rOut rows of wOut values, cost cycles per element
// pass of the vector units, timed by the shared Seq.Vector (program.go;
// hbm.go VectorCycles):
//
//	reads   = rIn·(wIn·dtype + req), writes = rOut·(wOut·dtype + req)   [B]
//	compute = ceil(n / (vector_units·vector_width)) + cost − 1           [cycles]
//	cycles  = max(compute, (backlog + reads + OwnWriteShare·writes)/peak_bw + read_latency)
//
// (the vector pipelines take one vector_width group a cycle each and cost
// cycles to fill). Such ops are memory-bound: they stream at the bus peak,
// pay OwnWriteShare of their writes and leave the rest to the next op.
func (c *config) vector(t *tally, n, rIn, wIn, rOut, wOut, cost int64) {
	c.vectorBytes(t, n, c.dev.RowBytes(rIn, wIn), c.dev.RowBytes(rOut, wOut), cost)
}

// vectorBytes is vector with its reads and writes given in bytes.
func (c *config) vectorBytes(t *tally, n, reads, writes, cost int64) {
	compute := ceilDiv(n, c.vUnits*c.vWidth) + cost - 1
	o := c.seq.Vector(reads, writes, compute)
	t.cycles += o.Cycles
	t.flops += n * cost
	t.hbmBytes += reads + writes
}

// layerNorm adds a LayerNorm or RMSNorm over rows rows of width w: it also
// reads its weights, two rows (gamma, beta; NeuPIMs' LayerNorm) or one
// (rmsnorm, layernorm_nobias).
func (c *config) layerNorm(t *tally, rows, w int64) {
	p := int64(2)
	if c.norm == "rmsnorm" || c.norm == "layernorm_nobias" {
		p = 1
	}
	c.vector(t, rows*w, rows+p, w, rows, w, costNorm)
}

// Vector-op costs per element pass [cycles], from NeuPIMs' vector-unit
// latencies (add/mul/exp = 1 each): LayerNorm = 2 add-tree + 3 scalar = 5;
// softmax = max, exp, sum, divide ≈ 4; GELU and add 1.
const (
	costNorm    = 5
	costSoftmax = 4
	costAct     = 1
	costAdd     = 1
)

// attnWork is the attention of the batch, apart from the write backlog the
// ops before it leave (attnStage applies that).
type attnWork struct {
	pimCycles int64 // PIM: NeuPIMSLogitSoftmax + NeuPIMSAttend [cycles]
	pimLogit  int64 // PIM: NeuPIMSLogitSoftmax alone [cycles]
	kvBytes   int64 // KV cache read [B]
	scores    int64 // attention scores (softmax elements)
	rows      int64 // softmax rows: batch·heads
	writes    int64 // PIM: NPU writes of softmax outputs and partial sums [B]
	macs      int64
}

// attention computes decode attention for every request of the batch.
//
// With PIM (NeuPIMs NeuPIMSLogitSoftmax + NeuPIMSAttend, the mechanism
// validated in docs/fidelity.md), request r with KV length s sits in one
// channel (the trace's ch_idx mod hbm_channels; without a trace, channels
// in turn), and the shared PIMCost gives its logit and attend cycles
// (hbm.go PIMCosts: with heads = n_heads/tp on this device, per-head score
// width qk_dim and value width v_dim of attnShape). Channels work in
// parallel: each op takes PIMBatch.Cycles, the busiest channel's sum over
// the refresh factor 1 − tRFC·ranks/tREFI plus a write penalty per NPU
// write of the softmax outputs (with attention sinks one more score per
// head) and partial sums; the stage is the two ops one after the other.
//
// Without PIM the NPU streams the KV cache from HBM: bytes = Σ s·kv_width
// ·dtype_bytes (kv_width = the cached elements per token on this device,
// 2·n_kv_heads·head_dim/tp for grouped-query attention), as a memory-bound
// GEMV of Σ s·heads·(qk_dim + v_dim) MACs on the vector units, then the
// softmax over heads·(s + 1 with attention sinks) scores.
//
// With sel (sub-batch mode, subbatch.go) only the requests of one sub-batch
// count; c.batch is then that sub-batch's size and sel.total the batch's.
func (c *config) attention(w *attnWork, logit, attend []int64, sel *halfSel) {
	c.attentionOver(w, logit, attend, sel, 0)
}

// attentionOver is attention in a layer whose requests attend to at most
// window tokens of their KV cache (sliding-window attention; 0: all of
// it): a request of KV length s reads min(s, window) tokens.
func (c *config) attentionOver(w *attnWork, logit, attend []int64, sel *halfSel, window int64) {
	kvLen := func(s int64) int64 {
		if window > 0 {
			return min(s, window)
		}
		return s
	}
	heads := ceilDiv(c.nHeads, c.tp)
	kvHeads := ceilDiv(c.nKV, c.tp)
	qkDim, vDim, kvWidth := c.attnShape(kvHeads)
	h := &c.dev.HBM
	cost := h.PIMCosts(heads, qkDim, vDim, c.dtype)
	b := NewPIMBatch(logit, attend)
	*w = attnWork{rows: c.batch * heads}
	if len(c.seqTrace) == 0 {
		// every request has length seq_len and request r sits in channel
		// r mod channels: channel i holds ceil((batch − i)/channels)
		// requests, so the sums close without a loop over the batch
		s := kvLen(c.seqLen)
		w.scores = c.batch * heads * (s + b2i(c.sinks))
		w.kvBytes = c.batch * s * kvWidth * c.dtype
		w.macs = c.batch * s * heads * (qkDim + vDim)
		if c.pim {
			req, rr := cost.Request(s), cost.ReadResults(s)
			all := c.batch
			if sel != nil {
				all = sel.total
			}
			full, extra := all/c.channels, all%c.channels
			for ch := int64(0); ch < min(c.channels, all); ch++ {
				n := full + b2i(ch < extra)
				if sel != nil {
					n = sel.count(ch, n)
				}
				b.Logit[ch] += n * req.Logit
				b.Attend[ch] += n * req.Attend
			}
			b.LogitWrites += c.batch * req.LogitWrites
			b.AttendWrites += c.batch * req.AttendWrites
			b.ReadRes += c.batch * rr
		}
	}
	ch, row := int64(0), 0
	lastSeq, lastReq, lastRR := int64(-1), PIMRequest{}, int64(0)
	n := c.batch
	if sel != nil {
		n = sel.total
	}
	for r := int64(0); r < n && len(c.seqTrace) > 0; r++ {
		q := c.seqTrace[row]
		if row++; row == len(c.seqTrace) {
			row = 0
		}
		s := kvLen(int64(q.SeqLen))
		ch = int64(q.Channel)
		if ch >= c.channels {
			ch %= c.channels
		}
		if sel != nil && !sel.take(ch) {
			continue
		}
		w.scores += heads * (s + b2i(c.sinks))
		w.kvBytes += s * kvWidth * c.dtype
		w.macs += s * heads * (qkDim + vDim)
		if c.pim {
			if s != lastSeq { // requests of one length cost the same
				lastSeq, lastReq, lastRR = s, cost.Request(s), cost.ReadResults(s)
			}
			b.AddRequest(ch, lastReq, lastRR)
		}
	}
	if c.pim {
		b.LogitWrites += b2i(c.sinks) * c.batch * heads * c.dtype
		l, a, _, _ := b.Cycles(h)
		w.pimCycles, w.pimLogit = l+a, l
		w.writes = b.LogitWrites + b.AttendWrites
	}
}

// attnStage adds the attention w to t after the ops before it. On PIM the
// array idles and the bus drains their write backlog (Seq.Idle); on the
// NPU the KV stream queues behind it:
// max(ceil(macs/(vector_units·vector_width)), (backlog + kv_bytes)/peak_bw)
// then the softmax (a vector op) [cycles].
func (c *config) attnStage(t *tally, w *attnWork) {
	t.flops += 2 * w.macs
	if c.pim {
		t.cycles += w.pimCycles
		t.pimBytes += w.kvBytes
		t.hbmBytes += w.writes
		c.seq.Idle(w.pimCycles)
		return
	}
	compute := ceilDiv(w.macs, c.vUnits*c.vWidth)
	cyc := max(compute, c.hbmCycles(int64(c.seq.Backlog)+w.kvBytes))
	c.seq.Backlog = 0
	t.cycles += cyc
	t.hbmBytes += w.kvBytes
	sm := w.scores*c.dtype + w.rows*c.dev.HBM.ReqBytes
	c.vectorBytes(t, w.scores, sm, sm, costSoftmax)
}

// linkBytesPerCycle is the host link's bandwidth in bytes per core cycle:
// link_gbps·1e9 / (clock_mhz·1e6).
func (c *config) linkBytesPerCycle() float64 { return c.linkGBps * 1e3 / c.clockMHz }

// linkCycles is the time of one expert load: ceil(bytes / link bytes per
// cycle) + link_latency_cycles [cycles].
func (c *config) linkCycles(bytes int64) int64 {
	return int64(math.Ceil(float64(bytes)/c.linkBytesPerCycle())) + c.linkLatency
}
