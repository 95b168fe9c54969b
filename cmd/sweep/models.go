package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/sweep-dse/sweep/engine/moe"
)

// modelsOptions are the flags of `sweep models`.
type modelsOptions struct {
	Name   string // one preset; "" with Config "" lists every preset
	Config string // a Hugging Face config.json or NeuPIMs model config
	Format string // text or json
}

func runModels(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	o := modelsOptions{Format: "text"}
	fs := newFlags("models", "models [NAME] [--config FILE] [--format text|json]\n\n"+
		"Without arguments lists the model presets with their parameter counts;\n"+
		"with a preset NAME or --config FILE (a Hugging Face config.json of model_type\n"+
		strings.Join(moe.HFModelTypes(), ", ")+",\n"+
		"or a NeuPIMs model config) prints that model's counts and per-layer breakdown.\n"+
		"Counts: total_params (every weight), active_params (weights one token uses,\n"+
		"input embedding and LM head counted), active_params_no_input_embedding (the\n"+
		"LM head counted, the input embedding not), non_embedding_params (total without\n"+
		"input embedding and LM head).", stdout)
	fs.StringVar(&o.Config, "config", "", "model config `file`: Hugging Face config.json or NeuPIMs model config")
	fs.StringVar(&o.Format, "format", "text", "output `format`: text or json")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return handleHelp(fs, err)
	}
	switch {
	case len(pos) > 1:
		return usageErr(fmt.Sprintf("models: want at most one model name, got %d arguments", len(pos)))
	case len(pos) == 1 && o.Config != "":
		return usageErr("models: give a preset NAME or --config FILE, not both")
	case len(pos) == 1:
		o.Name = pos[0]
	}
	return models(stdout, o)
}

