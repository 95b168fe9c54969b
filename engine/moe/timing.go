package moe

import "math"

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

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// hbmCycles is the time to move bytes over all HBM channels:
// ceil(bytes / (hbm_channels · hbm_bytes_per_cycle)) [cycles].
func (c *config) hbmCycles(bytes int64) int64 {
	bw := float64(c.channels) * c.bytesPerCycleCh
	return int64(math.Ceil(float64(bytes) / bw))
}

// issueCycles is the spacing between two tile instructions on the arrays:
// max(1, array_height / arrays) [cycles]. One H×W weight tile takes H token
// rows; arrays working side by side issue a new tile every H/arrays cycles.
func (c *config) issueCycles() int64 { return max(1, c.H/c.arrays) }

// streamCycles is the time to stream bytes from HBM at the sustained
// bandwidth StreamEfficiency · hbm_channels · hbm_bytes_per_cycle [cycles]
// (hbm.go: the efficiency NeuPIMs' DRAM model reaches on long streams).
func (c *config) streamCycles(bytes int64) int64 {
	bw := StreamEfficiency * float64(c.channels) * c.bytesPerCycleCh
	return int64(math.Ceil(float64(bytes) / bw))
}

// gemm adds the GEMM [T,K]×[K,N] (T tokens, weights K×N) to t, with the
// weight-stationary timing validated against NeuPIMs (hbm.go GEMMCycles;
// docs/fidelity.md). With tt = ceil(T/H), kt = ceil(K/H), nt = ceil(N/W),
// issue i = H/arrays and row = kt·(H + i·(nt−1)):
//
//	cycles = max(stream(first), row) + (tt−1)·row + (H + W − 2 + max(i, 4))
//	first  = (K·N + min(T,H)·K)·dtype        weights + first token tile [B]
//
// All loads are issued at once and a tile instruction waits for its
// operands, so the first token tile runs at the pace the weights stream in;
// the later token tiles find the weights on chip. A tile with fewer than H
// tokens costs as much as a full one (why tiny experts are inefficient).
// Over a layer every byte is moved, so the op takes at least
// stream(weights + inputs + outputs).
func (c *config) gemm(t *tally, T, K, N int64) {
	if T <= 0 || K <= 0 || N <= 0 {
		return
	}
	i := c.issueCycles()
	tt, kt, nt := ceilDiv(T, c.H), ceilDiv(K, c.H), ceilDiv(N, c.W)
	row := kt * (c.H + i*(nt-1))
	drain := c.H + c.W - 2 + max(i, 4)
	first := (K*N + min(T, c.H)*K) * c.dtype
	bytes := (K*N + T*K + T*N) * c.dtype
	cycles := max(c.streamCycles(first), row) + (tt-1)*row + drain
	t.cycles += max(cycles, c.streamCycles(bytes))
	t.compute += tt*row + drain
	t.macs += T * K * N
	t.flops += 2 * T * K * N
	t.hbmBytes += bytes
}

// vector adds an element-wise op over n elements reading in and writing out
// elements, costing cost cycles per pass of the vector units. Such ops are
// memory-bound (hbm.go VectorCycles: in NeuPIMs a pass over a row is a few
// cycles, its load hundreds) and stream at the bus peak; an op pays
// OwnWriteShare of its writes and leaves the rest to the next op, so over a
// layer every write is paid once and each op is charged its own:
//
//	cycles = max(ceil(n / (vector_units·vector_width))·cost,
//	             (in + out)·dtype / (hbm_channels·hbm_bytes_per_cycle))
func (c *config) vector(t *tally, n, in, out, cost int64) {
	passes := ceilDiv(n, c.vUnits*c.vWidth)
	bytes := (in + out) * c.dtype
	t.cycles += max(passes*cost, c.hbmCycles(bytes))
	t.flops += n * cost
	t.hbmBytes += bytes
}

// Vector-op costs per pass [cycles], from NeuPIMs' vector-unit latencies
// (add/mul/exp = 1 each): LayerNorm = mean, variance, scale ≈ 5; softmax =
// max, exp, sum, divide ≈ 4; GELU and add 1.
const (
	costNorm    = 5
	costSoftmax = 4
	costAct     = 1
	costAdd     = 1
)

// PIM geometry of the attention model, from NeuPIMs' memory config
// (dram_page_size 1024 B of 2-byte values, dram_banks_per_ch 32,
// pim_comp_coverage 16) and its .ini (hbm.go DefaultHBM).
const (
	pimPage  = 512 // values in one DRAM page (one GWRITE, one attend chunk)
	pimBanks = 32  // banks per channel: keys (or value rows) one GEMV tile covers
	pimCov   = 16  // values one COMP command covers
)

// pimHBM is the DRAM timing the PIM costs derive from: NeuPIMs'
// HBM2_8Gb_x128_dualpim.ini (hbm.go DefaultHBM).
var pimHBM = DefaultHBM()

// pimRefresh is the share of time a channel's PIM unit can work,
// 1 − tRFC·ranks/tREFI = 1 − 260·2/3900 ≈ 0.867 (hbm.go RefreshFactor).
var pimRefresh = pimHBM.RefreshFactor()

