package moe

import "math"

// Cycle mechanisms of a weight-stationary NPU beside HBM-PIM, as closed
// forms. They were read from the public source of NeuPIMs (casys-kaist/
// NeuPIMs: NeuPIMSystolicWS, MatMul, LayerNorm/Add/Gelu tiling, the
// NeuPIMSLogitSoftmax/NeuPIMSAttend command streams) and of its DRAM model
// (NewtonSim, a DRAMsim3 derivative: NeuPIMSController, ChannelState,
// Timing, Refresh); no code is shared with them. Each formula is stated on
// the function that applies it, with units. The HBM fields count DRAM
// cycles; the formulas answer in core cycles through HBM.Scale (the core
// and DRAM clocks are equal in every shipped NeuPIMs config, Scale 1);
// sizes are elements unless named bytes.
//
// Five numbers are calibrated rather than derived, each a property of the
// DRAM controller's queueing that no closed form of the .ini captures; they
// are global constants, applied by formula to every op and configuration,
// never values per reference run: StreamEfficiency, OwnWriteShare,
// SAInterference, PIMInterference and VectorAttendInterference. They were
// fitted on the 77 ops of the four reference runs (docs/fidelity.md); the
// fit is flat around them (StreamEfficiency 0.87 to 0.89 leave every op
// within 20 %, OwnWriteShare 0.45 one op at 21 %, SAInterference 0.25
// none). The GWRITE collisions of sub-batch interleaving (GwriteStall) add
// no constant of their own: their wait follows from the controller's queue
// sizes and the PIM op's timing.

// HBM is the DRAM (and PIM) timing the cycle model needs: the NeuPIMs memory
// JSON's channel count, request size, page size, banks and PIM coverage,
// and the DRAMsim3-style .ini's geometry and timing (cycles of the DRAM
// clock).
type HBM struct {
	Channels      int64 // channels, each with its own PIM unit
	ReqBytes      int64 // bytes per memory request (dram_req_size)
	PageBytes     int64 // DRAM row (page) size in bytes (dram_page_size)
	BanksPerCh    int64 // banks per channel (dram_banks_per_ch)
	CompCoverage  int64 // values one PIM COMP command covers (pim_comp_coverage)
	BL            int64 // burst length; a request occupies BL/2 cycles of the bus
	Ranks         int64 // ranks per channel (from the .ini's geometry)
	BankGroups    int64 // bank groups per rank
	BanksPerGroup int64 // banks per bank group
	CL            int64 // read latency [cycles]
	CWL           int64 // write latency [cycles]
	TRCDRD        int64 // activate to read [cycles]
	TRP           int64 // precharge to activate [cycles]
	TRFC          int64 // refresh cycle time [cycles]
	TREFI         int64 // refresh interval of one rank [cycles]
	TFAW          int64 // four-activate window [cycles]
	TCCDS         int64 // column to column, other bank group [cycles]
	TCCDL         int64 // column to column, same bank group [cycles]
	TWTRS         int64 // write to read, other bank group [cycles]
	TRTP          int64 // read to precharge [cycles]
	TransQueue    int64 // transactions per queue of a channel's controller (trans_queue_size), its PIM queue too
	PIMCmdQueue   int64 // PIM commands a channel's PIM command queue holds

	// Overrides of derived figures: the embedded engine's parameters
	// hbm_bytes_per_cycle, pim_gwrite_cycles and pim_gemv_cycles.
	ChannelBytesPerCycle float64 // a channel's bus peak [B/cycle] when > 0; else req_bytes/burst
	Gwrite               int64   // GWRITE [cycles] when >= 0; DefaultHBM: -1, GwriteCycles' formula
	GemvFixed            int64   // fixed part of a GEMV tile [cycles] when >= 0; DefaultHBM: -1, GemvTileCycles' formula

	// Scale is core cycles per DRAM cycle (core clock / DRAM clock; 0 or
	// 1: one clock, as in NeuPIMs' shipped configs). The fields above are
	// in DRAM cycles and bytes per DRAM cycle; the methods that answer in
	// cycles or bytes per cycle answer in core cycles (core and coreBW).
	Scale float64
}

// core converts x DRAM cycles to core cycles: x·Scale, rounded.
func (h *HBM) core(x int64) int64 {
	if h.Scale == 0 || h.Scale == 1 {
		return x
	}
	return int64(math.Round(float64(x) * h.Scale))
}

// scale is core cycles per DRAM cycle (Scale, 1 when unset).
func (h *HBM) scale() float64 {
	if h.Scale == 0 {
		return 1
	}
	return h.Scale
}

// coreBW converts bytes per DRAM cycle to bytes per core cycle: bw/Scale.
func (h *HBM) coreBW(bw float64) float64 {
	if h.Scale == 0 || h.Scale == 1 {
		return bw
	}
	return bw / h.Scale
}