// models prints what the options ask for.
func models(w io.Writer, o modelsOptions) error {
	if o.Format != "text" && o.Format != "json" {
		return usageErr(fmt.Sprintf("models: --format %q: want text or json", o.Format))
	}
	var list []moe.ModelCounts
	switch {
	case o.Config != "":
		m, err := moe.CountConfig(o.Config)
		if err != nil {
			return err
		}
		list = append(list, m)
	case o.Name != "":
		if _, ok := moe.LookupModelPreset(o.Name); !ok {
			return usageErr(fmt.Sprintf("models: unknown model preset %q; known: %s", o.Name, strings.Join(moe.ModelPresetNames(), ", ")))
		}
		m, err := moe.CountPreset(o.Name)
		if err != nil {
			return err
		}
		list = append(list, m)
	default:
		for _, n := range moe.ModelPresetNames() {
			m, err := moe.CountPreset(n)
			if err != nil {
				return fmt.Errorf("preset %s: %w", n, err)
			}
			list = append(list, m)
		}
	}
	one := o.Config != "" || o.Name != ""
	if o.Format == "json" {
		var v any
		if one {
			v = modelJSONOf(&list[0])
		} else {
			all := make([]modelJSON, len(list))
			for i := range list {
				all[i] = modelJSONOf(&list[i])
			}
			v = all
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	if one {
		modelReport(w, &list[0])
		return nil
	}
	modelTable(w, list)
	return nil
}

// modelJSON is one model in `sweep models --format json`.
type modelJSON struct {
	Name                   string         `json:"name"`
	Source                 string         `json:"source"`
	TotalParams            int64          `json:"total_params"`
	ActiveParams           int64          `json:"active_params"`
	ActiveNoInputEmbedding int64          `json:"active_params_no_input_embedding"`
	NonEmbeddingParams     int64          `json:"non_embedding_params"`
	EmbeddingParams        int64          `json:"embedding_params"`
	LMHeadParams           int64          `json:"lm_head_params"`
	FinalNormParams        int64          `json:"final_norm_params"`
	Layers                 int64          `json:"layers"`
	MoELayers              int64          `json:"moe_layers"`
	DenseLayers            int64          `json:"dense_layers"`
	PerLayer               layerJSON      `json:"per_layer"`
	Architecture           archJSON       `json:"architecture"`
	Published              *publishedJSON `json:"published,omitempty"`
}

type layerJSON struct {
	Attention        int64 `json:"attention"`
	Norms            int64 `json:"norms"`
	Router           int64 `json:"router"`
	PerExpert        int64 `json:"per_expert"`
	Experts          int64 `json:"experts"`
	Shared           int64 `json:"shared"`
	DenseFFN         int64 `json:"dense_ffn"`
	MoELayer         int64 `json:"moe_layer"`
	DenseLayer       int64 `json:"dense_layer"`
	MoELayerActive   int64 `json:"moe_layer_active"`
	DenseLayerActive int64 `json:"dense_layer_active"`
}

type archJSON struct {
	DModel        int64  `json:"d_model"`
	Heads         int64  `json:"n_heads"`
	KVHeads       int64  `json:"n_kv_heads"`
	HeadDim       int64  `json:"head_dim"`
	Attention     string `json:"attention"`
	QLoRARank     int64  `json:"q_lora_rank,omitempty"`
	KVLoRARank    int64  `json:"kv_lora_rank,omitempty"`
	QKNopeHeadDim int64  `json:"qk_nope_head_dim,omitempty"`
	QKRopeHeadDim int64  `json:"qk_rope_head_dim,omitempty"`
	VHeadDim      int64  `json:"v_head_dim,omitempty"`
	Vocab         int64  `json:"vocab_size"`
	FFN           string `json:"ffn"`
	DFF           int64  `json:"d_ff"`
	Experts       int64  `json:"num_experts"`
	TopK          int64  `json:"top_k"`
	DFFExpert     int64  `json:"d_ff_expert"`
	Shared        int64  `json:"shared_experts"`
	DFFShared     int64  `json:"d_ff_shared"`
	MoELayerFreq  int64  `json:"moe_layer_freq"`
	Norm          string `json:"norm"`
	QKNorm        string `json:"qk_norm"`
	Tied          bool   `json:"tied_embeddings"`
}

type publishedJSON struct {
	Total          float64 `json:"total,omitempty"`
	TotalIs        string  `json:"total_is,omitempty"`
	Active         float64 `json:"active,omitempty"`
	ActiveIs       string  `json:"active_is,omitempty"`
	ActiveFraction float64 `json:"active_fraction,omitempty"`
	Source         string  `json:"source"`
}

func attentionKind(a *moe.Arch) string {
	switch {
	case a.KVLoRARank > 0:
		return "mla"
	case a.KVHeads == 1:
		return "mqa"
	case a.KVHeads < a.Heads:
		return "gqa"
	}
	return "mha"
}

func modelJSONOf(m *moe.ModelCounts) modelJSON {
	a := &m.Arch
	j := modelJSON{
		Name: m.Name, Source: m.Source,
		TotalParams: m.Total, ActiveParams: m.Active, ActiveNoInputEmbedding: m.ActiveNoInputEmbedding,
		NonEmbeddingParams: m.NonEmbedding, EmbeddingParams: m.Embedding, LMHeadParams: m.Head,
		FinalNormParams: m.FinalNorm, Layers: a.Layers, MoELayers: m.MoELayers, DenseLayers: m.DenseLayers,
		PerLayer: layerJSON{
			Attention: m.Layer.Attention, Norms: m.Layer.Norms, Router: m.Layer.Router,
			PerExpert: m.Layer.PerExpert, Experts: m.Layer.Experts, Shared: m.Layer.Shared,
			DenseFFN: m.Layer.DenseFFN, MoELayer: m.Layer.MoE, DenseLayer: m.Layer.Dense,
			MoELayerActive: m.Layer.MoEActive, DenseLayerActive: m.Layer.Dense,
		},
		Architecture: archJSON{
			DModel: a.DModel, Heads: a.Heads, KVHeads: a.KVHeads, HeadDim: a.HeadDim, Attention: attentionKind(a),
			QLoRARank: a.QLoRARank, KVLoRARank: a.KVLoRARank, QKNopeHeadDim: a.QKNopeHeadDim,
			QKRopeHeadDim: a.QKRopeHeadDim, VHeadDim: a.VHeadDim, Vocab: a.Vocab, FFN: a.FFN, DFF: a.DFF,
			Experts: a.Experts, TopK: a.TopK, DFFExpert: a.DFFExpert, Shared: a.Shared, DFFShared: a.DFFShared,
			MoELayerFreq: a.MoELayerFreq, Norm: a.Norm, QKNorm: a.QKNorm, Tied: a.Tied,
		},
	}
	if p := m.Published; p.Source != "" {
		j.Published = &publishedJSON{Total: p.Total, TotalIs: string(p.TotalIs), Active: p.Active,
			ActiveIs: string(p.ActiveIs), ActiveFraction: p.ActiveFraction, Source: p.Source}
	}
	return j
}

// billions formats a parameter count in billions with two decimals.
func billions(n int64) string { return fmt.Sprintf("%.2fB", float64(n)/1e9) }

// publishedSummary is e.g. "46.7B total (+0.01 %), 12.9B active (-0.16 %)":
// the publisher's figures and how far the matching count is from each.
func publishedSummary(m *moe.ModelCounts) string {
	p := m.Published
	if p.Source == "" {
		return ""
	}
	dev := func(cv moe.Convention, fig float64) string {
		return fmt.Sprintf("%+.2f %%", 100*(float64(m.Count(cv))-fig)/fig)
	}
	label := func(cv moe.Convention) string {
		switch cv {
		case moe.NonEmbedding:
			return "non-embedding"
		case moe.ActiveNoInputEmbedding:
			return "active w/o input emb."
		case moe.Active:
			return "active"
		}
		return "total"
	}
	s := fmt.Sprintf("%.4gB %s (%s)", p.Total/1e9, label(p.TotalIs), dev(p.TotalIs, p.Total))
	if p.Active > 0 {
		s += fmt.Sprintf(", %.4gB %s (%s)", p.Active/1e9, label(p.ActiveIs), dev(p.ActiveIs, p.Active))
	} else if p.ActiveFraction > 0 {
		s += fmt.Sprintf(", %.0f %% of weights active (active/total: %.1f %%)", 100*p.ActiveFraction,
			100*float64(m.Active)/float64(m.Total))
	}
	return s
}

// modelTable lists presets, one line each.
func modelTable(w io.Writer, list []moe.ModelCounts) {
	fmt.Fprintln(w, "Model presets (parameters; active = per token):")
	fmt.Fprintf(w, "  %-18s %9s %9s %9s %9s  %s\n", "NAME", "TOTAL", "ACTIVE", "ACT-NOEMB", "NON-EMB", "PUBLISHED (deviation of our count)")
	for i := range list {
		m := &list[i]
		fmt.Fprintf(w, "  %-18s %9s %9s %9s %9s  %s\n", m.Name, billions(m.Total), billions(m.Active),
			billions(m.ActiveNoInputEmbedding), billions(m.NonEmbedding), publishedSummary(m))
	}
	fmt.Fprintln(w, "\nACTIVE counts the input embedding and the LM head; ACT-NOEMB leaves the input")
	fmt.Fprintln(w, "embedding out (the LM head stays); NON-EMB is TOTAL without both.")
	fmt.Fprintln(w, "`sweep models NAME` prints one model's breakdown; set `model = \"NAME\"` in a study.")
}

// modelReport prints one model's counts and per-layer breakdown.
func modelReport(w io.Writer, m *moe.ModelCounts) {
	a := &m.Arch
	fmt.Fprintf(w, "%s\n  %s\n\n", m.Name, m.Source)
	attn := fmt.Sprintf("%d heads / %d KV heads of %d (%s)", a.Heads, a.KVHeads, a.HeadDim, attentionKind(a))
	if a.KVLoRARank > 0 {
		attn = fmt.Sprintf("%d heads, multi-head latent attention: q_lora_rank %d, kv_lora_rank %d, qk_nope %d + qk_rope %d, v %d",
			a.Heads, a.QLoRARank, a.KVLoRARank, a.QKNopeHeadDim, a.QKRopeHeadDim, a.VHeadDim)
	}
	fmt.Fprintf(w, "Architecture: d_model %d, %d layers (%d MoE, %d dense), vocabulary %d, tied embeddings %v\n",
		a.DModel, a.Layers, m.MoELayers, m.DenseLayers, a.Vocab, a.Tied)
	fmt.Fprintf(w, "  attention: %s\n", attn)
	if a.Experts > 0 {
		fmt.Fprintf(w, "  MoE: %d routed experts of width %d (%s), top-%d", a.Experts, a.DFFExpert, a.FFN, a.TopK)
		if a.Shared > 0 {
			fmt.Fprintf(w, ", %d shared of width %d", a.Shared, a.DFFShared)
		}
		fmt.Fprintf(w, "; dense FFN width %d\n", a.DFF)
	} else {
		fmt.Fprintf(w, "  dense FFN (%s) of width %d\n", a.FFN, a.DFF)
	}
	fmt.Fprintf(w, "  norms: %s; QK-norm %s\n\n", a.Norm, a.QKNorm)

	row := func(label string, n int64, note string) {
		fmt.Fprintf(w, "  %-34s %18s  %s\n", label, group(n), note)
	}
	fmt.Fprintln(w, "Parameters:")
	row("total_params", m.Total, billions(m.Total))
	row("active_params", m.Active, billions(m.Active)+"  (input embedding and LM head counted)")
	row("active_params_no_input_embedding", m.ActiveNoInputEmbedding, billions(m.ActiveNoInputEmbedding)+"  (LM head counted)")
	row("non_embedding_params", m.NonEmbedding, billions(m.NonEmbedding))
	row("input embedding", m.Embedding, "")
	row("LM head", m.Head, "")
	row("final norm", m.FinalNorm, "")

	fmt.Fprintln(w, "\nPer layer:")
	fmt.Fprintf(w, "  %-20s %18s %18s\n", "", fmt.Sprintf("MoE layer (x%d)", m.MoELayers), fmt.Sprintf("dense layer (x%d)", m.DenseLayers))
	l := &m.Layer
	two := func(label string, moeN, denseN int64) {
		fmt.Fprintf(w, "  %-20s %18s %18s\n", label, group(moeN), group(denseN))
	}
	two("attention", l.Attention, l.Attention)
	two("norms", l.Norms, l.Norms)
	two("router", l.Router, 0)
	two("one routed expert", l.PerExpert, 0)
	two("routed experts", l.Experts, 0)
	two("shared experts", l.Shared, 0)
	two("dense FFN", 0, l.DenseFFN)
	two("layer", l.MoE, l.Dense)
	two("active per token", l.MoEActive, l.Dense)
	if s := publishedSummary(m); s != "" {
		fmt.Fprintf(w, "\nPublished: %s\n  %s\n", s, m.Published.Source)
	}
}
