package moe

import (
	"github.com/sweep-dse/sweep/engine"
)

// Parameter positions in a point vector. The order is part of the engine's
// contract: Params() lists them in this order.
const (
	// model
	pModel = iota
	pModelConfig
	pDModel
	pNHeads
	pNKVHeads
	pHeadDim
	pQLoRA
	pKVLoRA
	pQKNope
	pQKRope
	pVHeadDim
	pNLayers
	pVocab
	pDFF
	pTP
	pFFN
	pNumExperts
	pTopK
	pScaling
	pDFFExpert
	pCapacity
	pSharedExperts
	pDFFShared
	pSharedGate
	pDenseLayers
	pMoEFreq
	pBiases
	pQKVBias
	pOutBias
	pFFNBias
	pRouterBias
	pHeadBias
	pNorm
	pNormsPerLayer
	pQKNorm
	pSinks
	pSlidingWindow
	pSlidingFraction
	pTied
	pDtypeBytes
	// hardware
	pHardware
	pNPUConfig
	pMemConfig
	pClockMHz
	pArrayH
	pArrayW
	pArrays
	pSRAMKB
	pVectorUnits
	pVectorWidth
	pHBMChannels
	pHBMBytesPerCycle
	pDRAMMHz
	pPIM
	pPIMGwrite
	pPIMGemv
	pLinkGBps
	pLinkLatency
	pResident
	pOverlap
	pSubBatch
	// workload
	pBatch
	pSeqLen
	pSeqTrace
	pRouting
	pSkew
	pRoutingTrace
	pSeed
	nParams
)

// Enumerated values of string parameters.
var (
	ffnKinds     = []string{"gelu", "swiglu", "geglu"}
	scalingModes = []string{"balanced", "compute", "capacity"}
	normKinds    = []string{"none", "layernorm", "layernorm_nobias", "rmsnorm"}
	qkNormKinds  = []string{"none", "head", "full"}
	routingKinds = []string{"uniform", "zipf", "trace"}
)

func ip(name, unit, doc string, def int64) engine.Param {
	return engine.Param{Name: name, Kind: engine.Int, Unit: unit, Doc: doc, Default: engine.IntV(def)}
}

func ipDerived(name, unit, doc string) engine.Param {
	return engine.Param{Name: name, Kind: engine.Int, Unit: unit, Doc: doc}
}

func bpDerived(name, doc string) engine.Param {
	return engine.Param{Name: name, Kind: engine.Bool, Doc: doc}
}

func fp(name, unit, doc string, def float64) engine.Param {
	return engine.Param{Name: name, Kind: engine.Float, Unit: unit, Doc: doc, Default: engine.FloatV(def)}
}

func bp(name, doc string, def bool) engine.Param {
	return engine.Param{Name: name, Kind: engine.Bool, Doc: doc, Default: engine.BoolV(def)}
}

func sp(name, doc, def string, enum []string) engine.Param {
	return engine.Param{Name: name, Kind: engine.String, Doc: doc, Default: engine.StringV(def), Enum: enum}
}

func filep(name, doc string) engine.Param {
	return engine.Param{Name: name, Kind: engine.String, Doc: doc, Default: engine.StringV(""), File: true}
}