// DefaultHBM is the HBM2 8 Gb ×128 dual-row-buffer PIM of NeuPIMs' shipped
// memory config (32 channels, 64 B requests, 1 KiB pages, 32 banks) and its
// .ini (HBM2_8Gb_x128_dualpim.ini; tRTP is not in that file and takes
// DRAMsim3's default 5). The PIM command queue of 128 is fixed in NewtonSim
// (NeuPIMSCommandQueue), not read from the .ini.
func DefaultHBM() HBM {
	return HBM{Channels: 32, ReqBytes: 64, PageBytes: 1024, BanksPerCh: 32, CompCoverage: 16,
		BL: 4, Ranks: 2, BankGroups: 4, BanksPerGroup: 4,
		CL: 14, CWL: 4, TRCDRD: 14, TRP: 14, TRFC: 260, TREFI: 3900, TFAW: 30,
		TCCDS: 1, TCCDL: 2, TWTRS: 6, TRTP: 5, TransQueue: 32, PIMCmdQueue: 128, Gwrite: -1, GemvFixed: -1}
}

// BurstCycles is the data-bus time of one request: BL/2 [DRAM cycles]
// (double data rate).
func (h *HBM) BurstCycles() int64 { return max(1, h.BL/2) }

// PeakBytesPerCycle is the bus peak over all channels:
// channels · req_bytes / burst_cycles [B/cycle] (1024 for the shipped HBM2),
// or channels · ChannelBytesPerCycle when that is set.
func (h *HBM) PeakBytesPerCycle() float64 {
	if h.ChannelBytesPerCycle > 0 {
		return h.coreBW(float64(h.Channels) * h.ChannelBytesPerCycle)
	}
	return h.coreBW(float64(h.Channels*h.ReqBytes) / float64(h.BurstCycles()))
}

// StreamEfficiency is the fraction of the bus peak a GEMM's operand stream
// gets, start-up dip and tail included, while the loss stays below
// ReorderCapCycles, calibrated on NeuPIMs' GEMM weight loads: 0.88. In
// NeuPIMs' per-channel traffic the stream itself runs at 0.98 to 1.00 of the
// peak (the deep per-bank queues hide refresh and row changes); the rest is
// the in-order issue of tile instructions behind out-of-order bank service
// (ReorderCapCycles).
const StreamEfficiency = 0.88

// StreamBytesPerCycle is the sustained read bandwidth:
// StreamEfficiency · PeakBytesPerCycle [B/cycle].
func (h *HBM) StreamBytesPerCycle() float64 { return StreamEfficiency * h.PeakBytesPerCycle() }

// AcceptBytesPerCycle is how fast the controllers take requests into their
// command queues: one transaction per channel per cycle, channels ·
// req_bytes [B/cycle]. A write counts as done once accepted.
func (h *HBM) AcceptBytesPerCycle() float64 { return h.coreBW(float64(h.Channels * h.ReqBytes)) }

// ReadLatency is the idle round trip of one read: 2·(CL + burst) [cycles]
// (the DRAM's read delay plus the interconnect hops there and back).
func (h *HBM) ReadLatency() int64 { return h.core(2 * (h.CL + h.BurstCycles())) }

// RefreshFactor is the share of time a channel's PIM unit can work: a PIM
// GEMV opens a row in every bank of both ranks, and one rank refreshes for
// tRFC every tREFI/ranks cycles (rank-staggered refresh):
// 1 − tRFC·ranks/tREFI.
func (h *HBM) RefreshFactor() float64 {
	if h.TREFI <= 0 {
		return 1
	}
	return max(0.05, 1-float64(h.TRFC*h.Ranks)/float64(h.TREFI))
}

// GwriteCycles is one PIM GWRITE (the query or score page broadcast to the
// banks' global buffer): tRP + tRCDRD + (tCCD_S + tCCD_L)·32 [DRAM cycles] — close
// the row, open it, then NewtonSim's gwrite delay of 32 column pairs.
// Gwrite replaces it when it is not negative.
func (h *HBM) GwriteCycles() int64 {
	if h.Gwrite >= 0 {
		return h.Gwrite
	}
	return h.TRP + h.TRCDRD + (h.TCCDS+h.TCCDL)*32
}

// GemvTileCycles is one PIM GEMV tile (a P_HEADER, readres COMPS_READRES of
// comps COMP commands each) in one channel [DRAM cycles]:
//
//	banks                       PIM precharge of every bank, one command a cycle
//	+ tRP                       precharge to activate
//	+ (bank_groups−1)·tFAW + ranks   one G_ACT per bank group, tFAW apart in a rank,
//	                            the ranks interleaved
//	+ tRCDRD                    activate to the first COMPS_READRES
//	+ (readres−1)·tCCD·(max(comps,6)+1)  COMPS_READRES spacing (tCCD = max(burst, tCCD_S);
//	                            6 is NewtonSim's pipeline fill)
//	+ tRTP                      read to the next precharge
//
// GemvFixed, when not negative, replaces every term but the COMPS_READRES spacing.
func (h *HBM) GemvTileCycles(readres, comps int64) int64 {
	ccd := max(h.BurstCycles(), h.TCCDS)
	fixed := h.GemvFixed
	if fixed < 0 {
		banks := h.Ranks * h.BankGroups * h.BanksPerGroup
		fixed = banks + h.TRP + (h.BankGroups-1)*h.TFAW + h.Ranks + h.TRCDRD + h.TRTP
	}
	return fixed + max(0, readres-1)*ccd*(max(comps, 6)+1)
}

