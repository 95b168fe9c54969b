package moe

import "github.com/sweep-dse/sweep/engine"

// config is a resolved point in typed form. Sizes are element counts unless
// named otherwise.
type config struct {
	dModel, nHeads, nKV, headDim, nLayers, vocab, dFF, tp int64
	gated                                                 bool // swiglu: 3 matrices
	E, K                                                  int64
	dFFE                                                  int64
	capacity                                              float64
	shared, dFFShared, denseLayers                        int64
	biases                                                bool
	norm                                                  string
	tied                                                  bool
	dtype                                                 int64

	clockMHz        float64
	H, W, arrays    int64
	sramBytes       int64
	vUnits, vWidth  int64
	channels        int64
	bytesPerCycleCh float64
	pim             bool
	gwrite, gemv    int64
	linkGBps        float64
	linkLatency     int64
	resident        int64
	overlap         bool

	batch    int64
	seqLen   int64
	seqTrace []Request
	routing  string
	skew     float64
	rtrace   *RoutingTrace
	seed     int64
}

func (e *Engine) config(p []engine.Value) config {
	c := config{
		dModel: p[pDModel].I, nHeads: p[pNHeads].I, nKV: p[pNKVHeads].I, headDim: p[pHeadDim].I,
		nLayers: p[pNLayers].I, vocab: p[pVocab].I, dFF: p[pDFF].I, tp: p[pTP].I,
		gated: p[pFFN].S == "swiglu",
		E:     p[pNumExperts].I, K: p[pTopK].I, dFFE: p[pDFFExpert].I, capacity: p[pCapacity].F,
		shared: p[pSharedExperts].I, dFFShared: p[pDFFShared].I, denseLayers: p[pDenseLayers].I,
		biases: p[pBiases].Bool(), norm: p[pNorm].S, tied: p[pTied].Bool(), dtype: p[pDtypeBytes].I,

		clockMHz: p[pClockMHz].F, H: p[pArrayH].I, W: p[pArrayW].I, arrays: p[pArrays].I,
		sramBytes: p[pSRAMKB].I * 1024, vUnits: p[pVectorUnits].I, vWidth: p[pVectorWidth].I,
		channels: p[pHBMChannels].I, bytesPerCycleCh: p[pHBMBytesPerCycle].F, pim: p[pPIM].Bool(),
		gwrite: p[pPIMGwrite].I, gemv: p[pPIMGemv].I, linkGBps: p[pLinkGBps].F,
		linkLatency: p[pLinkLatency].I, resident: p[pResident].I, overlap: p[pOverlap].Bool(),

		batch: p[pBatch].I, seqLen: p[pSeqLen].I, routing: p[pRouting].S, skew: p[pSkew].F, seed: p[pSeed].I,
	}
	if s := p[pSeqTrace].S; s != "" {
		c.seqTrace, _ = e.files.get(s).([]Request)
	}
	if c.routing == "trace" && c.E > 0 {
		c.rtrace, _ = e.files.get(p[pRoutingTrace].S).(*RoutingTrace)
	}
	return c
}

// ffnMatrices is the number of weight matrices of one FFN: 2 for GELU
// (FC1, FC2), 3 for SwiGLU (gate, up, down).
func (c *config) ffnMatrices() int64 {
	if c.gated {
		return 3
	}
	return 2
}

// hiddenActs is the number of d_ff-wide activation vectors an FFN keeps per
// token: GELU 2 (FC1 output, GELU output), SwiGLU 3 (gate, up, product).
func (c *config) hiddenActs() int64 { return c.ffnMatrices() }
