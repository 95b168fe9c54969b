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
// and the host-link loads of active experts that are not resident. One routing
// sample stands for every MoE layer. Ops run one after another; every GEMM and
// vector op takes max(compute, HBM traffic) since weight loads are
// double-buffered. Attention and dense FFN are split over tp devices (the
// figures are one device's); experts are not split, as in the NeuPIMs MoE fork.
// Communication between tp devices is not modelled.
package moe

import (
	"context"

	"github.com/sweep-dse/sweep/engine"
)

// Name is the engine's name in study files and datasets.
const Name = "moe"

// Version is the model version; bump it whenever results change.
const Version = "4"

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
	var load [maxExperts]int32
	var chans [maxChannels]int64
	evaluate(&c, load[:], chans[:], out)
	return nil
}

// maxChannels bounds hbm_channels.
const maxChannels = 1024

func evaluate(c *config, load []int32, chans []int64, out []engine.Value) {
	k := c.counts()
	d := c.dModel
	h := c.hiddenActs()
	moe := c.E > 0
	moeLayers := int64(0)
	if moe {
		moeLayers = c.moeLayers()
	}
	denseLayers := c.nLayers - moeLayers

	// stage A: LayerNorm + QKV
	var qkv tally
	c.vector(&qkv, c.batch*d, c.batch*d, c.batch*d, costNorm)
	c.qkvProjection(&qkv)
	// stage B: attention
	var attn tally
	c.attention(&attn, chans[:min(c.channels, int64(len(chans)))])
	// projection, two residual adds, LayerNorm
	var proj tally
	c.outProjection(&proj)
	c.vector(&proj, c.batch*d, 2*c.batch*d, c.batch*d, costAdd)
	c.vector(&proj, c.batch*d, c.batch*d, c.batch*d, costNorm)
	c.vector(&proj, c.batch*d, 2*c.batch*d, c.batch*d, costAdd)

	// dense FFN (dense layers), split over tp
	var dense tally
	if denseLayers > 0 {
		c.ffn(&dense, c.batch, ceilDiv(c.dFF, c.tp))
	}

	var router, experts, shared tally
	var st routeStats
	var actMoE, actUnsliced, linkPerExpert, linkCyclesPerExpert, loadCycles, exposed, capTokens int64
	if moe {
		st = c.route(load)
		// router: GEMM [B,d]x[d,E], softmax and top-k over E scores
		c.gemm(&router, c.batch, d, c.E)
		c.vector(&router, c.batch*c.E, c.batch*c.E, c.batch*c.K, costSoftmax)
		// dispatch and combine: token rows copied to experts and summed back
		c.vector(&experts, st.assigned*d, c.batch*d, st.assigned*d, costAdd)
		for _, n := range load[:c.E] {
			if n > 0 {
				c.ffn(&experts, int64(n), c.dFFE)
			}
		}
		c.vector(&experts, st.assigned*d, st.assigned*d, c.batch*d, costAdd)
		if c.shared > 0 {
			c.sharedExperts(&shared)
		}
		// act_bytes_moe = Σ_e tokens_e·(d + h·d_ff_expert)·dtype: each expert's
		// input slice and its h hidden vectors, for the tokens routed to it
		// (+ shared experts over the whole batch).
		sharedAct := c.shared * c.batch * (d + h*c.dFFShared) * c.dtype
		actMoE = st.assigned*(d+h*c.dFFE)*c.dtype + sharedAct
		// unsliced: every expert processes the whole batch
		actUnsliced = c.E*c.batch*(d+h*c.dFFE)*c.dtype + sharedAct
		spill(c, &experts, actMoE)
		// link: expert bytes = m·d·d_ff_expert·dtype (+ biases)
		linkPerExpert = k.perExpert * c.dtype
		linkCyclesPerExpert = c.linkCycles(linkPerExpert)
		loadCycles = st.loaded * linkCyclesPerExpert
		exposed = loadCycles
		if c.overlap {
			exposed = max(0, loadCycles-experts.cycles)
		}
		if c.capacity > 0 {
			capTokens = int64(ceilF(c.capacity * float64(c.batch*c.K) / float64(c.E)))
		}
	}
	actDense := c.batch * (d + h*c.dFF) * c.dtype
	if denseLayers > 0 {
		spill(c, &dense, c.batch*(d+h*ceilDiv(c.dFF, c.tp))*c.dtype)
	}

	common := qkv.cycles + attn.cycles + proj.cycles
	layerDense := common + dense.cycles
	layerMoE := common + router.cycles + experts.cycles + shared.cycles + exposed
	total := denseLayers*layerDense + moeLayers*layerMoE
	var all tally
	all.add(&qkv, c.nLayers)
	all.add(&attn, c.nLayers)
	all.add(&proj, c.nLayers)
	all.add(&dense, denseLayers)
	all.add(&router, moeLayers)
	all.add(&experts, moeLayers)
	all.add(&shared, moeLayers)
	macs, flops, hbm, pimBytes := all.macs, all.flops, all.hbmBytes, all.pimBytes
	linkBytes := moeLayers * st.loaded * linkPerExpert

	hz := c.clockMHz * 1e6
	latency := float64(total) / hz
	// peak MACs per cycle of the issue model: one H×W tile of H tokens every
	// issue cycles.
	peak := float64(c.H*c.W*c.H) / float64(c.issueCycles())
	bw := float64(c.channels) * c.bytesPerCycleCh
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
	if st.active > 0 {
		meanLoad = float64(st.assigned) / float64(st.active)
		imbalance = float64(st.maxLoad) / (float64(st.assigned) / float64(c.E))
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
	out[mExpertsActive] = I(st.active)
	out[mTokensMax] = I(st.maxLoad)
	out[mTokensMean] = F(meanLoad)
	out[mLoadImbalance] = F(imbalance)
	out[mTokensAssigned] = I(st.assigned)
	out[mTokensDropped] = I(st.dropped)
	out[mExpertCapacity] = I(capTokens)
	out[mLinkBytesPerExpert] = I(linkPerExpert)
	out[mLinkCyclesPerExpert] = I(linkCyclesPerExpert)
	out[mExpertsLoaded] = I(st.loaded)
	out[mLinkBytes] = I(linkBytes)
	out[mFlops] = I(flops)
	out[mMACs] = I(macs)
	out[mHBMBytes] = I(hbm)
	out[mPIMBytes] = I(pimBytes)
	out[mCyclesQKV] = I(c.nLayers * qkv.cycles)
	out[mCyclesAttention] = I(c.nLayers * attn.cycles)
	out[mCyclesProj] = I(c.nLayers * proj.cycles)
	out[mCyclesFFN] = I(denseLayers*dense.cycles + moeLayers*shared.cycles)
	out[mCyclesRouter] = I(moeLayers * router.cycles)
	out[mCyclesExperts] = I(moeLayers * experts.cycles)
	out[mCyclesLoads] = I(moeLayers * exposed)
	out[mCyclesLayer] = I(max(layerMoE*b2i(moe), layerDense*b2i(!moe)))
	out[mCyclesTotal] = I(total)
	out[mLatency] = F(latency)
	out[mTokensPerS] = F(float64(c.batch) / latency)
	out[mUtilization] = F(float64(macs) / (float64(total) * peak))
	out[mRoofline] = F(roof / hz)
	out[mBound] = engine.StringV(bound)
	out[mMoELayers] = I(moeLayers)
	out[mParamsLayerDense] = I(k.layerDense)
	out[mKVBytesPerToken] = I(c.nLayers * c.kvCacheWidth() * c.dtype)
}

// ffn adds one FFN over T tokens with hidden width w: FC1 [T,d]×[d,w]
// (gated FFNs: two such GEMMs, gate and up, so three GEMMs in all), the
// activation over T·w elements (gated: T·w products too), and FC2
// [T,w]×[w,d].
func (c *config) ffn(t *tally, T, w int64) {
	d := c.dModel
	m := c.ffnMatrices() - 1
	for range m {
		c.gemm(t, T, d, w)
	}
	c.vector(t, m*T*w, m*T*w, T*w, costAct)
	c.gemm(t, T, w, d)
}

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