// WritePenaltyCycles is what one NPU write costs the PIM unit of its
// channel: the next COMPS_READRES waits write delay + tWTR_S =
// CWL + burst + tWTR_S [DRAM cycles].
func (h *HBM) WritePenaltyCycles() int64 { return h.CWL + h.BurstCycles() + h.TWTRS }

// Systolic is the weight-stationary array.
type Systolic struct {
	H, W  int64 // array height (token rows per tile) and width (output columns)
	Issue int64 // cycles between two tile instructions in a busy pipeline: H/arrays
}

// DrainCycles is the latency of the last tile instruction:
// H + W − 2 + max(issue, 4) [cycles] (NeuPIMSystolicWS::get_inst_compute_cycles).
func (s *Systolic) DrainCycles() int64 { return s.H + s.W - 2 + max(s.Issue, 4) }

// TileRowCycles is the compute of one token tile of a GEMM with kt K tiles
// and nt output tiles: each K tile preloads for H cycles, then issues its
// other nt−1 output tiles issue cycles apart: kt·(H + issue·(nt−1)) [cycles].
func (s *Systolic) TileRowCycles(kt, nt int64) int64 { return kt * (s.H + s.Issue*(nt-1)) }

// GEMMBytes returns what NeuPIMs moves for the GEMM [T,K]×[K,N]:
//
//	reads  = (K·N + T·K)·dtype + req·(kt·nt + tt·kt) + tt·(W·dtype + req)
//	first  = (K·N + min(T,H)·K)·dtype + req·(kt·nt + kt)
//
// with tt, kt, nt the tile counts: every weight tile and every input tile
// once (one load instruction each, and each instruction touches one request
// more than its bytes because its addresses start one element past a request
// boundary), plus a bias row per token tile; first is what the first token
// tile needs (all weights and its own inputs). writes is the output:
// T·N·dtype + req·tt·nt, or with neupimsStore NeuPIMs' transposed store,
// which keeps only the output tiles whose column index is below T:
// T·min(T,N)·dtype + req·tt·min(tt,nt).
func (s *Systolic) GEMMBytes(T, K, N, dtype, req int64, neupimsStore bool) (reads, first, writes int64) {
	tt, kt, nt := ceilDiv(T, s.H), ceilDiv(K, s.H), ceilDiv(N, s.W)
	reads = (K*N+T*K)*dtype + req*(kt*nt+tt*kt) + tt*(s.W*dtype+req)
	first = (K*N+min(T, s.H)*K)*dtype + req*(kt*nt+kt)
	if neupimsStore {
		writes = T*min(T, N)*dtype + req*tt*min(tt, nt)
	} else {
		writes = T*N*dtype + req*tt*nt
	}
	return reads, first, writes
}

// GEMMElemBytes is what the GEMM [T,K]×[K,N] takes from NeuPIMs' address
// counter (GwriteHit): GEMMBytes without the extra request of every load
// and store instruction, reads (K·N + T·K)·dtype + tt·W·dtype, writes
// T·N·dtype or, with neupimsStore, T·min(T,N)·dtype [B].
func (s *Systolic) GEMMElemBytes(T, K, N, dtype int64, neupimsStore bool) (reads, writes int64) {
	tt := ceilDiv(T, s.H)
	reads = (K*N+T*K)*dtype + tt*s.W*dtype
	if neupimsStore {
		return reads, T * min(T, N) * dtype
	}
	return reads, T * N * dtype
}

// GEMMCycles is the weight-stationary GEMM [T,K]×[K,N] with loads before
// compute [cycles], given load, the cycles the first token tile's operands
// take to arrive (GEMMLoadCycles):
//
//	first token tile: max(load, row)
//	then            : (tt−1)·row + drain
//
// with row = TileRowCycles(kt, nt). A tile waits for its operands; all loads
// are issued at once, so the first token tile runs at the pace the weights
// stream in, and the later token tiles find their weights on chip. compute
// is the array's busy time tt·row + drain. A tile of fewer than H tokens
// costs a full one.
func GEMMCycles(s *Systolic, T, K, N int64, load float64) (cycles, compute int64) {
	if T <= 0 || K <= 0 || N <= 0 {
		return 0, 0
	}
	tt, kt, nt := ceilDiv(T, s.H), ceilDiv(K, s.H), ceilDiv(N, s.W)
	row := s.TileRowCycles(kt, nt)
	return max(int64(math.Ceil(load)), row) + (tt-1)*row + s.DrainCycles(), tt*row + s.DrainCycles()
}

// BankCmdQueue is the depth of each bank's command queue in NeuPIMs'
// DRAM controller: cmd_queue_size = 128 with queue_structure = PER_BANK in
// the shipped HBM2_8Gb_x128_dualpim.ini (the front end does not read it).
const BankCmdQueue = 128

