package moe

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/sweep-dse/sweep/engine"
)

// This file reads Hugging Face transformers config.json files of MoE models.
// The field names and their defaults follow the transformers configuration
// classes of each model_type (MixtralConfig, Qwen2MoeConfig, ...); the
// architecture facts a config.json does not state (which projections carry
// biases, the norm kind, QK-norm, shared-expert gates, sinks) follow the
// matching modeling code.

// hfLoaders maps a supported model_type to its reader.
var hfLoaders = map[string]func(h *hfReader){
	"mixtral":     hfMixtral,
	"phimoe":      hfPhimoe,
	"qwen2_moe":   hfQwen2MoE,
	"qwen3_moe":   hfQwen3MoE,
	"olmoe":       hfOLMoE,
	"deepseek_v2": hfDeepSeek,
	"deepseek_v3": hfDeepSeek,
	"dbrx":        hfDBRX,
	"gpt_oss":     hfGptOss,
}

// HFModelTypes returns the Hugging Face model_type values the importer
// reads, sorted.
func HFModelTypes() []string {
	t := make([]string, 0, len(hfLoaders))
	for k := range hfLoaders {
		t = append(t, k)
	}
	sort.Strings(t)
	return t
}

// hfReader reads one config.json object (or a nested one, such as DBRX's
// attn_config) into parameter values.
type hfReader struct {
	*jsonReader
	modelType string
	prefix    string // "attn_config." for nested objects, for messages
	out       map[string]engine.Value
	missing   *[]string
	children  *[]*hfReader // nested readers, whose errors count as this file's
}

// raw returns a key's JSON text, or "" when the key is absent or null.
func (h *hfReader) raw(key string) string {
	b, ok := h.m[key]
	if !ok {
		return ""
	}
	s := strings.TrimSpace(string(b))
	if s == "null" {
		return ""
	}
	return s
}

// has reports whether key is present and not null.
func (h *hfReader) has(key string) bool { return h.raw(key) != "" }

// count reads a non-negative integer key; def when absent or null. A required
// key that is absent or null is recorded as missing.
func (h *hfReader) count(key string, required bool, def int64) int64 {
	if !h.has(key) {
		if required {
			*h.missing = append(*h.missing, h.prefix+key)
		}
		return def
	}
	v, ok := h.integer(key)
	if !ok {
		return def
	}
	if v < 0 || (required && v == 0) {
		h.fail(key, fmt.Sprintf("must be positive, got %d", v))
		return def
	}
	return v
}

// flag reads a boolean key; def when absent or null.
func (h *hfReader) flag(key string, def bool) bool {
	if !h.has(key) {
		return def
	}
	b, _ := h.boolean(key)
	return b
}

// text reads a string key; def when absent or null.
func (h *hfReader) text(key, def string) string {
	if !h.has(key) {
		return def
	}
	s, _ := h.str(key)
	return s
}

// object returns a reader of a nested object; an absent or null key gives an
// empty object.
func (h *hfReader) object(key string) *hfReader {
	sub := &hfReader{jsonReader: &jsonReader{path: h.path, data: h.data, m: map[string]json.RawMessage{}},
		modelType: h.modelType, prefix: h.prefix + key + ".", out: h.out, missing: h.missing, children: h.children}
	*h.children = append(*h.children, sub)
	if h.has(key) {
		if err := json.Unmarshal(h.m[key], &sub.m); err != nil {
			h.fail(key, "want an object, got "+h.raw(key))
		}
	}
	return sub
}

// failed reports the first error of this reader or of a nested one.
func (h *hfReader) failed() error {
	if h.err != nil {
		return h.err
	}
	for _, c := range *h.children {
		if c.err != nil {
			return c.err
		}
	}
	return nil
}

func (h *hfReader) setInt(param string, v int64) { h.out[param] = engine.IntV(v) }
func (h *hfReader) setBool(param string, v bool) { h.out[param] = engine.BoolV(v) }
func (h *hfReader) setStr(param, v string)       { h.out[param] = engine.StringV(v) }

