package moe

// Architecture-specific pieces of the timing model (timing.go holds the
// shared machinery): the attention projections of grouped-query and
// multi-head latent attention, QK-norm, the attention shape the PIM/NPU
// attention stage sees, and shared experts with their gate. Sizes are
// elements; heads are the n_heads/tp heads of one device. Biases, norm
// weights, sink logits and router biases add vector work of one element per
// output, which the vector passes around each GEMM already cover; they are
// not modelled separately.
//
// Multi-head latent attention is modelled in its absorbed decode form (as
// DeepSeek serves it): W_UK is folded into the query and W_UV applied after
// attention, so the cache holds only the latent c_KV (kv_lora_rank r) and the
// shared rotary key (qk_rope_head_dim ρ) per token, and every head attends
// over that one latent like multi-query attention with score width r + ρ and
// value width r. The latent is replicated, not split, over tp devices.

// attnShape returns the per-head score width qk, the per-head value width v
// and the cached elements per token and layer on one device:
//
//	GQA: qk = v = head_dim, cache = 2·kvHeads·head_dim
//	MLA: qk = kv_lora_rank + qk_rope_head_dim, v = kv_lora_rank,
//	     cache = kv_lora_rank + qk_rope_head_dim
func (c *config) attnShape(kvHeads int64) (qk, v, cache int64) {
	if c.mla() {
		return c.kvLoRA + c.qkRope, c.kvLoRA, c.kvLoRA + c.qkRope
	}
	return c.headDim, c.headDim, 2 * kvHeads * c.headDim
}

// kvCacheWidth is the cached elements per token and layer of the whole
// model: 2·n_kv_heads·head_dim (GQA) or kv_lora_rank + qk_rope_head_dim
// (MLA).
func (c *config) kvCacheWidth() int64 {
	_, _, w := c.attnShape(c.nKV)
	return w
}

// qkvProjection adds stage A's projections of the batch B (after the input
// norm).
//
// GQA: one GEMM [B,d]×[d,(heads + 2·kvHeads)·head_dim], then with QK-norm
// an RMSNorm pass over B·(heads + kvHeads)·head_dim elements.
//
// MLA, with qh = qk_nope_head_dim + qk_rope_head_dim:
//
//	queries  q_lora_rank rq > 0: [B,d]×[d,rq], RMSNorm over B·rq, [B,rq]×[rq,heads·qh]
//	         rq = 0:             [B,d]×[d,heads·qh]
//	latent   [B,d]×[d,r+ρ], RMSNorm over B·r
//	absorb   heads × [B,qk_nope_head_dim]×[qk_nope_head_dim,r] (query into the latent space)
func (c *config) qkvProjection(t *tally) {
	B, d := c.batch, c.dModel
	heads := ceilDiv(c.nHeads, c.tp)
	if !c.mla() {
		kvHeads := ceilDiv(c.nKV, c.tp)
		c.gemm(t, B, d, (heads+2*kvHeads)*c.headDim)
		if c.qkNorm != "none" {
			c.layerNorm(t, B, (heads+kvHeads)*c.headDim)
		}
		return
	}
	qh := c.qkNope + c.qkRope
	if c.qLoRA > 0 {
		c.gemm(t, B, d, c.qLoRA)
		c.layerNorm(t, B, c.qLoRA)
		c.gemm(t, B, c.qLoRA, heads*qh)
	} else {
		c.gemm(t, B, d, heads*qh)
	}
	c.gemm(t, B, d, c.kvLoRA+c.qkRope)
	c.layerNorm(t, B, c.kvLoRA)
	c.gemms(t, heads, B, c.qkNope, c.kvLoRA)
}

// outProjection adds the attention output projection of the batch B.
//
// GQA: [B,heads·head_dim]×[heads·head_dim,d].
// MLA: heads × [B,r]×[r,v_head_dim] (W_UV), then [B,heads·v_head_dim]×[heads·v_head_dim,d].
func (c *config) outProjection(t *tally) {
	B, d := c.batch, c.dModel
	heads := ceilDiv(c.nHeads, c.tp)
	if !c.mla() {
		c.gemm(t, B, heads*c.headDim, d)
		return
	}
	c.gemms(t, heads, B, c.kvLoRA, c.vHead)
	c.gemm(t, B, heads*c.vHead, d)
}

// sharedExperts adds the always-active shared experts over the whole batch:
// one FFN of width shared_experts·d_ff_shared (the shared experts side by
// side), and with shared_expert_gate the gate GEMM [B,d]×[d,1] and the
// scaling of B·d outputs.
func (c *config) sharedExperts(t *tally) {
	c.ffn(t, c.batch, c.shared*c.dFFShared)
	if c.sharedGate {
		c.gemm(t, c.batch, c.dModel, 1)
		c.vector(t, c.batch*c.dModel, c.batch, c.dModel, c.batch, c.dModel, costAct)
	}
}

// gemms adds n GEMMs [T,K]×[K,N] one after another (MLA's per-head
// absorptions): the first after the ops before it, the other n−1 each
// after a GEMM, which leaves no backlog, so they cost the same and are
// timed once.
func (c *config) gemms(t *tally, n, T, K, N int64) {
	if n <= 0 {
		return
	}
	c.gemm(t, T, K, N)
	if n > 1 {
		var u tally
		c.gemm(&u, T, K, N)
		t.add(&u, n-1)
	}
}
