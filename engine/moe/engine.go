// Package moe is sweep's embedded simulator: an analytical model of one
// decode iteration of a (Mixture-of-Experts) transformer on a
// weight-stationary NPU with HBM-PIM, after NeuPIMs and its MoE extension.
//
// It is pure and deterministic: the same resolved point always gives the same
// metrics, and Evaluate does no I/O. Every formula is stated, with units, on
// the function that applies it (count.go, routing.go, timing.go, models_timing.go).
//
// Model of an iteration: every request of the batch decodes one token through
// every layer. A layer is stage A (LayerNorm + QKV GEMM), stage B (attention,
// on PIM or on the NPU), then projection, residual adds, LayerNorm and the FFN:
// a dense FFN, or a MoE FFN made of the router GEMM, token dispatch, one
// token-sliced FC1/activation/FC2 per active expert, combine, shared experts,
// and the host-link loads of active experts that are not resident. Each MoE
// layer routes the batch on its own, and the layers' mean is timed. Ops run one after another; every GEMM and
// vector op takes max(compute, HBM traffic) since weight loads are
// double-buffered. Attention and dense FFN are split over tp devices (the
// figures are one device's); experts are not split, as in the NeuPIMs MoE fork.
// Communication between tp devices is not modelled.
package moe

import (
	"context"
	"math"

	"github.com/sweep-dse/sweep/engine"
)

// Name is the engine's name in study files and datasets.
const Name = "moe"

// Version is the model version; bump it whenever results change.
const Version = "12"

// Engine is the embedded simulator. The zero value is not usable; call New.
type Engine struct {
	files files
}

// New returns an embedded simulator.
func New() *Engine { return &Engine{} }

// Name implements engine.Engine.
func (e *Engine) Name() string { return Name }

// Version implements engine.Engine.
func (e *Engine) Version() string { return Version }

// Params implements engine.Engine.
func (e *Engine) Params() []engine.Param { return paramTable[:] }

// Metrics implements engine.Engine.
func (e *Engine) Metrics() []engine.Field { return metricTable[:] }

// Evaluate implements engine.Engine. It allocates nothing for top_k <= 16,
// num_experts <= 4096 (zipf: <= 256) and up to 1024 HBM channels.
func (e *Engine) Evaluate(ctx context.Context, p []engine.Value, out []engine.Value) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := e.config(p)
	var scratch [maxExperts]int32
	var chans [2 * maxChannels]int64
	evaluate(&c, scratch[:], chans[:], out)
	return nil
}

// maxChannels bounds hbm_channels.
const maxChannels = 1024

// stageE is the work of a layer after attention: the projection, the
// attention residual and the FFN LayerNorm (proj), then either the dense
// FFN (dense) or the MoE FFN (router, experts, shared experts, the exposed
// expert loads), each followed by the FFN residual (resDense, resMoE).
type stageE struct {
	proj, dense, resDense           tally
	router, experts, shared, resMoE tally
	exposed, loadCycles             int64
	end                             float64 // write backlog the layer leaves [B]
}

// layer is one layer's stages and the write backlog entering stage E.
type layer struct {
	qkv, attn tally
	eIn       float64
	e         stageE
}

// hbmBytes is the bytes between HBM and the NPU of every op of the layer.
func (l *layer) hbmBytes() int64 {
	e := &l.e
	return l.qkv.hbmBytes + l.attn.hbmBytes + e.proj.hbmBytes + e.dense.hbmBytes + e.resDense.hbmBytes +
		e.router.hbmBytes + e.experts.hbmBytes + e.shared.hbmBytes + e.resMoE.hbmBytes
}

// dense is the cycles of the layer with a dense FFN.
func (l *layer) dense() int64 {
	return l.qkv.cycles + l.attn.cycles + l.e.proj.cycles + l.e.dense.cycles + l.e.resDense.cycles
}