// common reads the fields every supported model_type names alike:
// hidden_size, num_attention_heads, num_hidden_layers, vocab_size (required),
// num_key_value_heads (default: the query heads), head_dim (default:
// hidden_size / heads), tie_word_embeddings (default false, the default of
// every supported configuration class) and hidden_act.
func (h *hfReader) common() {
	h.setInt("d_model", h.count("hidden_size", true, 0))
	heads := h.count("num_attention_heads", true, 0)
	h.setInt("n_heads", heads)
	h.setInt("n_layers", h.count("num_hidden_layers", true, 0))
	h.setInt("vocab_size", h.count("vocab_size", true, 0))
	h.setInt("n_kv_heads", h.count("num_key_value_heads", false, heads))
	if h.has("head_dim") {
		h.setInt("head_dim", h.count("head_dim", true, 0))
	}
	h.setBool("tied_embeddings", h.flag("tie_word_embeddings", false))
	h.activation("hidden_act", "silu")
	h.setStr("norm", "rmsnorm")
}

// activation maps an activation name to the gated FFN kind: SiLU (swish)
// gates are swiglu, GELU gates geglu. Every supported model_type gates its
// FFNs (three matrices).
func (h *hfReader) activation(key, def string) {
	act := h.text(key, def)
	switch act {
	case "silu", "swish":
		h.setStr("ffn", "swiglu")
	case "gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh", "gelu_accurate":
		h.setStr("ffn", "geglu")
	default:
		h.fail(key, fmt.Sprintf("activation %q is not supported (silu, swish, gelu, gelu_new, gelu_fast, gelu_pytorch_tanh)", act))
	}
}

// experts reads the routed experts: count, top-k and width.
func (h *hfReader) experts(numKey, topKey, widthKey string) {
	E := h.count(numKey, true, 0)
	h.setInt("num_experts", E)
	if E > 0 {
		h.setInt("top_k", h.count(topKey, true, 0))
		h.setInt("d_ff_expert", h.count(widthKey, true, 0))
	}
}

// attentionBias reads attention_bias (bias on Q, K, V and O).
func (h *hfReader) attentionBias(def bool) {
	b := h.flag("attention_bias", def)
	h.setBool("qkv_bias", b)
	h.setBool("out_bias", b)
}

// hfMixtral: MixtralForCausalLM. SwiGLU experts of width intermediate_size,
// no biases, RMSNorm.
func hfMixtral(h *hfReader) {
	h.common()
	h.setInt("d_ff", h.count("intermediate_size", true, 0))
	h.experts("num_local_experts", "num_experts_per_tok", "intermediate_size")
}

// hfPhimoe: PhimoeForCausalLM (Phi-3.5-MoE). As Mixtral, with LayerNorm
// (weight and bias), attention biases (attention_bias, default false) and a
// biased LM head (lm_head_bias, default false).
func hfPhimoe(h *hfReader) {
	hfMixtral(h)
	h.setStr("norm", "layernorm")
	h.attentionBias(false)
	h.setBool("lm_head_bias", h.flag("lm_head_bias", false))
}

// qwenLayout maps Qwen's MoE layer placement, layer i is MoE when i is not
// in mlp_only_layers and (i+1) mod decoder_sparse_step = 0, to dense_layers
// and moe_layer_freq (layer i MoE when i >= dense_layers and i mod
// moe_layer_freq = 0): the same layers if the engine's rule can state them,
// else the same number of MoE layers, with moe_layer_freq =
// decoder_sparse_step if possible (e.g. Qwen's odd layers 1, 3, 5 become
// 0, 2, 4). Which layers are MoE enters no count and no timing; how many
// does.
func (h *hfReader) qwenLayout() {
	step := h.count("decoder_sparse_step", false, 1)
	var only []int64
	if h.has("mlp_only_layers") {
		if err := json.Unmarshal(h.m["mlp_only_layers"], &only); err != nil {
			h.fail("mlp_only_layers", "want a list of layer indexes, got "+h.raw("mlp_only_layers"))
			return
		}
	}
	if step < 1 {
		h.fail("decoder_sparse_step", "must be at least 1")
		return
	}
	if step == 1 && len(only) == 0 {
		h.setInt("dense_layers", 0)
		h.setInt("moe_layer_freq", 1)
		return
	}
	L := h.out["n_layers"].I
	isMoE := func(i int64) bool {
		for _, x := range only {
			if x == i {
				return false
			}
		}
		return (i+1)%step == 0
	}
	n := int64(0)
	for i := range L {
		n += b2i(isMoE(i))
	}
	set := func(k, f int64) {
		h.setInt("dense_layers", k)
		h.setInt("moe_layer_freq", f)
	}
	for k := int64(0); k <= L; k++ {
		for f := int64(1); f <= max(L, 1); f++ {
			same := true
			for i := int64(0); i < L && same; i++ {
				same = isMoE(i) == (i >= k && i%f == 0)
			}
			if same {
				set(k, f)
				return
			}
		}
	}
	for _, f := range []int64{step, 1} {
		for k := int64(0); k <= L; k++ {
			if moeLayerCount(L, k, f, 1) == n {
				set(k, f)
				return
			}
		}
	}
	set(L, 1) // unreachable: f = 1, k = L − n always matches
}