// ReorderTiles is how many weight tiles a channel's per-bank command queues
// hold: banks_per_ch · BankCmdQueue / tile_requests, with tile_requests =
// ceil(tile_bytes / (channels · req_bytes)) the requests one weight tile of
// tile_bytes puts in each channel (NeuPIMs stripes consecutive requests over
// the channels). For the shipped HBM2 and a 128×128 fp16 tile: 16 requests,
// one 1 KiB page, per channel, and 32 · 128 / 16 = 256 tiles.
func (h *HBM) ReorderTiles(tileBytes int64) float64 {
	if tileBytes <= 0 || h.Channels <= 0 || h.ReqBytes <= 0 {
		return 0
	}
	return float64(h.BanksPerCh*BankCmdQueue) / float64(ceilDiv(tileBytes, h.Channels*h.ReqBytes))
}

// ReorderCapCycles bounds what the out-of-order service of a GEMM's weight
// stream costs beyond the bus peak, given tiles = ReorderTiles, the weight
// tiles the per-bank command queues hold, and nt, the GEMM's output tiles:
//
//	tiles · tile_cycles = tiles · (H + issue·(nt−1)) / nt   [cycles]
//
// the array's time to compute them, with tile_cycles = TileRowCycles(kt, nt)
// / (kt·nt) the mean compute of one weight tile for one token tile. For
// GPT-3 7B's FC1 on the shipped NPU and HBM2: 256 tiles of 19.5 cycles,
// 4,992 cycles; for 13B's, 4,813.
//
// Mechanism (NeuPIMs core and NewtonSim controller): a GEMM's load
// instructions are issued at once; each 32 KiB weight tile is one DRAM page
// in every channel, consecutive tiles in consecutive banks. The controller
// accepts a request a cycle per channel, twice the rate the bus serves
// them, so the per-bank queues fill and the banks are served unevenly
// (round robin over banks, row hits first). The array issues its tile
// instructions in order, one a cycle, each only once all its requests are
// back, so it idles while a slow bank holds an early tile and then runs a
// burst of tiles behind it at its own pace: a start-up dip and, after the
// last read, a tail in which only the array works. The loss grows with the
// stream as the queues fill (StreamEfficiency), and the tail can hold no
// more tiles than the queues held out of order, which the array then
// computes at its own pace: this cap.
//
// Measured against NeuPIMs' sub-batch-off GEMMs (shipped and held-out runs,
// docs/fidelity.md): the loss beyond the peak is 4.5 to 5.5 thousand cycles
// for every weight stream of 26 MB or more, from GPT-3 7B to 175B, where
// the earlier cap of the queues' bus time (banks · BankCmdQueue · burst,
// 8,192 cycles) overestimated the 13B to 175B GEMMs by 2 to 4 %.
func (s *Systolic) ReorderCapCycles(tiles float64, nt int64) float64 {
	if nt <= 0 {
		return 0
	}
	return tiles * float64(s.H+s.Issue*(nt-1)) / float64(nt)
}

// GEMMLoadCycles is the time the first token tile's operands take to
// stream in [cycles]:
//
//	backlog/stream_bw + first/peak_bw + min(first/stream_bw − first/peak_bw, capCycles)
//
// first from GEMMBytes, backlog the writes earlier ops left queued in the
// controller [B], capCycles from ReorderCapCycles. Below the cap (first
// under about 36 MB for GPT-3 7B to 30B on the shipped NPU and HBM2) it is
// (backlog + first)/stream_bw.
func GEMMLoadCycles(h *HBM, firstBytes int64, backlog, capCycles float64) float64 {
	stream, peak := h.StreamBytesPerCycle(), h.PeakBytesPerCycle()
	first := float64(firstBytes)
	loss := min(first/stream-first/peak, capCycles)
	return backlog/stream + first/peak + loss
}

// OwnWriteShare is the bus time a memory-bound vector op's own output
// writes take while its reads are still streaming, per byte written and
// relative to a read byte. Calibrated on NeuPIMs' LayerNorm, GELU and
// residual adds (jointly with the other constants; outside PIM activity
// alone, 23 ops, the best value is 0.45): 0.42.
//
// Mechanism (NeuPIMs core and NewtonSim controller): a vector op issues all
// its row loads at once into the per-channel request FIFOs; a row's store is
// queued behind them as soon as the row is computed, so the writes reach the
// controller only after every read has been accepted. The controller
// acknowledges a write when it moves it from its 32-entry write buffer into
// the per-bank command queues (one transaction per cycle), long before the
// bus executes it; the bus then splits its time between the remaining reads
// and the early writes, with a read-to-write turnaround each time it
// switches. The share of writes it executes before the last read returns,
// and the cost of the turnarounds, are what this one number stands for.
const OwnWriteShare = 0.42

// VectorCycles is a memory-bound vector op (LayerNorm, residual add, GELU:
// their vector passes take a few cycles per row, far below the row's load)
// reading reads bytes and writing writes bytes [cycles]:
//
//	(backlog + reads + OwnWriteShare·writes) / peak_bw + read_latency
//
// at the bus peak PeakBytesPerCycle: the op's requests are row hits spread
// evenly over every channel and bank (NeuPIMs stripes consecutive 64 B
// requests over the channels and 32 KiB runs over the banks), and the
// controller's losses are part of OwnWriteShare.
func VectorCycles(h *HBM, reads, writes int64, backlog float64) int64 {
	return int64(math.Ceil(VectorMemCycles(h, reads, writes, backlog))) + h.ReadLatency()
}