// moe is the cycles of the layer with a MoE FFN.
func (l *layer) moe() int64 {
	e := &l.e
	return l.qkv.cycles + l.attn.cycles + e.proj.cycles + e.router.cycles + e.experts.cycles +
		e.shared.cycles + e.exposed + e.resMoE.cycles
}

// stageAB times stage A (LayerNorm + QKV) and stage B (attention) of a
// layer that starts with carry bytes of writes queued.
func (c *config) stageAB(l *layer, carry float64, w *attnWork) {
	c.seq = Seq{Dev: c.dev, Backlog: carry}
	c.layerNorm(&l.qkv, c.batch, c.dModel)
	c.qkvProjection(&l.qkv)
	c.attnStage(&l.attn, w)
	l.eIn = c.seq.Backlog
}

// stageE times the rest of a layer from the write backlog l.eIn, in
// NeuPIMs' order: projection, residual, LayerNorm, FFN, residual.
func (c *config) stageE(l *layer, rt *routing, denseLayers int64) {
	c.seq = Seq{Dev: c.dev, Backlog: l.eIn}
	c.stageEOn(l, rt, denseLayers)
}

// stageEOn is stageE on the op sequence c.seq as it stands (sub-batch
// mode: inside a stage, beside a PIM program).
func (c *config) stageEOn(l *layer, rt *routing, denseLayers int64) {
	e := &l.e
	*e = stageE{}
	B, d := c.batch, c.dModel
	c.outProjection(&e.proj)
	c.vector(&e.proj, B*d, 2*B, d, B, d, costAdd)
	c.layerNorm(&e.proj, B, d)
	mid := c.seq
	if denseLayers > 0 {
		w := ceilDiv(c.dFF, c.tp)
		c.ffn(&e.dense, B, w)
		spill(c, &e.dense, B*(d+c.hiddenActs()*w)*c.dtype)
		c.vector(&e.resDense, B*d, 2*B, d, B, d, costAdd)
		e.end = c.seq.Backlog
	}
	if c.E == 0 {
		return
	}
	c.seq = mid
	// router: GEMM [B,d]x[d,E], softmax and top-k over E scores
	c.gemm(&e.router, B, d, c.E)
	c.vector(&e.router, B*c.E, B, c.E, B, c.K, costSoftmax)
	// dispatch and combine: token rows copied to experts and summed back
	assigned := rt.meanInt(rt.sum.assigned)
	c.vector(&e.experts, assigned*d, B, d, assigned, d, costAdd)
	c.expertFFNs(&e.experts, rt)
	c.vector(&e.experts, assigned*d, assigned, d, B, d, costAdd)
	if c.shared > 0 {
		c.sharedExperts(&e.shared)
	}
	h := c.hiddenActs()
	sharedAct := c.shared * B * (d + h*c.dFFShared) * c.dtype
	spill(c, &e.experts, assigned*(d+h*c.dFFE)*c.dtype+sharedAct)
	c.vector(&e.resMoE, B*d, 2*B, d, B, d, costAdd)
	e.end = c.seq.Backlog
	e.loadCycles = int64(math.Round(rt.mean(rt.sum.loaded) * float64(c.linkCycles(c.counts().perExpert*c.dtype))))
	e.exposed = e.loadCycles
	if c.overlap {
		e.exposed = max(0, e.loadCycles-e.experts.cycles)
	}
}

