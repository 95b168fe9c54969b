package moe

import "github.com/sweep-dse/sweep/engine"

// Metric positions in an output vector, in the order of Metrics().
const (
	mParamsAttention = iota
	mParamsRouter
	mParamsPerExpert
	mParamsExperts
	mParamsShared
	mParamsMoEFFN
	mParamsDenseFFN
	mParamsNorms
	mParamsLayer
	mParamsActive
	mActiveRatio
	mParamsEmbedding
	mParamsTotal
	mParamsActiveTotal
	mParamsActiveNoEmb
	mParamsNonEmbedding
	mActDense
	mActMoE
	mActUnsliced
	mExpertsActive
	mTokensMax
	mTokensMean
	mLoadImbalance
	mTokensAssigned
	mTokensDropped
	mExpertCapacity
	mLinkBytesPerExpert
	mLinkCyclesPerExpert
	mExpertsLoaded
	mLinkBytes
	mFlops
	mMACs
	mHBMBytes
	mPIMBytes
	mCyclesQKV
	mCyclesAttention
	mCyclesProj
	mCyclesFFN
	mCyclesRouter
	mCyclesExperts
	mCyclesLoads
	mCyclesLayer
	mCyclesTotal
	mLatency
	mTokensPerS
	mUtilization
	mRoofline
	mBound
	mMoELayers
	mSlidingLayers
	mParamsLayerDense
	mKVBytesPerToken
	nMetrics
)

func im(name, unit, doc string) engine.Field {
	return engine.Field{Name: name, Kind: engine.Int, Unit: unit, Doc: doc}
}

func fm(name, unit, doc string) engine.Field {
	return engine.Field{Name: name, Kind: engine.Float, Unit: unit, Doc: doc}
}

