package moe

import (
	"fmt"
	"path/filepath"

	"github.com/sweep-dse/sweep/engine"
)

// ModelCounts is a model's parameter count under every convention, with its
// per-layer breakdown. All counts are numbers of weights.
type ModelCounts struct {
	Name   string // preset name, or the config file's path
	Source string // where the shape comes from
	Arch   Arch   // the resolved architecture

	Total                  int64 // every weight: embedding, LM head, layers, final norm
	Active                 int64 // weights one token uses, input embedding and LM head counted
	ActiveNoInputEmbedding int64 // Active without the input embedding (LM head counted)
	NonEmbedding           int64 // Total without the input embedding and the LM head
	Embedding              int64 // input embedding: vocab_size·d_model
	Head                   int64 // LM head: vocab_size·d_model if untied (+ vocab_size with lm_head_bias)
	FinalNorm              int64 // the norm after the last layer

	MoELayers, DenseLayers int64      // how many layers of each kind
	Layer                  LayerCount // one layer of each kind

	Published Published // the publisher's figures (presets only)
}

// LayerCount is the parameter breakdown of one layer.
type LayerCount struct {
	Attention int64 // Q, K, V, O (MLA: its projections and latent norms), biases, QK-norm, sinks
	Norms     int64 // the layer's norms_per_layer norms
	DenseFFN  int64 // the dense FFN of width d_ff (dense layers)
	Router    int64 // router (+ bias)
	PerExpert int64 // one routed expert
	Experts   int64 // all routed experts
	Shared    int64 // shared experts (+ their gate)
	MoE       int64 // one MoE layer: attention + norms + router + experts + shared
	Dense     int64 // one dense layer: attention + norms + dense FFN
	MoEActive int64 // weights one token uses in a MoE layer: attention + norms + router + top_k experts + shared
}

// Arch is the resolved model architecture of a count.
type Arch struct {
	DModel, Heads, KVHeads, HeadDim, Layers, Vocab, DFF int64
	QLoRARank, KVLoRARank, QKNopeHeadDim                int64 // multi-head latent attention; KVLoRARank 0 = GQA
	QKRopeHeadDim, VHeadDim                             int64
	FFN                                                 string // gelu, swiglu or geglu
	Experts, TopK, DFFExpert, Shared, DFFShared         int64
	DenseLayers, MoELayerFreq                           int64
	Norm                                                string
	QKNorm                                              string
	Tied                                                bool
}

// CountPreset counts the built-in model preset called name.
func CountPreset(name string) (ModelCounts, error) {
	pre, ok := modelPresets[name]
	if !ok {
		return ModelCounts{}, fmt.Errorf("unknown model preset %q (see `sweep models`)", name)
	}
	mc, err := countPoint("", map[int]engine.Value{pModel: engine.StringV(name)})
	if err != nil {
		return ModelCounts{}, err
	}
	mc.Name, mc.Source, mc.Published = name, pre.Source, pre.Published
	return mc, nil
}

// CountConfig counts the model of a config file: a Hugging Face config.json
// or a NeuPIMs model config. Errors are *engine.FileError or
// *engine.ParamError.
func CountConfig(path string) (ModelCounts, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return ModelCounts{}, &engine.FileError{Path: path, Msg: "cannot resolve path", Err: err}
	}
	mc, err := countPoint(filepath.Dir(abs), map[int]engine.Value{pModelConfig: engine.StringV(filepath.Base(abs))})
	if err != nil {
		return ModelCounts{}, err
	}
	mc.Name, mc.Source = path, path
	return mc, nil
}

// countPoint resolves a point with the given values set and counts its model.
func countPoint(dir string, set map[int]engine.Value) (ModelCounts, error) {
	e := New()
	p := make([]engine.Value, nParams)
	for i, v := range set {
		p[i] = v
	}
	if err := e.Resolve(dir, p); err != nil {
		return ModelCounts{}, err
	}
	c := e.config(p)
	return modelCounts(&c), nil
}

func modelCounts(c *config) ModelCounts {
	k := c.counts()
	return ModelCounts{
		Arch: Arch{
			DModel: c.dModel, Heads: c.nHeads, KVHeads: c.nKV, HeadDim: c.headDim, Layers: c.nLayers,
			Vocab: c.vocab, DFF: c.dFF, QLoRARank: c.qLoRA, KVLoRARank: c.kvLoRA, QKNopeHeadDim: c.qkNope,
			QKRopeHeadDim: c.qkRope, VHeadDim: c.vHead, FFN: c.ffnKind, Experts: c.E, TopK: c.K,
			DFFExpert: c.dFFE, Shared: c.shared, DFFShared: c.dFFShared, DenseLayers: c.denseLayers,
			MoELayerFreq: c.moeFreq, Norm: c.norm, QKNorm: c.qkNorm, Tied: c.tied,
		},
		Total:                  k.total,
		Active:                 k.active,
		ActiveNoInputEmbedding: k.active - k.embedding*b2i(!c.tied),
		NonEmbedding:           k.nonEmbed,
		Embedding:              k.embedding,
		Head:                   k.head,
		FinalNorm:              k.finalNorm,
		MoELayers:              k.moeLayers,
		DenseLayers:            k.denseLayers,
		Layer: LayerCount{
			Attention: k.attention, Norms: k.norms, DenseFFN: k.denseFFN, Router: k.router,
			PerExpert: k.perExpert, Experts: k.experts, Shared: k.sharedFFN, MoE: k.layerMoE,
			Dense: k.layerDense, MoEActive: k.activeLayer,
		},
	}
}

// Count returns the model's count under convention cv.
func (m *ModelCounts) Count(cv Convention) int64 {
	switch cv {
	case Total:
		return m.Total
	case NonEmbedding:
		return m.NonEmbedding
	case Active:
		return m.Active
	case ActiveNoInputEmbedding:
		return m.ActiveNoInputEmbedding
	}
	return 0
}