// paramTable lists every parameter with its default. Defaults that depend on
// other parameters are Unset and filled by Resolve.
var paramTable = [nParams]engine.Param{
	pModel:           sp("model", "model preset (see `sweep models`); \"custom\" = the parameters below", "custom", nil),
	pModelConfig:     filep("model_config", "model config JSON: a Hugging Face config.json (detected by its model_type) or a NeuPIMs model config (MoE fork fields accepted); its values fill unset model parameters"),
	pDModel:          ip("d_model", "", "hidden size", 4096),
	pNHeads:          ip("n_heads", "", "attention (query) heads", 32),
	pNKVHeads:        ipDerived("n_kv_heads", "", "key/value heads (GQA); unset = n_heads (= n_heads under MLA)"),
	pHeadDim:         ipDerived("head_dim", "", "dimension of one query/key head; unset = d_model / n_heads (MLA: qk_nope_head_dim + qk_rope_head_dim)"),
	pQLoRA:           ip("q_lora_rank", "", "MLA query compression rank; 0 = queries projected directly from d_model", 0),
	pKVLoRA:          ip("kv_lora_rank", "", "MLA key/value latent rank; 0 = standard multi-head / grouped-query attention, > 0 = multi-head latent attention", 0),
	pQKNope:          ipDerived("qk_nope_head_dim", "", "MLA per-head query/key dimension without rotary embedding; unset = d_model / n_heads (0 without MLA)"),
	pQKRope:          ipDerived("qk_rope_head_dim", "", "MLA per-head rotary query/key dimension, one rotary key shared by all heads; unset = 64 (0 without MLA)"),
	pVHeadDim:        ipDerived("v_head_dim", "", "MLA per-head value dimension; unset = qk_nope_head_dim (0 without MLA)"),
	pNLayers:         ip("n_layers", "", "transformer layers", 32),
	pVocab:           ip("vocab_size", "", "vocabulary size", 50304),
	pDFF:             ipDerived("d_ff", "", "dense FFN width (dense layers; the comparison FFN of MoE layers); unset = 4 * d_model"),
	pTP:              ip("tp", "", "tensor-parallel degree: attention and dense FFN are split over tp devices; experts are not", 1),
	pFFN:             sp("ffn", "FFN kind: gelu (2 matrices: up, down), swiglu or geglu (3 matrices: gate, up, down; SiLU- or GELU-gated)", "gelu", ffnKinds),
	pNumExperts:      ip("num_experts", "", "routed experts per MoE layer; 0 = dense FFN", 0),
	pTopK:            ipDerived("top_k", "", "experts per token; unset = min(2, num_experts)"),
	pScaling:         sp("moe_ffn_scaling", "expert width rule: balanced d_ff/E, compute d_ff/sqrt(E), capacity d_ff (rounded down, at least 1); given with a model preset or config file that sets d_ff_expert (w at E0 experts) it rescales that width: balanced w*E0/E, compute w*sqrt(E0/E), capacity w (unset, the model keeps w)", "balanced", scalingModes),
	pDFFExpert:       ipDerived("d_ff_expert", "", "expert FFN width; unset = the model preset's or config file's, else from moe_ffn_scaling; not together with moe_ffn_scaling"),
	pCapacity:        fp("capacity_factor", "", "expert capacity = ceil(capacity_factor * batch * top_k / num_experts) tokens; 0 = dropless", 0),
	pSharedExperts:   ip("shared_experts", "", "always-active shared experts per MoE layer", 0),
	pDFFShared:       ipDerived("d_ff_shared", "", "width of one shared expert; unset = d_ff_expert"),
	pSharedGate:      bp("shared_expert_gate", "a sigmoid gate d_model -> 1 scales the shared experts' output (Qwen-MoE)", false),
	pDenseLayers:     ip("dense_layers", "", "leading layers with a dense FFN before the MoE layers", 0),
	pMoEFreq:         ip("moe_layer_freq", "", "layer i >= dense_layers (counting from 0) is MoE when i mod moe_layer_freq = 0, else dense", 1),
	pBiases:          bp("biases", "linear layers carry biases: the default of qkv_bias, out_bias and ffn_bias", false),
	pQKVBias:         bpDerived("qkv_bias", "Q, K, V projections carry biases; unset = biases"),
	pOutBias:         bpDerived("out_bias", "attention output projection carries a bias; unset = biases"),
	pFFNBias:         bpDerived("ffn_bias", "FFN and expert matrices carry biases; unset = biases"),
	pRouterBias:      bp("router_bias", "the router carries one bias per expert (gpt-oss bias; DeepSeek-V3 score-correction bias)", false),
	pHeadBias:        bp("lm_head_bias", "the LM head carries a bias of vocab_size", false),
	pNorm:            sp("norm", "per-layer and final norms: none, layernorm (weight+bias), layernorm_nobias or rmsnorm (weight)", "none", normKinds),
	pNormsPerLayer:   ip("norms_per_layer", "", "norms of width d_model per layer (2 pre-norms; 4 with post-norms as in Grok-1)", 2),
	pQKNorm:          sp("qk_norm", "RMSNorm of queries and keys: none, head (one head_dim weight each for Q and K, Qwen3), full (over all heads: (n_heads + n_kv_heads)*head_dim weights, OLMoE)", "none", qkNormKinds),
	pSinks:           bp("attn_sinks", "one learned attention-sink logit per head and layer (gpt-oss)", false),
	pSlidingWindow:   ip("sliding_window", "token", "KV tokens (the most recent) a sliding-window attention layer attends to; 0 = every layer attends to its whole KV cache", 0),
	pSlidingFraction: fp("sliding_fraction", "", "share of the layers with sliding-window attention when sliding_window > 0, spread evenly from layer 0: ceil(sliding_fraction*n_layers) of them (0.5: the even layers, as gpt-oss alternates)", 1),
	pTied:            bp("tied_embeddings", "LM head shares the input embedding matrix", false),
	pDtypeBytes:      ip("dtype_bytes", "B", "bytes per weight and activation value (2 = fp16)", 2),

	pHardware:         sp("hardware", "hardware preset; unset hardware parameters come from it", "neupims", nil),
	pNPUConfig:        filep("npu_config", "NeuPIMs NPU JSON; its values fill unset hardware parameters"),
	pMemConfig:        filep("mem_config", "NeuPIMs memory JSON; its values fill unset hardware parameters"),
	pClockMHz:         fp("clock_mhz", "MHz", "NPU core clock: the cycles of every cycles_* metric and of link_latency_cycles", 1000),
	pArrayH:           ip("array_height", "PE", "systolic array height (token rows per tile)", 128),
	pArrayW:           ip("array_width", "PE", "systolic array width (output columns per tile)", 128),
	pArrays:           ip("arrays", "", "systolic arrays working on one GEMM; a tile is issued every array_height/arrays cycles", 8),
	pSRAMKB:           ip("sram_kb", "KiB", "on-chip scratchpad; activations beyond it spill to HBM", 134218),
	pVectorUnits:      ip("vector_units", "", "vector pipelines", 8),
	pVectorWidth:      ip("vector_width", "lanes", "lanes per vector pipeline", 128),
	pHBMChannels:      ip("hbm_channels", "", "HBM channels (one PIM unit each)", 32),
	pHBMBytesPerCycle: fp("hbm_bytes_per_cycle", "B/cycle", "bandwidth of one HBM channel per DRAM cycle (dram_mhz)", 32),
	pDRAMMHz:          fp("dram_mhz", "MHz", "HBM clock (NeuPIMs' dram_freq): DRAM and PIM timings, pim_*_cycles and hbm_bytes_per_cycle count its cycles, so clock_mhz leaves memory time in seconds alone", 1000),
	pPIM:              bp("pim", "decode attention runs in HBM-PIM (else on the NPU, reading the KV cache from HBM)", true),
	pPIMGwrite:        ip("pim_gwrite_cycles", "DRAM cycle", "PIM GWRITE (broadcast a query/score page to the banks): tRP + tRCDRD + (tCCD_S + tCCD_L)·32 of the HBM2 PIM .ini", 124),
	pPIMGemv:          ip("pim_gemv_cycles", "DRAM cycle", "fixed part of a PIM GEMV tile (precharge 32 banks, tRP, one G_ACT per bank group tFAW apart, tRCDRD, tRTP of the HBM2 PIM .ini); each further COMPS_READRES of a tile adds tCCD·(max(COMPs,6)+1)", 157),
	pLinkGBps:         fp("link_gbps", "GB/s", "host link bandwidth for expert loads (PCIe Gen4 x16 ~ 32)", 32),
	pLinkLatency:      ip("link_latency_cycles", "cycle", "fixed latency per expert load, in core cycles", 5000),
	pResident:         ip("resident_experts", "", "experts per MoE layer kept on the device: the most popular (the lowest-numbered for uniform and zipf routing, the ones a routing trace picks most); the others are loaded over the link when active", 8),
	pOverlap:          bp("overlap_loads", "expert loads overlap expert compute (double buffering) instead of running before it", false),
	pSubBatch:         bp("sub_batch", "NeuPIMs' sub-batch mode: the batch splits in two halves (per channel), and the array works on one while PIM runs the other's attention; needs pim (without it the array would wait for itself, so it changes nothing)", false),

	pBatch:        ipDerived("batch_size", "token", "decode tokens (requests) per iteration; unset = rows of seq_trace, else 512"),
	pSeqLen:       ip("seq_len", "token", "KV-cache length of every request when no seq_trace is given", 512),
	pSeqTrace:     filep("seq_trace", "NeuPIMs request trace CSV (seq_len,ch_idx); request i uses row i mod rows"),
	pRouting:      sp("routing", "token-to-expert routing: uniform, zipf (skew routing_skew, expert i has weight 1/(i+1)^skew) or trace", "uniform", routingKinds),
	pSkew:         fp("routing_skew", "", "Zipf exponent for routing = zipf", 1),
	pRoutingTrace: filep("routing_trace", "routing trace CSV (layer_id,token_id,expert_0..expert_{E-1} probabilities); MoE layer l routes by the trace's layer l mod its layers (in order of first appearance), token i by row i mod that layer's rows"),
	pSeed:         ip("seed", "", "random seed of the routing (each MoE layer draws its own sample from it)", 1),
}