// evaluate times one decode iteration: the first layer starts with an
// empty write queue, every later one with the backlog the layer before it
// left (both kinds of layer end in the FFN residual, so they leave the
// same); ops run one after another through the shared op sequence
// (program.go), in NeuPIMs' order.
func evaluate(c *config, scratch []int32, chans []int64, out []engine.Value) {
	k := c.counts()
	d := c.dModel
	h := c.hiddenActs()
	moe := c.E > 0
	moeLayers := int64(0)
	if moe {
		moeLayers = c.moeLayers()
	}
	denseLayers := c.nLayers - moeLayers
	nch := min(c.channels, int64(len(chans)/2))

	var rt routing
	if moe {
		rt = c.route(scratch)
	}
	// attention over the whole KV cache (w) and, with sliding-window
	// layers, over the window (ws)
	var w, ws attnWork
	c.attention(&w, chans[:nch], chans[nch:2*nch], nil)
	sliding := c.slidingLayers > 0 // 0 without a window (config)
	if sliding {
		c.attentionOver(&ws, chans[:nch], chans[nch:2*nch], nil, c.window)
	}
	attnOf := func(slides bool) *attnWork {
		if slides {
			return &ws
		}
		return &w
	}
	// layer 0, then a later layer of each attention kind: every later
	// layer starts with the backlog layer 0 leaves (all layers end in the
	// FFN residual, so they leave the same)
	var ls [3]layer
	first := &ls[0]
	c.stageAB(first, 0, attnOf(c.slidingAt(0)))
	c.stageE(first, &rt, denseLayers)
	later := func(l *layer, aw *attnWork) *layer {
		c.stageAB(l, first.e.end, aw)
		if l.eIn == first.eIn {
			l.e = first.e
		} else {
			c.stageE(l, &rt, denseLayers)
		}
		return l
	}
	rest, restS := first, first // full-attention and sliding-window later layers
	if c.nLayers > 1 {
		rest = later(&ls[1], &w)
		restS = rest
		if sliding {
			restS = later(&ls[2], &ws)
		}
	}
	// layer 0 is a MoE layer when there are no leading dense layers
	m1 := b2i(c.moeAt(0))
	d1 := 1 - m1
	dn, mn := denseLayers-d1, moeLayers-m1 // later layers of each kind
	var dS, mS int64                       // …of them with sliding-window attention
	if sliding {
		for l := int64(1); l < c.nLayers; l++ {
			if c.slidingAt(l) {
				if c.moeAt(l) {
					mS++
				} else {
					dS++
				}
			}
		}
	}

	var qkv, attn, proj, ffn, router, experts, loads tally
	var total int64
	// add counts layer l as dense dense layers and moe MoE layers
	add := func(l *layer, dense, moe int64) {
		qkv.add(&l.qkv, dense+moe)
		attn.add(&l.attn, dense+moe)
		proj.add(&l.e.proj, dense+moe)
		proj.add(&l.e.resDense, dense)
		proj.add(&l.e.resMoE, moe)
		ffn.add(&l.e.dense, dense)
		ffn.add(&l.e.shared, moe)
		router.add(&l.e.router, moe)
		experts.add(&l.e.experts, moe)
		loads.cycles += moe * l.e.exposed
		total += dense*l.dense() + moe*l.moe()
	}
	add(first, d1, m1)
	add(rest, dn-dS, mn-mS)
	add(restS, dS, mS)
	// cycles_layer: a later layer of the model's FFN kind (MoE when it has
	// MoE layers); with sliding windows, the mean over those layers of both
	// attention kinds
	kindMoE := moe && moeLayers > 0
	cyclesOf := func(l *layer) int64 {
		if kindMoE {
			return l.moe()
		}
		return l.dense()
	}
	layerCycles := cyclesOf(rest)
	kindN, kindS := dn, dS
	if kindMoE {
		kindN, kindS = mn, mS
	}
	if kindN == 0 && c.slidingAt(0) { // layer 0 is the kind's only one, and slides
		layerCycles = cyclesOf(restS)
	}
	if kindS > 0 {
		layerCycles = ((kindN-kindS)*cyclesOf(rest) + kindS*cyclesOf(restS) + kindN/2) / kindN
	}
	if c.subBatch && c.pim && c.batch >= 2 {
		c.subBatchTallies(&rt, &qkv, &attn, &proj, &ffn, &router, &experts, &loads, &total, &layerCycles)
	}

	var actMoE, actUnsliced, linkPerExpert, linkCyclesPerExpert, capTokens int64
	if moe {
		// act_bytes_moe = Σ_e tokens_e·(d + h·d_ff_expert)·dtype: each expert's
		// input slice and its h hidden vectors, for the tokens routed to it
		// (mean over the MoE layers), + shared experts over the whole batch.
		sharedAct := c.shared * c.batch * (d + h*c.dFFShared) * c.dtype
		actMoE = rt.meanInt(rt.sum.assigned)*(d+h*c.dFFE)*c.dtype + sharedAct
		// unsliced: every expert processes the whole batch
		actUnsliced = c.E*c.batch*(d+h*c.dFFE)*c.dtype + sharedAct
		// link: expert bytes = m·d·d_ff_expert·dtype (+ biases)
		linkPerExpert = k.perExpert * c.dtype
		linkCyclesPerExpert = c.linkCycles(linkPerExpert)
		if c.capacity > 0 {
			capTokens = int64(ceilF(c.capacity * float64(c.batch*c.K) / float64(c.E)))
		}
	}
	actDense := c.batch * (d + h*c.dFF) * c.dtype
	var all tally
	for _, t := range []*tally{&qkv, &attn, &proj, &ffn, &router, &experts} {
		all.add(t, 1)
	}
	macs, flops, hbm, pimBytes := all.macs, all.flops, all.hbmBytes, all.pimBytes
	linkBytes := rt.sum.loaded * linkPerExpert // every MoE layer's loads

	hz := c.clockMHz * 1e6
	latency := float64(total) / hz
	// peak MACs per cycle of the issue model: one H×W tile of H tokens every
	// issue cycles.
	peak := float64(c.H*c.W*c.H) / float64(c.issueCycles())
	bw := c.dev.HBM.PeakBytesPerCycle() // per core cycle
	roofCompute := float64(macs) / peak
	roofMemory := float64(hbm) / bw
	roofLink := float64(linkBytes) / c.linkBytesPerCycle()
	roof := max(roofCompute, roofMemory, roofLink)
	bound := "compute"
	switch roof {
	case roofMemory:
		bound = "memory"
	case roofLink:
		bound = "link"
	}
	if roof == 0 {
		bound = "none"
	}

	paramsLayer, paramsActive := k.layerDense, k.layerDense
	if moe {
		paramsLayer, paramsActive = k.layerMoE, k.activeLayer
	}
	var meanLoad, imbalance float64
	if rt.sum.active > 0 {
		meanLoad = float64(rt.sum.assigned) / float64(rt.sum.active)
		imbalance = float64(rt.sum.maxLoad) * float64(c.E) / float64(rt.sum.assigned)
	}

	I := engine.IntV
	F := engine.FloatV
	out[mParamsAttention] = I(k.attention)
	out[mParamsRouter] = I(k.router)
	out[mParamsPerExpert] = I(k.perExpert)
	out[mParamsExperts] = I(k.experts)
	out[mParamsShared] = I(k.sharedFFN)
	out[mParamsMoEFFN] = I(k.moeFFN)
	out[mParamsDenseFFN] = I(k.denseFFN)
	out[mParamsNorms] = I(k.norms)
	out[mParamsLayer] = I(paramsLayer)
	out[mParamsActive] = I(paramsActive)
	out[mActiveRatio] = F(float64(paramsActive) / float64(paramsLayer))
	out[mParamsEmbedding] = I(k.embedding + k.head)
	out[mParamsTotal] = I(k.total)
	out[mParamsActiveTotal] = I(k.active)
	out[mParamsActiveNoEmb] = I(k.active - k.embedding*b2i(!c.tied))
	out[mParamsNonEmbedding] = I(k.nonEmbed)
	out[mActDense] = I(actDense)
	out[mActMoE] = I(actMoE)
	out[mActUnsliced] = I(actUnsliced)
	out[mExpertsActive] = F(rt.mean(rt.sum.active))
	out[mTokensMax] = F(rt.mean(rt.sum.maxLoad))
	out[mTokensMean] = F(meanLoad)
	out[mLoadImbalance] = F(imbalance)
	out[mTokensAssigned] = F(rt.mean(rt.sum.assigned))
	out[mTokensDropped] = F(rt.mean(rt.sum.dropped))
	out[mExpertCapacity] = I(capTokens)
	out[mLinkBytesPerExpert] = I(linkPerExpert)
	out[mLinkCyclesPerExpert] = I(linkCyclesPerExpert)
	out[mExpertsLoaded] = F(rt.mean(rt.sum.loaded))
	out[mLinkBytes] = I(linkBytes)
	out[mFlops] = I(flops)
	out[mMACs] = I(macs)
	out[mHBMBytes] = I(hbm)
	out[mPIMBytes] = I(pimBytes)
	out[mCyclesQKV] = I(qkv.cycles)
	out[mCyclesAttention] = I(attn.cycles)
	out[mCyclesProj] = I(proj.cycles)
	out[mCyclesFFN] = I(ffn.cycles)
	out[mCyclesRouter] = I(router.cycles)
	out[mCyclesExperts] = I(experts.cycles)
	out[mCyclesLoads] = I(loads.cycles)
	out[mCyclesLayer] = I(layerCycles)
	out[mCyclesTotal] = I(total)
	out[mLatency] = F(latency)
	out[mTokensPerS] = F(float64(c.batch) / latency)
	out[mUtilization] = F(float64(macs) / (float64(total) * peak))
	out[mRoofline] = F(roof / hz)
	out[mBound] = engine.StringV(bound)
	out[mMoELayers] = I(moeLayers)
	out[mSlidingLayers] = I(c.slidingLayers)
	out[mParamsLayerDense] = I(k.layerDense)
	out[mKVBytesPerToken] = I(c.nLayers * c.kvCacheWidth() * c.dtype)
}