// hfQwen2MoE: Qwen2MoeForCausalLM (Qwen1.5-MoE). Routed experts of width
// moe_intermediate_size, one shared expert of width
// shared_expert_intermediate_size behind a sigmoid gate, biases on Q, K and V
// (qkv_bias, default true) but not O.
func hfQwen2MoE(h *hfReader) {
	h.common()
	h.setInt("d_ff", h.count("intermediate_size", true, 0))
	h.experts("num_experts", "num_experts_per_tok", "moe_intermediate_size")
	if w := h.count("shared_expert_intermediate_size", false, 0); w > 0 {
		h.setInt("shared_experts", 1)
		h.setInt("d_ff_shared", w)
		h.setBool("shared_expert_gate", true)
	}
	h.setBool("qkv_bias", h.flag("qkv_bias", true))
	h.setBool("out_bias", false)
	h.qwenLayout()
}

// hfQwen3MoE: Qwen3MoeForCausalLM. Routed experts of width
// moe_intermediate_size, per-head QK-norm, attention_bias (default false).
func hfQwen3MoE(h *hfReader) {
	h.common()
	h.setInt("d_ff", h.count("intermediate_size", true, 0))
	h.experts("num_experts", "num_experts_per_tok", "moe_intermediate_size")
	h.attentionBias(false)
	h.setStr("qk_norm", "head")
	h.qwenLayout()
}

// hfOLMoE: OlmoeForCausalLM. Experts of width intermediate_size, QK-norm
// over all heads (q: n_heads·head_dim, k: n_kv_heads·head_dim weights),
// attention_bias (default false).
func hfOLMoE(h *hfReader) {
	h.common()
	h.setInt("d_ff", h.count("intermediate_size", true, 0))
	h.experts("num_experts", "num_experts_per_tok", "intermediate_size")
	h.attentionBias(false)
	h.setStr("qk_norm", "full")
}

// hfDeepSeek: DeepseekV2/V3ForCausalLM. Multi-head latent attention
// (q_lora_rank null = no query compression), first_k_dense_replace dense
// layers of width intermediate_size, then MoE layers (layer i MoE when
// i mod moe_layer_freq = 0) of n_routed_experts routed and n_shared_experts
// shared experts of width moe_intermediate_size. The router carries the
// score-correction bias when topk_method is noaux_tc (the V3 default). The
// multi-token-prediction layers (num_nextn_predict_layers) are not part of
// the model transformers loads and are not counted.
func hfDeepSeek(h *hfReader) {
	h.common()
	delete(h.out, "n_kv_heads") // MLA: no KV heads
	delete(h.out, "head_dim")
	h.setInt("d_ff", h.count("intermediate_size", true, 0))
	h.experts("n_routed_experts", "num_experts_per_tok", "moe_intermediate_size")
	if s := h.count("n_shared_experts", false, 0); s > 0 {
		h.setInt("shared_experts", s)
		h.setInt("d_ff_shared", h.count("moe_intermediate_size", true, 0))
	}
	h.setInt("dense_layers", h.count("first_k_dense_replace", false, 0))
	h.setInt("moe_layer_freq", max(1, h.count("moe_layer_freq", false, 1)))
	h.setInt("q_lora_rank", h.count("q_lora_rank", false, 0))
	h.setInt("kv_lora_rank", h.count("kv_lora_rank", true, 0))
	h.setInt("qk_nope_head_dim", h.count("qk_nope_head_dim", true, 0))
	h.setInt("qk_rope_head_dim", h.count("qk_rope_head_dim", true, 0))
	h.setInt("v_head_dim", h.count("v_head_dim", true, 0))
	h.attentionBias(false)
	def := "greedy"
	if h.modelType == "deepseek_v3" {
		def = "noaux_tc"
	}
	h.setBool("router_bias", h.text("topk_method", def) == "noaux_tc")
}

