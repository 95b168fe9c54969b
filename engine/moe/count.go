package moe

// Parameter counts. All counts are numbers of weights (elements), for the
// whole model (not one tensor-parallel shard). Notation: d = d_model,
// H = n_heads, KV = n_kv_heads, hd = head_dim, V = vocab_size, E =
// num_experts, m = FFN matrices (2 gelu, 3 swiglu/geglu).
//
// The defaults (no biases, norm = none) count weight matrices only, as
// NeuPIMs and the seed document do; real models switch on the biases and
// norms they have.

// counts is the parameter breakdown of a model.
type counts struct {
	attention   int64 // per layer: see attentionParams
	norms       int64 // per layer: norms_per_layer norms of width d
	denseFFN    int64 // one dense FFN of width d_ff: see ffnParams
	router      int64 // per MoE layer: d·E (+ E with router_bias)
	perExpert   int64 // one routed expert of width d_ff_expert: see ffnParams
	experts     int64 // E·perExpert
	sharedFFN   int64 // shared experts: shared·ffnParams(d_ff_shared) (+ d for the shared-expert gate)
	moeFFN      int64 // experts + router + shared
	layerMoE    int64 // attention + norms + moeFFN
	layerDense  int64 // attention + norms + denseFFN
	activeLayer int64 // per MoE layer, per token: attention + norms + router + top_k·perExpert + shared
	moeLayers   int64 // layers with a MoE FFN
	denseLayers int64 // layers with a dense FFN (n_layers − moeLayers)
	embedding   int64 // V·d (input embedding)
	head        int64 // LM head: V·d if untied (else shared with the embedding) + V with lm_head_bias
	finalNorm   int64 // one norm of width d
	total       int64 // embedding + head + dense layers + MoE layers + final norm
	active      int64 // per token: embedding + head + layers' active weights + final norm
	nonEmbed    int64 // total − embedding − head
}

// normParams is the weight count of one norm over n elements: n (rmsnorm,
// layernorm_nobias), 2·n (layernorm: weight and bias), 0 (none).
func (c *config) normParams(n int64) int64 {
	switch c.norm {
	case "layernorm":
		return 2 * n
	case "rmsnorm", "layernorm_nobias":
		return n
	}
	return 0
}

// ffnParams is one FFN of hidden width w: m·d·w weights, plus with ffn_bias
// (m−1)·w + d biases (one per output of every matrix).
func ffnParams(c *config, width int64) int64 {
	m := c.ffnMatrices()
	n := m * c.dModel * width
	if c.ffnBias {
		n += (m-1)*width + c.dModel
	}
	return n
}

// attentionParams is one layer's attention.
//
// Grouped-query attention, with q = H·hd and kv = KV·hd:
//
//	Q d·q + K, V 2·d·kv + O q·d
//	(+ q + 2·kv with qkv_bias, + d with out_bias)
//	(+ QK-norm: 2·hd for qk_norm = head, q + kv for full)
//	(+ H sink logits with attn_sinks)
//
// Multi-head latent attention (kv_lora_rank r > 0), with query head
// qh = qk_nope_head_dim + qk_rope_head_dim, q_lora_rank rq, v = v_head_dim:
//
//	queries   rq = 0: d·H·qh;  rq > 0: d·rq + rq (latent RMSNorm) + rq·H·qh
//	keys/vals d·(r + qk_rope_head_dim) + r (latent RMSNorm) + r·H·(qk_nope_head_dim + v)
//	output    H·v·d
//	(+ the down projections' biases with qkv_bias, + d with out_bias)
//
// QK-norm and MLA latent norms are RMSNorms (one weight per element) in
// every model that has them, whatever `norm` says.
func (c *config) attentionParams() int64 {
	d, H := c.dModel, c.nHeads
	var n int64
	if c.mla() {
		qh := c.qkNope + c.qkRope
		if c.qLoRA > 0 {
			n += d*c.qLoRA + c.qLoRA + c.qLoRA*H*qh
			if c.qkvBias {
				n += c.qLoRA
			}
		} else {
			n += d * H * qh
			if c.qkvBias {
				n += H * qh
			}
		}
		n += d*(c.kvLoRA+c.qkRope) + c.kvLoRA + c.kvLoRA*H*(c.qkNope+c.vHead)
		if c.qkvBias {
			n += c.kvLoRA + c.qkRope
		}
		n += H * c.vHead * d
	} else {
		q := H * c.headDim
		kv := c.nKV * c.headDim
		n = d*q + 2*d*kv + q*d
		if c.qkvBias {
			n += q + 2*kv
		}
		switch c.qkNorm {
		case "head":
			n += 2 * c.headDim
		case "full":
			n += q + kv
		}
	}
	if c.outBias {
		n += d
	}
	if c.sinks {
		n += H
	}
	return n
}

func (c *config) counts() counts {
	var k counts
	d := c.dModel
	k.attention = c.attentionParams()
	k.norms = c.normsPerLayer * c.normParams(d)
	k.finalNorm = c.normParams(d)
	k.denseFFN = ffnParams(c, c.dFF)
	k.layerDense = k.attention + k.norms + k.denseFFN
	k.moeLayers = c.moeLayers()
	if c.E > 0 {
		k.router = d * c.E
		if c.routerBias {
			k.router += c.E
		}
		k.perExpert = ffnParams(c, c.dFFE)
		k.experts = c.E * k.perExpert
		if c.shared > 0 {
			k.sharedFFN = c.shared * ffnParams(c, c.dFFShared)
			if c.sharedGate {
				k.sharedFFN += d
			}
		}
		k.moeFFN = k.experts + k.router + k.sharedFFN
		k.layerMoE = k.attention + k.norms + k.moeFFN
		k.activeLayer = k.attention + k.norms + k.router + c.K*k.perExpert + k.sharedFFN
	}
	k.denseLayers = c.nLayers - k.moeLayers
	k.embedding = c.vocab * d
	if !c.tied {
		k.head = c.vocab * d
	}
	if c.headBias {
		k.head += c.vocab
	}
	layers := k.denseLayers*k.layerDense + k.moeLayers*k.layerMoE
	activeLayers := k.denseLayers*k.layerDense + k.moeLayers*k.activeLayer
	k.total = k.embedding + k.head + layers + k.finalNorm
	k.active = k.embedding + k.head + activeLayers + k.finalNorm
	k.nonEmbed = k.total - k.embedding - k.head
	return k
}