// subBatchTallies replaces the layer-by-layer figures of evaluate by those
// of the sub-batch iteration (subbatch.go): its cycles, the steady-state
// layer, and the work of every op summed over the stages. It is apart from
// evaluate so that evaluations without sub-batch mode do not carry its
// frame.
//
//go:noinline
func (c *config) subBatchTallies(rt *routing, qkv, attn, proj, ffn, router, experts, loads *tally, total, layerCycles *int64) {
	var sb sbResult
	c.subBatchIteration(&sb, rt)
	*total, *layerCycles = sb.total, sb.layer
	u := &sb.work
	*qkv, *attn = u.qkv, u.attn
	*proj, *ffn, *router, *experts = u.e.proj, u.e.dense, u.e.router, u.e.experts
	proj.add(&u.e.resDense, 1)
	proj.add(&u.e.resMoE, 1)
	ffn.add(&u.e.shared, 1)
	*loads = tally{cycles: u.e.exposed}
}

// ffn adds one FFN over T tokens with hidden width w: FC1 [T,d]×[d,w]
// (gated FFNs: two such GEMMs, gate and up, so three GEMMs in all), the
// activation over T·w elements reading m·T rows of w (gated: T·w products
// too) and writing T rows, and FC2 [T,w]×[w,d]. Every GEMM is the shared
// Seq.GEMM: an expert's FFN is the same over only its tokens.
func (c *config) ffn(t *tally, T, w int64) {
	d := c.dModel
	m := c.ffnMatrices() - 1
	for range m {
		c.gemm(t, T, d, w)
	}
	c.vector(t, m*T*w, m*T, w, T, w, costAct)
	c.gemm(t, T, w, d)
}