// VectorMemCycles is the bus-bound part of VectorCycles:
// (backlog + reads + OwnWriteShare·writes) / peak_bw [cycles].
func VectorMemCycles(h *HBM, reads, writes int64, backlog float64) float64 {
	return (backlog + float64(reads) + OwnWriteShare*float64(writes)) / h.PeakBytesPerCycle()
}

// VectorBacklog is the write backlog an op leaves for the next [B]: a
// vector op the (1−OwnWriteShare)·writes the bus has not executed when its
// last write is acknowledged; a GEMM none (its few stores are issued while
// its last token tile computes and the bus is idle).
func VectorBacklog(writes int64, vector bool) float64 {
	if vector {
		return (1 - OwnWriteShare) * float64(writes)
	}
	return 0
}

// Sub-batch interference, calibrated on NeuPIMs' sub-batch run: while PIM
// work is queued in a channel, NewtonSim's NeuPIMS controller offers the
// command slot to the PIM queue first, its G_ACTs take four-activate windows
// from the rank, and an array request waits when the PIM command it follows
// is not ready and the refresh slack is short, so the array's memory-bound
// time stretches by SAInterference while a PIM op runs; the array's requests
// in turn delay PIM commands, stretching PIM time by PIMInterference of the
// share of it overlapped by array traffic.
const (
	SAInterference  = 0.28
	PIMInterference = 0.09
)

// VectorAttendInterference is SAInterference for a vector op (LayerNorm,
// residual add, GELU) while NeuPIMSAttend runs: its memory-bound time
// stretches by 1 + VectorAttendInterference there, and by 1 +
// SAInterference beside NeuPIMSLogitSoftmax, as a GEMM's does beside
// either. Attend keeps the PIM queue busier than LogitSoftmax (0.14
// against 0.08 PIM commands per channel and cycle in the shipped sub-batch
// trace), and a vector op, whose in-order pipeline holds only a row's
// loads at a time, waits on each read the PIM queue holds back, where a
// GEMM streams many tiles' loads at once. Fitted, like the four constants
// above, on the shipped configurations alone (their one sub-batch run has
// three GELUs beside Attend): the 77 shipped ops' RMS log error is lowest
// at 0.41 to 0.44 against the reference runs and at 0.48 to 0.50 against
// NeuPIMs' mean over the refresh phases of testdata/neupims-phase
// (docs/fidelity.md, "Vector ops beside PIM work").
const VectorAttendInterference = 0.45

// PIMStretched is the wall time of memory-bound array work of base cycles
// that starts at t while a PIM op runs until pimEnd [cycles] (times
// relative to the stage's start):
//
//	base·(1 + SAInterference)                      if it ends before pimEnd
//	(pimEnd − t) + base − (pimEnd − t)/(1 + SAInterference)   if it outlasts it
//	base                                           if t ≥ pimEnd
//
// Only the part that overlaps the PIM op is slowed (NeuPIMs lays the two
// programs of a stage side by side; the one that finishes first leaves the
// channels to the other).
func PIMStretched(t, base, pimEnd float64) float64 {
	return stretched(t, base, pimEnd, 1+SAInterference)
}

// PIMStretchedVector is PIMStretched for a vector op beside a PIM program
// whose NeuPIMSAttend runs from attendFrom to pimEnd [cycles since the
// stage's start], after its NeuPIMSLogitSoftmax: the part of the op before
// attendFrom stretches by 1 + SAInterference, the part from attendFrom to
// pimEnd by 1 + VectorAttendInterference, the rest not at all. With
// fl = 1 + SAInterference, fa = 1 + VectorAttendInterference [cycles]:
//
//	base·fl                              if t + base·fl ≤ attendFrom
//	w + stretched(t + w, base − w/fl, pimEnd, fa)   else, w = max(0, attendFrom − t)
//
// (stretched: the same rule with one factor, as PIMStretched states it).
func PIMStretchedVector(t, base, attendFrom, pimEnd float64) float64 {
	if base <= 0 || t >= pimEnd {
		return max(0, base)
	}
	attendFrom = min(attendFrom, pimEnd)
	var w float64
	if t < attendFrom {
		f := 1 + SAInterference
		if t+base*f <= attendFrom {
			return base * f
		}
		w = attendFrom - t
		base -= w / f
	}
	return w + stretched(t+w, base, pimEnd, 1+VectorAttendInterference)
}

// stretched is the wall time of base cycles of memory-bound work starting
// at t that runs f times slower until end [cycles]:
// base·f when t + base·f ≤ end, else (end − t) + base − (end − t)/f
// (base when t ≥ end).
func stretched(t, base, end, f float64) float64 {
	if base <= 0 || t >= end {
		return max(0, base)
	}
	if t+base*f <= end {
		return base * f
	}
	return (end - t) + base - (end-t)/f
}