// hfDBRX: DbrxForCausalLM. Top-level d_model, n_heads, n_layers,
// vocab_size; attn_config.kv_n_heads (default 1); ffn_config.ffn_hidden_size,
// moe_num_experts, moe_top_k and ffn_act_fn.name (default silu); GLU experts,
// LayerNorm without bias, no linear biases.
func hfDBRX(h *hfReader) {
	h.setInt("d_model", h.count("d_model", true, 0))
	heads := h.count("n_heads", true, 0)
	h.setInt("n_heads", heads)
	h.setInt("n_layers", h.count("n_layers", true, 0))
	h.setInt("vocab_size", h.count("vocab_size", true, 0))
	h.setBool("tied_embeddings", h.flag("tie_word_embeddings", false))
	h.setStr("norm", "layernorm_nobias")
	attn := h.object("attn_config")
	h.setInt("n_kv_heads", attn.count("kv_n_heads", false, 1))
	ffn := h.object("ffn_config")
	w := ffn.count("ffn_hidden_size", true, 0)
	h.setInt("d_ff", w)
	E := ffn.count("moe_num_experts", true, 0)
	h.setInt("num_experts", E)
	if E > 0 {
		h.setInt("top_k", ffn.count("moe_top_k", true, 0))
		h.setInt("d_ff_expert", w)
	}
	ffn.object("ffn_act_fn").activation("name", "silu")
}

// hfGptOss: GptOssForCausalLM. Experts of width intermediate_size with
// biases (gate_up 2·w + down d per expert), a router with a bias, attention
// biases (attention_bias, default true), one sink logit per head, RMSNorm.
// Its layers alternate sliding-window (sliding_window tokens, 128) and
// full attention (layer_types; absent: the even layers slide, as in the
// transformers default).
func hfGptOss(h *hfReader) {
	h.common()
	h.setInt("d_ff", h.count("intermediate_size", true, 0))
	topKey := "num_experts_per_tok"
	if !h.has(topKey) && h.has("experts_per_token") {
		topKey = "experts_per_token"
	}
	h.experts("num_local_experts", topKey, "intermediate_size")
	h.attentionBias(true)
	h.setBool("ffn_bias", true)
	h.setBool("router_bias", true)
	h.setBool("attn_sinks", true)
	if w := h.count("sliding_window", false, 0); w > 0 {
		h.setInt("sliding_window", w)
		frac := 0.5
		if h.has("layer_types") {
			var types []string
			if err := json.Unmarshal(h.m["layer_types"], &types); err != nil {
				h.fail("layer_types", "want a list of strings, got "+h.raw("layer_types"))
			}
			n := 0
			for _, t := range types {
				if t == "sliding_attention" {
					n++
				}
			}
			if len(types) > 0 {
				frac = float64(n) / float64(len(types))
			}
		}
		h.out["sliding_fraction"] = engine.FloatV(frac)
	}
}

// loadHFConfig reads a decoded Hugging Face config.json.
func loadHFConfig(r *jsonReader) (map[string]engine.Value, error) {
	mt, _ := r.str("model_type")
	if r.err != nil {
		return nil, r.err
	}
	load, ok := hfLoaders[mt]
	if !ok {
		return nil, &engine.FileError{Path: r.path, Line: fieldLine(r.data, "model_type"),
			Msg: fmt.Sprintf("model_type %q is not supported; supported: %s", mt, strings.Join(HFModelTypes(), ", "))}
	}
	var missing []string
	var children []*hfReader
	h := &hfReader{jsonReader: r, modelType: mt, out: map[string]engine.Value{}, missing: &missing, children: &children}
	// every supported config is an MoE model: clear the NeuPIMs-style
	// defaults that would otherwise leak in
	h.setBool("biases", false)
	h.setBool("qkv_bias", false)
	h.setBool("out_bias", false)
	h.setBool("ffn_bias", false)
	h.setBool("router_bias", false)
	h.setBool("lm_head_bias", false)
	h.setBool("shared_expert_gate", false)
	h.setBool("attn_sinks", false)
	h.setStr("qk_norm", "none")
	h.setInt("shared_experts", 0)
	h.setInt("dense_layers", 0)
	h.setInt("moe_layer_freq", 1)
	h.setInt("norms_per_layer", 2)
	load(h)
	if err := h.failed(); err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		return nil, &engine.FileError{Path: r.path, Msg: fmt.Sprintf("model_type %q: missing keys %s", mt, strings.Join(missing, ", "))}
	}
	return h.out, nil
}
