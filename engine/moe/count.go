package moe

// Parameter counts. All counts are numbers of weights (elements), for the
// whole model (not one tensor-parallel shard).

// counts is the parameter breakdown of a model.
type counts struct {
	attention   int64 // per layer: Q d·H·hd + K,V 2·d·KV·hd + O H·hd·d (+ biases H·hd + 2·KV·hd + d)
	norms       int64 // per layer: 2 norms of d (rmsnorm) or 2·d (layernorm)
	denseFFN    int64 // one dense FFN: m·d·d_ff (+ biases (m−1)·d_ff + d), m = 2 GELU, 3 SwiGLU
	router      int64 // per MoE layer: d·E
	perExpert   int64 // one expert: m·d·d_ff_expert (+ biases (m−1)·d_ff_expert + d)
	experts     int64 // E·perExpert
	sharedFFN   int64 // shared experts: shared·(m·d·d_ff_shared (+ biases))
	moeFFN      int64 // experts + router + shared
	layerMoE    int64 // attention + norms + moeFFN
	layerDense  int64 // attention + norms + denseFFN
	activeLayer int64 // per MoE layer, per token: attention + norms + router + top_k·perExpert + shared
	embedding   int64 // V·d (input embedding)
	head        int64 // V·d if untied, else 0 (shared with the embedding)
	finalNorm   int64 // d (rmsnorm), 2·d (layernorm), 0 (none)
	total       int64 // embedding + head + dense layers + MoE layers + final norm
	active      int64 // per token: embedding + head + layers' active weights + final norm
	nonEmbed    int64 // total − embedding − head
}

func ffnParams(c *config, width int64) int64 {
	m := c.ffnMatrices()
	n := m * c.dModel * width
	if c.biases {
		n += (m-1)*width + c.dModel
	}
	return n
}

func (c *config) counts() counts {
	var k counts
	d := c.dModel
	q := c.nHeads * c.headDim
	kv := c.nKV * c.headDim
	k.attention = d*q + 2*d*kv + q*d
	if c.biases {
		k.attention += q + 2*kv + d
	}
	switch c.norm {
	case "layernorm":
		k.norms, k.finalNorm = 4*d, 2*d
	case "rmsnorm":
		k.norms, k.finalNorm = 2*d, d
	}
	k.denseFFN = ffnParams(c, c.dFF)
	k.layerDense = k.attention + k.norms + k.denseFFN
	moeLayers := int64(0)
	if c.E > 0 {
		k.router = d * c.E
		k.perExpert = ffnParams(c, c.dFFE)
		k.experts = c.E * k.perExpert
		if c.shared > 0 {
			k.sharedFFN = c.shared * ffnParams(c, c.dFFShared)
		}
		k.moeFFN = k.experts + k.router + k.sharedFFN
		k.layerMoE = k.attention + k.norms + k.moeFFN
		k.activeLayer = k.attention + k.norms + k.router + c.K*k.perExpert + k.sharedFFN
		moeLayers = c.nLayers - c.denseLayers
	}
	denseLayers := c.nLayers - moeLayers
	k.embedding = c.vocab * d
	if !c.tied {
		k.head = c.vocab * d
	}
	k.total = k.embedding + k.head + denseLayers*k.layerDense + moeLayers*k.layerMoE + k.finalNorm
	k.active = k.embedding + k.head + denseLayers*k.layerDense + moeLayers*k.activeLayer + k.finalNorm
	k.nonEmbed = k.total - k.embedding - k.head
	return k
}