// PIMSlowdown is the factor on a PIM op's time when array traffic of saMem
// memory-bound cycles overlaps its pim cycles:
// 1 + PIMInterference · min(1, saMem/pim).
func PIMSlowdown(saMem, pim float64) float64 {
	if saMem <= 0 || pim <= 0 {
		return 1
	}
	return 1 + PIMInterference*min(1, saMem/pim)
}

// GWRITE collisions of sub-batch interleaving. Read from NeuPIMs'
// MemoryAccess::from_instruction, AddressConfig::switch_co_ch,
// make_address and encode_pim_header, NeuPIMSLogitSoftmax and
// NeuPIMSAttend, and from NewtonSim's NeuPIMSController::
// ScheduleTransaction and the request map of NewtonSim (the class that
// hands DRAM completions back to the NPU); confirmed by tracing the
// controllers of the reference sub-batch run:
//
// NeuPIMs does not store a tensor at its own addresses: every element an
// NPU load or store moves, of the array's ops and of the PIM ops' softmax
// and partial-sum stores alike, takes the next 2-byte address of one
// counter, which restarts at zero every AddressPeriod bytes. With the
// column and channel bits swapped, the first channels·req bytes after each
// restart are column 0 of row 0 of bank 0 in every channel, the next ones
// column 1, and so on. NeuPIMs' PIM GWRITEs use exactly such addresses:
// NeuPIMSLogitSoftmax's column 0 of every channel, NeuPIMSAttend's the
// column of its header's gwrite flag (the top column bit, column 8 of 16).
// An array request to the address of a GWRITE its channel's PIM op has
// already queued waits until the last GWRITE queued before it has
// completed:
//
//   - a store, because the controller moves no write into the command
//     queues while an older PIM transaction to the same address is
//     pending, and moves no other write while that one is first in line —
//     the channel's write buffer fills and the array's later requests to
//     that channel queue behind it;
//   - a load, because NewtonSim hands every completion to the oldest
//     outstanding request with that address, reads and GWRITEs alike: the
//     load's own completion goes to the oldest queued GWRITE, each
//     GWRITE's to the next, and the load gets its data only with the
//     completion of the last GWRITE queued before it. A vector op's rows
//     are computed in order, so every row after it waits too.
//
// The counter restarts a few times per stage; whether a restart falls into
// an array op's loads or stores while a PIM op runs is a matter of the
// bytes moved before, which the front end counts (neupimsio). In the
// reference sub-batch run it falls into stage C's FFN LayerNorm's stores
// and stage D's attention residual's loads, both during LogitSoftmax.

// AddressPeriod is the period of NeuPIMs' address counter:
// d_model²·5·2/tp [B] (the counter advances 2 bytes per element moved).
func AddressPeriod(dmodel, tp int64) int64 {
	if tp <= 0 {
		return 0
	}
	return dmodel * dmodel * 5 * 2 / tp
}

// GwriteSpan is where, after each restart of the address counter, the
// GWRITE address of column col of row 0, bank 0 lies for every channel:
// counter bytes [col·channels·req, (col+1)·channels·req).
func (h *HBM) GwriteSpan(col int64) (from, to int64) {
	w := h.Channels * h.ReqBytes
	return col * w, (col + 1) * w
}

// AttendGwriteColumn is the column of NeuPIMSAttend's GWRITE address: its
// header encodes the gwrite flag in the top column bit,
// page_bytes/req_bytes/2 (8 for 1 KiB pages of 64 B requests).
func (h *HBM) AttendGwriteColumn() int64 { return max(1, h.PageBytes/max(1, h.ReqBytes)) / 2 }

// GwriteHit reports whether the address counter bytes [from, to) (counted
// since the run began) reach a GWRITE address of column col
// (GwriteSpan), the counter restarting every period bytes, and where the
// first one lies, as the fraction of [from, to) before it.
func (h *HBM) GwriteHit(from, to float64, period, col int64) (frac float64, ok bool) {
	if period <= 0 || to <= from {
		return 0, false
	}
	lo, hi := h.GwriteSpan(col)
	p := float64(period)
	k := math.Floor(from / p)
	for ; k*p+float64(lo) < to; k++ {
		a, b := k*p+float64(lo), k*p+float64(hi)
		if b > from {
			return max(0, a-from) / (to - from), true
		}
	}
	return 0, false
}

// GwriteStall is the wait [cycles] of an array request that lands on a
// GWRITE address at t while the PIM op queueing those GWRITEs runs from
// pimFrom to pimTo (same time base):
//
//	min(window, t − pimFrom, pimTo − t)   for pimFrom ≤ t < pimTo, else 0
//
// window from GwriteBlockCycles. The request waits for the GWRITEs queued
// ahead of it, never beyond the op's end; early in the op its queues hold
// only its first transactions, whose GWRITEs issue at once (NeuPIMs' stage
// E: one GWRITE queued 250 cycles in, no wait), which the second term
// stands for.
func GwriteStall(t, pimFrom, pimTo, window float64) float64 {
	if t < pimFrom || t >= pimTo {
		return 0
	}
	return max(0, min(window, t-pimFrom, pimTo-t))
}