// expertFFNs times the experts of the MoE layers (routing rt): its two
// sampled layers lo and hi, each from where the op sequence stands, blended
// with weights 1−f and f (their work, cycles and the sequence after them).
// Each layer runs every active expert in turn, the first draining the
// write backlog the dispatch left (expertsOf).
func (c *config) expertFFNs(t *tally, rt *routing) {
	if rt.layers == 0 {
		return
	}
	var memo expertMemo // shared by both layers: they start alike
	if rt.f == 0 {
		c.expertsOf(t, rt.lo, &memo)
		return
	}
	s0 := c.seq
	var lo, hi tally
	c.expertsOf(&lo, rt.lo, &memo)
	sLo := c.seq
	c.seq = s0
	c.expertsOf(&hi, rt.hi, &memo)
	f := rt.f
	blend := func(a, b float64) float64 { return (1-f)*a + f*b }
	c.seq.T = blend(sLo.T, c.seq.T)
	c.seq.Mem = blend(sLo.Mem, c.seq.Mem)
	c.seq.Backlog = blend(sLo.Backlog, c.seq.Backlog)
	for _, x := range [...]struct{ dst, a, b *int64 }{{&t.cycles, &lo.cycles, &hi.cycles}, {&t.macs, &lo.macs, &hi.macs},
		{&t.flops, &lo.flops, &hi.flops}, {&t.hbmBytes, &lo.hbmBytes, &hi.hbmBytes}, {&t.pimBytes, &lo.pimBytes, &hi.pimBytes},
		{&t.compute, &lo.compute, &hi.compute}} {
		*x.dst += int64(math.Round(blend(float64(*x.a), float64(*x.b))))
	}
}