var metricTable = [nMetrics]engine.Field{
	mParamsAttention:     im("params_attention", "param", "attention weights per layer: Q, K, V, O (+ biases)"),
	mParamsRouter:        im("params_router", "param", "router weights per MoE layer: d_model·num_experts"),
	mParamsPerExpert:     im("params_per_expert", "param", "one expert: m·d_model·d_ff_expert, m = 2 (gelu) or 3 (swiglu) (+ biases)"),
	mParamsExperts:       im("params_experts", "param", "all routed experts of one layer"),
	mParamsShared:        im("params_shared", "param", "shared experts of one layer"),
	mParamsMoEFFN:        im("params_moe_ffn", "param", "MoE FFN of one layer: experts + router + shared"),
	mParamsDenseFFN:      im("params_dense_ffn", "param", "the dense FFN of width d_ff, for comparison"),
	mParamsNorms:         im("params_norms", "param", "norm weights per layer"),
	mParamsLayer:         im("params_layer", "param", "one MoE layer (dense layer if num_experts = 0): attention + norms + FFN"),
	mParamsActive:        im("params_active", "param", "weights one token uses in one MoE layer: attention + norms + router + top_k experts + shared"),
	mActiveRatio:         fm("active_ratio", "", "params_active / params_layer"),
	mParamsEmbedding:     im("params_embedding", "param", "input embedding + untied LM head"),
	mParamsTotal:         im("params_total", "param", "whole model: embeddings + all layers + final norm"),
	mParamsActiveTotal:   im("params_active_total", "param", "weights one token uses in the whole model, input embedding and LM head counted"),
	mParamsActiveNoEmb:   im("params_active_total_no_embedding", "param", "params_active_total without the input embedding"),
	mParamsNonEmbedding:  im("params_non_embedding", "param", "params_total without embedding and LM head"),
	mActDense:            im("act_bytes_dense_ffn", "B", "dense FFN activations: batch·(d_model + m·d_ff)·dtype_bytes"),
	mActMoE:              im("act_bytes_moe", "B", "token-sliced MoE activations: Σ_e tokens_e·(d_model + m·d_ff_expert)·dtype_bytes (per MoE layer, mean) + shared_experts·batch·(d_model + m·d_ff_shared)·dtype_bytes"),
	mActUnsliced:         im("act_bytes_moe_unsliced", "B", "MoE activations if every expert took the whole batch: E·batch·(d_model + m·d_ff_expert)·dtype_bytes + the shared experts' term of act_bytes_moe"),
	mExpertsActive:       fm("experts_active", "", "experts with at least one token, per MoE layer (mean over the MoE layers, each routed on its own)"),
	mTokensMax:           fm("tokens_per_expert_max", "token", "most tokens routed to one expert, per MoE layer (mean over the MoE layers)"),
	mTokensMean:          fm("tokens_per_expert_mean", "token", "mean tokens per active expert"),
	mLoadImbalance:       fm("load_imbalance", "", "tokens_per_expert_max / (tokens_assigned / num_experts)"),
	mTokensAssigned:      fm("tokens_assigned", "token", "token-expert pairs processed per MoE layer (mean over the MoE layers)"),
	mTokensDropped:       fm("tokens_dropped", "token", "token-expert pairs over capacity per MoE layer, mean (tokens_assigned + tokens_dropped = batch·top_k)"),
	mExpertCapacity:      im("expert_capacity", "token", "tokens one expert accepts; 0 = dropless"),
	mLinkBytesPerExpert:  im("link_bytes_per_expert", "B", "bytes of one expert over the host link: params_per_expert·dtype_bytes"),
	mLinkCyclesPerExpert: im("link_cycles_per_expert", "cycle", "ceil(link_bytes_per_expert / link bytes per cycle) + link_latency_cycles"),
	mExpertsLoaded:       fm("experts_loaded", "", "active, non-resident experts loaded per MoE layer (mean over the MoE layers)"),
	mLinkBytes:           im("link_bytes", "B", "host-link bytes per iteration, all layers"),
	mFlops:               im("flops", "FLOP", "floating-point operations per iteration on one device"),
	mMACs:                im("macs", "MAC", "systolic-array multiply-accumulates per iteration"),
	mHBMBytes:            im("hbm_bytes", "B", "bytes between HBM and the NPU per iteration"),
	mPIMBytes:            im("pim_bytes", "B", "KV-cache bytes read inside HBM by PIM per iteration"),
	mCyclesQKV:           im("cycles_qkv", "cycle", "stage A, all layers: LayerNorm + QKV GEMM"),
	mCyclesAttention:     im("cycles_attention", "cycle", "stage B, all layers: attention (on PIM: the busiest channel, logit-softmax and attend; without PIM: the NPU vector units, then the softmax)"),
	mCyclesProj:          im("cycles_proj", "cycle", "all layers: projection GEMM, residual adds, LayerNorm"),
	mCyclesFFN:           im("cycles_ffn", "cycle", "dense FFNs and shared experts, all layers"),
	mCyclesRouter:        im("cycles_router", "cycle", "router GEMM, softmax and top-k, all MoE layers"),
	mCyclesExperts:       im("cycles_experts", "cycle", "routed experts (dispatch, FC1, activation, FC2, combine), all MoE layers"),
	mCyclesLoads:         im("cycles_loads", "cycle", "expert-load cycles not hidden behind compute, all MoE layers"),
	mCyclesLayer:         im("cycles_layer", "cycle", "one MoE layer (dense layer if num_experts = 0); with sub_batch the steady-state stages C + D of one"),
	mCyclesTotal:         im("cycles_total", "cycle", "one decode iteration, all layers (with sub_batch: its overlapped stages, less than the sum of the per-op cycles)"),
	mLatency:             fm("latency_s", "s", "cycles_total / clock"),
	mTokensPerS:          fm("tokens_per_s", "token/s", "batch_size / latency_s"),
	mUtilization:         fm("array_utilization", "", "macs / (cycles_total · peak MACs per cycle)"),
	mRoofline:            fm("roofline_latency_s", "s", "max(macs / peak, hbm_bytes / HBM bandwidth, link_bytes / link bandwidth) / clock; latency_s never beats it"),
	mBound:               {Name: "bound", Kind: engine.String, Doc: "which roofline term is largest: compute, memory or link"},
	mMoELayers:           im("moe_layers", "", "layers with a MoE FFN (the others are dense)"),
	mSlidingLayers:       im("sliding_layers", "", "layers with sliding-window attention: ceil(sliding_fraction·n_layers), 0 without sliding_window"),
	mParamsLayerDense:    im("params_layer_dense", "param", "one dense layer: attention + norms + dense FFN"),
	mKVBytesPerToken:     im("kv_cache_bytes_per_token", "B", "KV cache of one token, all layers, whole model: n_layers·(2·n_kv_heads·head_dim, or kv_lora_rank + qk_rope_head_dim under MLA)·dtype_bytes"),
}