// pimTile is one PIM GEMV tile with readres COMPS_READRES commands of comps
// COMP commands each [cycles]: the fixed part gemv (pim_gemv_cycles, default
// 157 = banks + tRP + (bank_groups−1)·tFAW + ranks + tRCDRD + tRTP =
// 32 + 14 + 90 + 2 + 14 + 5 for the shipped .ini; hbm.go GemvTileCycles) plus
// (readres−1)·tCCD·(max(comps,6)+1) for the later COMPS_READRES (tCCD = 2).
// A logit tile of GPT-3's 4 heads of 128 per page costs 157 + 3·2·9 = 211;
// an attend tile (one head, 32 COMPs) 157.
func (c *config) pimTile(readres, comps int64) int64 {
	ccd := max(pimHBM.BurstCycles(), pimHBM.TCCDS)
	return c.gemv + max(0, readres-1)*ccd*(max(comps, 6)+1)
}

// attention adds decode attention for every request of the batch.
//
// With PIM (NeuPIMs NeuPIMSLogitSoftmax + NeuPIMSAttend, the mechanism
// validated in docs/fidelity.md), request r with KV length s sits in one
// channel; per request, with heads = n_heads/tp on this device, q_width =
// heads·qk_dim, a page of 512 values, 32 banks and 16 values per COMP:
//
//	logits = Σ over the ceil(q_width/512) query pages c:
//	         gwrite + ceil(s/32)·tile(heads in c, ceil(qk_dim/16))
//	attend = heads · Σ over the ceil(s/512) score chunks c:
//	         gwrite + ceil(v_dim/32)·tile(1, ceil(len_c/16))      [cycles]
//
// (gwrite = pim_gwrite_cycles, default 124 = tRP + tRCDRD + (tCCD_S +
// tCCD_L)·32 = 14 + 14 + 3·32; tile = pimTile). qk_dim and v_dim are the
// per-head score and value widths of attnShape (head_dim for grouped-query
// attention). Channels work in parallel, so the stage takes the busiest
// channel's sum over the refresh factor pimRefresh (a PIM GEMV needs both
// ranks; one of them refreshes tRFC every tREFI/ranks), plus the softmax
// on the NPU vector units over heads·(s + 1 with attention sinks) scores.
//
// Without PIM the NPU streams the KV cache from HBM: bytes = Σ s·kv_width
// ·dtype_bytes (kv_width = the cached elements per token on this device,
// 2·n_kv_heads·head_dim/tp for grouped-query attention), as a memory-bound
// GEMV of Σ s·heads·(qk_dim + v_dim) MACs.
func (c *config) attention(t *tally, chanLoad []int64) {
	heads := ceilDiv(c.nHeads, c.tp)
	kvHeads := ceilDiv(c.nKV, c.tp)
	qkDim, vDim, kvWidth := c.attnShape(kvHeads)
	qWidth := heads * qkDim
	var scores, kvBytes, macs int64
	for i := range chanLoad {
		chanLoad[i] = 0
	}
	// logit tiles per key tile: one COMPS_READRES per head of the query page
	pages := ceilDiv(qWidth, pimPage)
	perPage := ceilDiv(pimPage, qkDim)
	lastHeads := perPage
	if qWidth%pimPage != 0 {
		lastHeads = ceilDiv(qWidth%pimPage, qkDim)
	}
	qComps := ceilDiv(qkDim, pimCov)
	logitBase := pages * c.gwrite
	perKeyTile := (pages-1)*c.pimTile(perPage, qComps) + c.pimTile(lastHeads, qComps)
	// an attend tile has one COMPS_READRES, so it costs the fixed part
	// whatever the chunk's length
	perChunk := heads * (c.gwrite + ceilDiv(vDim, pimBanks)*c.pimTile(1, 1))
	ch, row := int64(0), 0
	for r := int64(0); r < c.batch; r++ {
		s := c.seqLen
		if len(c.seqTrace) > 0 {
			q := c.seqTrace[row]
			if row++; row == len(c.seqTrace) {
				row = 0
			}
			s, ch = int64(q.SeqLen), int64(q.Channel)
			if ch >= c.channels {
				ch %= c.channels
			}
		} else if r > 0 {
			if ch++; ch == c.channels {
				ch = 0
			}
		}
		scores += heads * (s + b2i(c.sinks))
		kvBytes += s * kvWidth * c.dtype
		macs += s * heads * (qkDim + vDim)
		if c.pim {
			chanLoad[ch] += logitBase + ceilDiv(s, pimBanks)*perKeyTile + ceilDiv(s, pimPage)*perChunk
		}
	}
	t.flops += 2 * macs
	if c.pim {
		busiest := int64(0)
		for _, l := range chanLoad {
			busiest = max(busiest, l)
		}
		t.cycles += int64(math.Ceil(float64(busiest) / pimRefresh))
		t.pimBytes += kvBytes
		c.vector(t, scores, scores, scores, costSoftmax)
		return
	}
	// NPU: GEMV on the vector units, one MAC per lane per cycle.
	compute := ceilDiv(macs, c.vUnits*c.vWidth)
	t.cycles += max(compute, c.hbmCycles(kvBytes))
	t.hbmBytes += kvBytes
	c.vector(t, scores, scores, scores, costSoftmax)
}

// linkBytesPerCycle is the host link's bandwidth in bytes per core cycle:
// link_gbps·1e9 / (clock_mhz·1e6).
func (c *config) linkBytesPerCycle() float64 { return c.linkGBps * 1e3 / c.clockMHz }

// linkCycles is the time of one expert load: ceil(bytes / link bytes per
// cycle) + link_latency_cycles [cycles].
func (c *config) linkCycles(bytes int64) int64 {
	return int64(math.Ceil(float64(bytes)/c.linkBytesPerCycle())) + c.linkLatency
}