// expertsOf times the FFN of every active expert of one layer (load: its
// tokens per expert), in expert order, each over its own tokens (ffn). An
// expert's cost depends only on its token count and on the write backlog
// the op before it left (outside a PIM program, where no stretch applies),
// and most experts repeat a (backlog, tokens) pair seen before: those take
// the recorded result instead of a recount. The figures are those of
// timing every expert.
func (c *config) expertsOf(t *tally, load []int32, table *expertMemo) {
	for _, n := range load {
		if n <= 0 {
			continue
		}
		if c.seq.T < c.seq.PIMEnd || noExpertMemo { // inside a PIM program: time it
			c.ffn(t, int64(n), c.dFFE)
			continue
		}
		h := (uint64(n)*0x9e3779b97f4a7c15 ^ math.Float64bits(c.seq.Backlog)*0xbf58476d1ce4e5b9) >> 58
		m := &table[h]
		if m.ok && m.n == n && m.backlog == c.seq.Backlog {
			t.add(&m.dt, 1)
			c.seq.T += m.dT
			c.seq.Mem += m.dMem
			c.seq.Backlog = m.backlogTo
			continue
		}
		var dt tally
		b0, t0, mem0 := c.seq.Backlog, c.seq.T, c.seq.Mem
		c.ffn(&dt, int64(n), c.dFFE)
		*m = memoEntry{backlog: b0, n: n, ok: true, dt: dt, dT: c.seq.T - t0, dMem: c.seq.Mem - mem0, backlogTo: c.seq.Backlog}
		t.add(&dt, 1)
	}
}

// expertMemo records expert FFN costs by (tokens, backlog) for expertsOf,
// over the experts of one MoE layer's timing (all of one shape and device).
type expertMemo [64]memoEntry

type memoEntry struct {
	backlog   float64
	n         int32
	ok        bool
	dt        tally
	dT, dMem  float64
	backlogTo float64
}

// noExpertMemo turns the memo of expertsOf off (tests compare both).
var noExpertMemo bool

// spill adds the HBM round trip of activations that do not fit in SRAM:
// 2·max(0, act_bytes − sram_bytes) bytes [B].
func spill(c *config, t *tally, actBytes int64) {
	if ex := actBytes - c.sramBytes; ex > 0 {
		t.cycles += c.hbmCycles(2 * ex)
		t.hbmBytes += 2 * ex
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func ceilF(x float64) float64 {
	i := float64(int64(x))
	if i < x {
		return i + 1
	}
	return i
}
