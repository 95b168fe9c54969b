package moe

import (
	"math"

	"github.com/sweep-dse/sweep/engine"
)

// config is a resolved point in typed form. Sizes are element counts unless
// named otherwise.
type config struct {
	dModel, nHeads, nKV, headDim, nLayers, vocab, dFF, tp int64
	qLoRA, kvLoRA, qkNope, qkRope, vHead                  int64 // MLA; kvLoRA = 0: GQA
	ffnKind                                               string
	gated                                                 bool // swiglu, geglu: 3 matrices
	E, K                                                  int64
	dFFE                                                  int64
	capacity                                              float64
	shared, dFFShared, denseLayers, moeFreq               int64
	sharedGate                                            bool
	qkvBias, outBias, ffnBias, routerBias, headBias       bool
	norm                                                  string
	normsPerLayer                                         int64
	qkNorm                                                string
	sinks                                                 bool
	tied                                                  bool
	dtype                                                 int64

	clockMHz        float64
	H, W, arrays    int64
	sramBytes       int64
	vUnits, vWidth  int64
	channels        int64
	bytesPerCycleCh float64 // per DRAM cycle
	dramMHz         float64
	pim             bool
	gwrite, gemv    int64
	linkGBps        float64
	linkLatency     int64
	resident        int64
	overlap         bool
	subBatch        bool // sub-batch interleaving of array and PIM (subbatch.go)

	batch    int64
	seqLen   int64
	seqTrace []Request
	// sliding-window attention: window tokens in slidingLayers of the
	// layers (slidingAt): ceil(sliding_fraction·n_layers), 0 without a
	// window
	window, slidingLayers int64
	routing               string
	skew                  float64
	rtrace                *RoutingTrace
	// tokenBase is the index of the batch's first token in the whole batch
	// (a sub-batch's second half starts at the first half's size): its
	// tokens take their own routing (trace rows, random draws)
	tokenBase int64
	seed      int64

	dev Device // the hardware for the shared op timing (device)
	seq Seq    // the op sequence being timed (evaluate)
}

func (e *Engine) config(p []engine.Value) config {
	c := config{
		dModel: p[pDModel].I, nHeads: p[pNHeads].I, nKV: p[pNKVHeads].I, headDim: p[pHeadDim].I,
		nLayers: p[pNLayers].I, vocab: p[pVocab].I, dFF: p[pDFF].I, tp: p[pTP].I,
		qLoRA: p[pQLoRA].I, kvLoRA: p[pKVLoRA].I, qkNope: p[pQKNope].I, qkRope: p[pQKRope].I, vHead: p[pVHeadDim].I,
		ffnKind: p[pFFN].S, gated: p[pFFN].S != "gelu",
		E: p[pNumExperts].I, K: p[pTopK].I, dFFE: p[pDFFExpert].I, capacity: p[pCapacity].F,
		shared: p[pSharedExperts].I, dFFShared: p[pDFFShared].I, sharedGate: p[pSharedGate].Bool(),
		denseLayers: p[pDenseLayers].I, moeFreq: p[pMoEFreq].I,
		qkvBias: p[pQKVBias].Bool(), outBias: p[pOutBias].Bool(), ffnBias: p[pFFNBias].Bool(),
		routerBias: p[pRouterBias].Bool(), headBias: p[pHeadBias].Bool(),
		norm: p[pNorm].S, normsPerLayer: p[pNormsPerLayer].I, qkNorm: p[pQKNorm].S, sinks: p[pSinks].Bool(),
		tied: p[pTied].Bool(), dtype: p[pDtypeBytes].I,

		clockMHz: p[pClockMHz].F, H: p[pArrayH].I, W: p[pArrayW].I, arrays: p[pArrays].I,
		sramBytes: p[pSRAMKB].I * 1024, vUnits: p[pVectorUnits].I, vWidth: p[pVectorWidth].I,
		channels: p[pHBMChannels].I, bytesPerCycleCh: p[pHBMBytesPerCycle].F, dramMHz: p[pDRAMMHz].F, pim: p[pPIM].Bool(),
		gwrite: p[pPIMGwrite].I, gemv: p[pPIMGemv].I, linkGBps: p[pLinkGBps].F,
		linkLatency: p[pLinkLatency].I, resident: p[pResident].I, overlap: p[pOverlap].Bool(),
		subBatch: p[pSubBatch].Bool(),

		window: p[pSlidingWindow].I,
		batch:  p[pBatch].I, seqLen: p[pSeqLen].I, routing: p[pRouting].S, skew: p[pSkew].F, seed: p[pSeed].I,
	}
	c.dev = c.device()
	if c.window > 0 {
		// ceil, less a hair for fractions like 18/36 rounded up in binary
		c.slidingLayers = min(c.nLayers, max(0, int64(math.Ceil(p[pSlidingFraction].F*float64(c.nLayers)-1e-9))))
	}
	if s := p[pSeqTrace].S; s != "" {
		c.seqTrace, _ = e.files.get(s).([]Request)
	}
	if c.routing == "trace" && c.E > 0 {
		c.rtrace, _ = e.files.get(p[pRoutingTrace].S).(*RoutingTrace)
	}
	return c
}

// slidingAt reports whether layer l (from 0) attends over a sliding window:
// the s of the L layers (ceil(sliding_fraction·L)) spread evenly from layer 0, layer l
// being one when ceil((l+1)·s/L) > ceil(l·s/L) (s = L/2: the even layers).
func (c *config) slidingAt(l int64) bool {
	s, L := c.slidingLayers, c.nLayers
	return s > 0 && ceilDiv((l+1)*s, L) > ceilDiv(l*s, L)
}

// moeAt reports whether layer l (from 0) has a MoE FFN: a multiple of
// moe_layer_freq at or after the dense-first layers (moeLayerCount).
func (c *config) moeAt(l int64) bool {
	return c.E > 0 && l >= c.denseLayers && c.moeFreq >= 1 && l%c.moeFreq == 0
}

// ffnMatrices is the number of weight matrices of one FFN: 2 for GELU
// (FC1, FC2), 3 for the gated SwiGLU and GeGLU (gate, up, down).
func (c *config) ffnMatrices() int64 {
	if c.gated {
		return 3
	}
	return 2
}

// hiddenActs is the number of d_ff-wide activation vectors an FFN keeps per
// token: GELU 2 (FC1 output, GELU output), gated 3 (gate, up, product).
func (c *config) hiddenActs() int64 { return c.ffnMatrices() }

// mla reports whether attention is multi-head latent attention.
func (c *config) mla() bool { return c.kvLoRA > 0 }

// moeLayers is the number of MoE layers: layers i in [dense_layers, n_layers)
// with i mod moe_layer_freq = 0 (none without experts).
func (c *config) moeLayers() int64 { return moeLayerCount(c.nLayers, c.denseLayers, c.moeFreq, c.E) }

// moeLayerCount counts the layers i in [dense, layers) with i mod freq = 0,
// or 0 when experts = 0.
func moeLayerCount(layers, dense, freq, experts int64) int64 {
	if experts <= 0 || dense >= layers || freq < 1 {
		return 0
	}
	// multiples of freq in [dense, layers-1]
	return (layers-1)/freq - (dense+freq-1)/freq + 1
}