// GwriteBlockCycles is how long an array request waits when it lands on
// the address of a GWRITE its channel's PIM op has queued: until the PIM
// has worked through the transactions queued ahead of it, a full PIM
// transaction queue and PIM command queue (the controller moves a PIM
// transaction into its command queue every cycle the array has no read
// waiting, so the command queue is full once the array has paused its
// loads, computing a GEMM or storing a vector op's rows),
//
//	(TransQueue + PIMCmdQueue) · perTransaction  [cycles]
//
// with perTransaction the PIM op's cycles per transaction
// (PIMCost.LogitTransactionCycles, AttendTransactionCycles). In the
// reference sub-batch run the waits during LogitSoftmax were 7.4 to 8.5
// thousand cycles (stage C's stores, per channel) and 8.5 thousand (stage
// D's load); this window, with the op's PIMSlowdown, gives 8.5 and 8.3
// thousand.
func (h *HBM) GwriteBlockCycles(perTransaction float64) float64 {
	return float64(h.TransQueue+h.PIMCmdQueue) * perTransaction
}

// PIMRequest is the PIM work of one decode request in its channel.
type PIMRequest struct {
	Logit, Attend int64 // busy cycles of the two PIM ops, before refresh
	LogitWrites   int64 // bytes the NPU writes for the softmax outputs
	AttendWrites  int64 // bytes written for the partial-sum adds
}

// PIMAttention is the PIM work of one request with KV length seq: heads
// heads on this device with per-head score width qk and value width v
// (GPT-3: both d_model/n_heads); PIMCosts and PIMCost.Request state the
// formulas.
func (h *HBM) PIMAttention(seq, heads, qk, v, dtype int64) PIMRequest {
	c := h.PIMCosts(heads, qk, v, dtype)
	return c.Request(seq)
}

// PIMCost holds the per-request PIM costs of one attention shape that do
// not depend on the request's KV length (PIMCosts).
type PIMCost struct {
	LogitBase   int64 // GWRITEs of the query pages [cycles]
	PerKeyTile  int64 // GEMV tiles of one tile of banks keys over every query page [cycles]
	PerChunk    int64 // attend work of one chunk of page scores over every head [cycles]
	Heads       int64
	Chunks      int64 // query pages ceil(heads·qk/page), one GWRITE each
	Banks, Page int64 // keys per GEMV tile, values per DRAM page
	VTiles      int64 // ceil(v/banks)
	Dtype, Req  int64
}

// PIMCosts returns the PIM cost of a request's attention, per key tile and
// per score chunk, with page = page_bytes/dtype values, banks = banks per
// channel, cov = values per COMP command, q_width = heads·qk:
//
//	logit  = Σ over query pages c of ceil(q_width/page):
//	         gwrite + ceil(seq/banks)·gemv_tile(heads_in_c, ceil(qk/cov))
//	attend = heads · Σ over score chunks c of ceil(seq/page):
//	         gwrite + ceil(v/banks)·gemv_tile(1, ·)
//
// (NeuPIMSLogitSoftmax: a page of queries per chunk is broadcast, then one
// tile of banks keys per P_HEADER with one COMPS_READRES per head in the
// page; NeuPIMSAttend: per head, one chunk of page scores, ceil(v/banks)
// tiles, each with one COMPS_READRES, whose cost GemvTileCycles gives
// whatever the chunk's length). So logit = LogitBase + ceil(seq/banks)·
// PerKeyTile and attend = ceil(seq/page)·PerChunk [cycles].
func (h *HBM) PIMCosts(heads, qk, v, dtype int64) PIMCost {
	page := max(1, h.PageBytes/dtype)
	banks := max(1, h.BanksPerCh)
	cov := max(1, h.CompCoverage)
	gw := h.GwriteCycles()
	qWidth := heads * qk
	chunks := ceilDiv(qWidth, page)
	perPage := ceilDiv(page, qk)
	last := perPage
	if qWidth%page != 0 {
		last = ceilDiv(qWidth%page, qk)
	}
	comps := ceilDiv(qk, cov)
	vt := ceilDiv(v, banks)
	// in DRAM cycles, converted once per sum
	return PIMCost{
		LogitBase:  h.core(chunks * gw),
		PerKeyTile: h.core((chunks-1)*h.GemvTileCycles(perPage, comps) + h.GemvTileCycles(last, comps)),
		PerChunk:   h.core(heads * (gw + vt*h.GemvTileCycles(1, 1))),
		Heads:      heads, Chunks: chunks, Banks: banks, Page: page, VTiles: vt, Dtype: dtype, Req: h.ReqBytes,
	}
}

// LogitTransactionCycles is NeuPIMSLogitSoftmax's busy time per PIM
// transaction in a channel: a key tile is, per query page, one P_HEADER and
// one COMPS_READRES per head of the page, chunks + heads transactions in
// PerKeyTile cycles, stretched by refresh:
// PerKeyTile / (chunks + heads) / RefreshFactor [cycles].
func (c *PIMCost) LogitTransactionCycles(h *HBM) float64 {
	n := c.Chunks + c.Heads
	if n <= 0 {
		return 0
	}
	return float64(c.PerKeyTile) / float64(n) / h.RefreshFactor()
}

// AttendTransactionCycles is NeuPIMSAttend's: a chunk of page scores is,
// per head, one GWRITE and per value tile one P_HEADER and one
// COMPS_READRES, heads·(1 + 2·VTiles) transactions in PerChunk cycles:
// PerChunk / (heads·(1 + 2·VTiles)) / RefreshFactor [cycles].
func (c *PIMCost) AttendTransactionCycles(h *HBM) float64 {
	n := c.Heads * (1 + 2*c.VTiles)
	if n <= 0 {
		return 0
	}
	return float64(c.PerChunk) / float64(n) / h.RefreshFactor()
}

// Request is the PIM work of one request with KV length seq [cycles, B].
// Writes: the softmax output of every head, heads·(seq·dtype + req) bytes,
// and for seq > page the partial sums, heads·ceil(v/banks)·(banks·
// ceil(v/banks)·dtype + req) bytes.
func (c *PIMCost) Request(seq int64) PIMRequest {
	vc := ceilDiv(seq, c.Page)
	r := PIMRequest{
		Logit:       c.LogitBase + ceilDiv(seq, c.Banks)*c.PerKeyTile,
		Attend:      vc * c.PerChunk,
		LogitWrites: c.Heads * (seq*c.Dtype + c.Req),
	}
	if vc > 1 {
		r.AttendWrites = c.Heads * c.VTiles * (c.Banks*c.VTiles*c.Dtype + c.Req)
	}
	return r
}

// ReadResults is the number of PIM read results of a request with KV
// length seq: one per head per key tile and one per head per value tile of
// every score chunk, heads·(ceil(seq/banks) + ceil(seq/page)·ceil(v/banks)).
func (c *PIMCost) ReadResults(seq int64) int64 {
	return c.Heads * (ceilDiv(seq, c.Banks) + ceilDiv(seq, c.Page)*c.VTiles)
}

// PIMBatch sums the PIM work of a batch of requests per channel.
type PIMBatch struct {
	Logit, Attend []int64 // busy cycles per channel, before refresh
	LogitWrites   int64   // NPU writes of the softmax outputs [B]
	AttendWrites  int64   // NPU writes of the partial sums [B]
	ReadRes       int64   // PIM read results
}

// NewPIMBatch returns an empty batch with logit and attend (length:
// channels) as its per-channel buffers, which it clears.
func NewPIMBatch(logit, attend []int64) PIMBatch {
	clear(logit)
	clear(attend)
	return PIMBatch{Logit: logit, Attend: attend}
}

// Add places one request of KV length seq in channel ch.
func (b *PIMBatch) Add(c *PIMCost, ch, seq int64) {
	b.AddRequest(ch, c.Request(seq), c.ReadResults(seq))
}

// AddRequest places a request whose cost r and read-outs readRes are known
// (Request, ReadResults) in channel ch.
func (b *PIMBatch) AddRequest(ch int64, r PIMRequest, readRes int64) {
	b.Logit[ch] += r.Logit
	b.Attend[ch] += r.Attend
	b.LogitWrites += r.LogitWrites
	b.AttendWrites += r.AttendWrites
	b.ReadRes += readRes
}

// Cycles is the two PIM ops of the batch, NeuPIMSLogitSoftmax then
// NeuPIMSAttend, each PIMOpCycles over its own busiest and mean channel
// [cycles].
func (b *PIMBatch) Cycles(h *HBM) (logit, attend, logitMean, attendMean int64) {
	var lMax, aMax, lSum, aSum int64
	for i := range b.Logit {
		lMax, aMax = max(lMax, b.Logit[i]), max(aMax, b.Attend[i])
		lSum += b.Logit[i]
		aSum += b.Attend[i]
	}
	n := float64(len(b.Logit))
	logit, logitMean = h.PIMOpCycles(float64(lMax), float64(lSum)/n, b.LogitWrites)
	attend, attendMean = h.PIMOpCycles(float64(aMax), float64(aSum)/n, b.AttendWrites)
	return logit, attend, logitMean, attendMean
}

// PIMOpCycles is a PIM op over the channels [cycles]: the busiest channel's
// busy cycles stretched by refresh, plus the NPU writes that interleave with
// it spread evenly over the channels, each costing WritePenaltyCycles:
//
//	max_ch(busy) / RefreshFactor + writes/(channels·req) · write_penalty
//
// mean is the same with the mean channel (NeuPIMs' pim_cycles statistic).
func (h *HBM) PIMOpCycles(busiest, mean float64, writes int64) (cycles, meanCycles int64) {
	w := float64(writes) / float64(h.Channels*h.ReqBytes) * float64(h.WritePenaltyCycles()) * h.scale()
	f := h.RefreshFactor()
	return int64(math.Ceil(busiest/f + w)), int64(math.Ceil(mean/f + w))
}
