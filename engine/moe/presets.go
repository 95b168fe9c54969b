package moe

import "sort"

// ModelPreset is a named model: the parameter values it sets. Parameters it
// does not name keep their defaults; values given explicitly win over it.
type ModelPreset struct {
	Name      string
	Source    string // where the shape comes from
	Values    map[int]any
	Published Published // the publisher's parameter counts; zero if none
}

// Convention names one way of counting a model's parameters. The values are
// the field names `sweep models --format json` prints.
type Convention string

// Parameter-count conventions.
const (
	// Total counts every weight: embeddings, LM head, layers, norms.
	Total Convention = "total_params"
	// NonEmbedding is Total without the input embedding and the LM head.
	NonEmbedding Convention = "non_embedding_params"
	// Active counts the weights one token uses, input embedding and LM head
	// included (Mistral, Qwen, OLMoE, DBRX, Microsoft).
	Active Convention = "active_params"
	// ActiveNoInputEmbedding is Active without the input embedding (a token
	// only reads one row of it); the LM head stays (OpenAI, DeepSeek).
	ActiveNoInputEmbedding Convention = "active_params_no_input_embedding"
)

// Published is what a model's publisher states about its size.
type Published struct {
	Total          float64    // parameters, as stated (e.g. 46.7e9)
	TotalIs        Convention // the count the total figure matches
	Active         float64    // active parameters per token, as stated; 0 if not stated
	ActiveIs       Convention // the count the active figure matches
	ActiveFraction float64    // stated fraction of weights active per token, when no count is given
	Source         string     // where the figures are stated
}

// HardwarePreset is a named hardware description.
type HardwarePreset struct {
	Name   string
	Source string
	Values map[int]any
}

// modelPresets holds the built-in models. The GPT-3 family follows NeuPIMs'
// model configs (d_ff = 4·d_model, GELU, n_tp as shipped) with the layer
// counts of the published models, and counts weights only (no biases, no
// norms), as NeuPIMs and the seed document do.
var modelPresets = map[string]ModelPreset{
	"gpt3-7B": {Name: "gpt3-7B", Source: "NeuPIMs configs/model_configs/gpt3-7B.json; 32 layers as GPT-3 6.7B",
		Values: map[int]any{pDModel: 4096, pNHeads: 32, pNLayers: 32, pVocab: 50304, pTP: 4}},
	"gpt3-13B": {Name: "gpt3-13B", Source: "NeuPIMs configs/model_configs/gpt3-13B.json; 40 layers as GPT-3 13B",
		Values: map[int]any{pDModel: 5120, pNHeads: 40, pNLayers: 40, pVocab: 50304, pTP: 4}},
	"gpt3-30B": {Name: "gpt3-30B", Source: "NeuPIMs configs/model_configs/gpt3-30B.json; 48 layers",
		Values: map[int]any{pDModel: 7168, pNHeads: 56, pNLayers: 48, pVocab: 50304, pTP: 4}},
	"gpt3-175B": {Name: "gpt3-175B", Source: "NeuPIMs configs/model_configs/gpt3-175B.json; 96 layers as GPT-3 175B",
		Values: map[int]any{pDModel: 12288, pNHeads: 96, pNLayers: 96, pVocab: 50304, pTP: 8}},

	// Published MoE models: the values of each model's Hugging Face
	// config.json (copies in testdata/hf, which the tests import and compare
	// with these presets), plus the architecture facts of its modeling code.
	"mixtral-8x7b": {Name: "mixtral-8x7b",
		Source: "huggingface.co/mistralai/Mixtral-8x7B-v0.1 config.json (model_type mixtral)",
		Values: hfPreset(map[int]any{
			pDModel: 4096, pNHeads: 32, pNKVHeads: 8, pHeadDim: 128, pNLayers: 32, pVocab: 32000,
			pDFF: 14336, pNumExperts: 8, pTopK: 2, pDFFExpert: 14336,
		}),
		Published: Published{Total: 46.7e9, TotalIs: Total, Active: 12.9e9, ActiveIs: Active,
			Source: "Mistral AI, \"Mixtral of experts\" (2023): 46.7B total, 12.9B per token"}},
	"mixtral-8x22b": {Name: "mixtral-8x22b",
		Source: "huggingface.co/mistralai/Mixtral-8x22B-Instruct-v0.1 config.json (model_type mixtral, vocabulary 32768)",
		Values: hfPreset(map[int]any{
			pDModel: 6144, pNHeads: 48, pNKVHeads: 8, pHeadDim: 128, pNLayers: 56, pVocab: 32768,
			pDFF: 16384, pNumExperts: 8, pTopK: 2, pDFFExpert: 16384,
		}),
		Published: Published{Total: 141e9, TotalIs: Total, Active: 39e9, ActiveIs: Active,
			Source: "Mistral AI, \"Cheaper, Better, Faster, Stronger\" (2024): 39B active of 141B"}},
	"deepseek-v2-lite": {Name: "deepseek-v2-lite",
		Source: "huggingface.co/deepseek-ai/DeepSeek-V2-Lite config.json (model_type deepseek_v2)",
		Values: hfPreset(map[int]any{
			pDModel: 2048, pNHeads: 16, pNLayers: 27, pVocab: 102400,
			pQLoRA: 0, pKVLoRA: 512, pQKNope: 128, pQKRope: 64, pVHeadDim: 128,
			pDFF: 10944, pNumExperts: 64, pTopK: 6, pDFFExpert: 1408,
			pSharedExperts: 2, pDFFShared: 1408, pDenseLayers: 1,
		}),
		Published: Published{Total: 15.7e9, TotalIs: Total, Active: 2.4e9, ActiveIs: ActiveNoInputEmbedding,
			Source: "DeepSeek-AI, DeepSeek-V2 paper (arXiv:2405.04434), appendix B: 15.7B total, 2.4B activated per token"}},
	"deepseek-v3": {Name: "deepseek-v3",
		Source: "huggingface.co/deepseek-ai/DeepSeek-V3 config.json (model_type deepseek_v3; the multi-token-prediction module is not counted)",
		Values: hfPreset(map[int]any{
			pDModel: 7168, pNHeads: 128, pNLayers: 61, pVocab: 129280,
			pQLoRA: 1536, pKVLoRA: 512, pQKNope: 128, pQKRope: 64, pVHeadDim: 128,
			pDFF: 18432, pNumExperts: 256, pTopK: 8, pDFFExpert: 2048,
			pSharedExperts: 1, pDFFShared: 2048, pDenseLayers: 3, pRouterBias: true,
		}),
		Published: Published{Total: 671e9, TotalIs: Total, Active: 37e9, ActiveIs: ActiveNoInputEmbedding,
			Source: "DeepSeek-AI, DeepSeek-V3 technical report (arXiv:2412.19437) and model card: 671B total (main model, without the 14B MTP module), 37B activated per token"}},
	"qwen1.5-moe-a2.7b": {Name: "qwen1.5-moe-a2.7b",
		Source: "huggingface.co/Qwen/Qwen1.5-MoE-A2.7B config.json (model_type qwen2_moe)",
		Values: hfPreset(map[int]any{
			pDModel: 2048, pNHeads: 16, pNKVHeads: 16, pHeadDim: 128, pNLayers: 24, pVocab: 151936,
			pDFF: 5632, pNumExperts: 60, pTopK: 4, pDFFExpert: 1408,
			pSharedExperts: 1, pDFFShared: 5632, pSharedGate: true, pQKVBias: true,
		}),
		Published: Published{Total: 14.3e9, TotalIs: Total, Active: 2.7e9, ActiveIs: Active,
			Source: "Qwen/Qwen1.5-MoE-A2.7B model card: 14.3B parameters in total, 2.7B activated"}},
	"qwen3-30b-a3b": {Name: "qwen3-30b-a3b",
		Source: "huggingface.co/Qwen/Qwen3-30B-A3B config.json (model_type qwen3_moe)",
		Values: hfPreset(map[int]any{
			pDModel: 2048, pNHeads: 32, pNKVHeads: 4, pHeadDim: 128, pNLayers: 48, pVocab: 151936,
			pDFF: 6144, pNumExperts: 128, pTopK: 8, pDFFExpert: 768, pQKNorm: "head",
		}),
		Published: Published{Total: 30.5e9, TotalIs: Total, Active: 3.3e9, ActiveIs: Active,
			Source: "Qwen/Qwen3-30B-A3B model card: 30.5B in total, 3.3B activated, 29.9B non-embedding"}},
	"olmoe-1b-7b": {Name: "olmoe-1b-7b",
		Source: "huggingface.co/allenai/OLMoE-1B-7B-0924 config.json (model_type olmoe)",
		Values: hfPreset(map[int]any{
			pDModel: 2048, pNHeads: 16, pNKVHeads: 16, pHeadDim: 128, pNLayers: 16, pVocab: 50304,
			pDFF: 1024, pNumExperts: 64, pTopK: 8, pDFFExpert: 1024, pQKNorm: "full",
		}),
		Published: Published{Total: 6.9e9, TotalIs: Total, Active: 1.3e9, ActiveIs: Active,
			Source: "Muennighoff et al., OLMoE (arXiv:2409.02060): 6.9B total, 1.3B active per token"}},
	"dbrx": {Name: "dbrx",
		Source: "huggingface.co/databricks/dbrx-base config.json (model_type dbrx)",
		Values: hfPreset(map[int]any{
			pDModel: 6144, pNHeads: 48, pNKVHeads: 8, pHeadDim: 128, pNLayers: 40, pVocab: 100352,
			pDFF: 10752, pNumExperts: 16, pTopK: 4, pDFFExpert: 10752, pNorm: "layernorm_nobias",
		}),
		Published: Published{Total: 132e9, TotalIs: Total, Active: 36e9, ActiveIs: Active,
			Source: "Databricks, \"Introducing DBRX\" (2024): 132B total parameters, 36B active on any input"}},
	"gpt-oss-20b": {Name: "gpt-oss-20b",
		Source: "huggingface.co/openai/gpt-oss-20b config.json (model_type gpt_oss)",
		Values: gptOss(24, 32),
		Published: Published{Total: 20.91e9, TotalIs: Total, Active: 3.61e9, ActiveIs: ActiveNoInputEmbedding,
			Source: "OpenAI, gpt-oss-120b & gpt-oss-20b model card (arXiv:2508.10925), table 1: 20.91B total, 3.61B active (embedding not counted, unembedding counted)"}},
	"gpt-oss-120b": {Name: "gpt-oss-120b",
		Source: "huggingface.co/openai/gpt-oss-120b config.json (model_type gpt_oss)",
		Values: gptOss(36, 128),
		Published: Published{Total: 116.83e9, TotalIs: Total, Active: 5.13e9, ActiveIs: ActiveNoInputEmbedding,
			Source: "OpenAI, gpt-oss-120b & gpt-oss-20b model card (arXiv:2508.10925), table 1: 116.83B total, 5.13B active (embedding not counted, unembedding counted)"}},
	"phi-3.5-moe": {Name: "phi-3.5-moe",
		Source: "huggingface.co/microsoft/Phi-3.5-MoE-instruct config.json (model_type phimoe)",
		Values: hfPreset(map[int]any{
			pDModel: 4096, pNHeads: 32, pNKVHeads: 8, pHeadDim: 128, pNLayers: 32, pVocab: 32064,
			pDFF: 6400, pNumExperts: 16, pTopK: 2, pDFFExpert: 6400,
			pNorm: "layernorm", pQKVBias: true, pOutBias: true, pHeadBias: true,
		}),
		Published: Published{Total: 42e9, TotalIs: Total, Active: 6.6e9, ActiveIs: Active,
			Source: "Microsoft, Phi-3 technical report (arXiv:2404.14219) and microsoft/Phi-3.5-MoE-instruct model card: 42B total, 6.6B active"}},
	"grok-1": {Name: "grok-1",
		Source: "github.com/xai-org/grok-1 run.py and model.py (no Hugging Face model_type): emb_size 6144, widening_factor 8 (FFN 32768), 48 query / 8 KV heads of 128, 64 layers, 8 experts top-2, vocabulary 131072, GELU-gated experts, four RMSNorms per layer, embedding shared with the output layer",
		Values: hfPreset(map[int]any{
			pDModel: 6144, pNHeads: 48, pNKVHeads: 8, pHeadDim: 128, pNLayers: 64, pVocab: 131072,
			pDFF: 32768, pNumExperts: 8, pTopK: 2, pDFFExpert: 32768,
			pFFN: "geglu", pNormsPerLayer: 4, pTied: true,
		}),
		Published: Published{Total: 314e9, TotalIs: NonEmbedding, ActiveFraction: 0.25,
			Source: "xAI, \"Open Release of Grok-1\" (2024): 314B parameters, 25% of the weights active on a given token"}},
}

// hfPreset completes the values of a published MoE model with the settings
// the NeuPIMs-style defaults would get wrong: gated SiLU FFNs, RMSNorm, no
// biases, untied embeddings, tp 1, two norms per layer. vals wins.
func hfPreset(vals map[int]any) map[int]any {
	out := map[int]any{
		pFFN: "swiglu", pNorm: "rmsnorm", pBiases: false, pQKVBias: false, pOutBias: false,
		pFFNBias: false, pRouterBias: false, pHeadBias: false, pSharedGate: false, pSinks: false,
		pQKNorm: "none", pTied: false, pTP: 1, pSharedExperts: 0, pDenseLayers: 0, pMoEFreq: 1,
		pNormsPerLayer: 2, pQLoRA: 0, pKVLoRA: 0, pSlidingWindow: 0, pSlidingFraction: 1.0,
	}
	for k, v := range vals {
		out[k] = v
	}
	return out
}

// gptOss is the gpt-oss family: hidden 2880, 64 query / 8 KV heads of 64,
// experts of width 2880 with biases, top-4, a biased router, attention
// biases and sinks, vocabulary 201088.
func gptOss(layers, experts int) map[int]any {
	return hfPreset(map[int]any{
		pDModel: 2880, pNHeads: 64, pNKVHeads: 8, pHeadDim: 64, pNLayers: layers, pVocab: 201088,
		pDFF: 2880, pNumExperts: experts, pTopK: 4, pDFFExpert: 2880,
		pQKVBias: true, pOutBias: true, pFFNBias: true, pRouterBias: true, pSinks: true,
		pSlidingWindow: 128, pSlidingFraction: 0.5, // the even layers: sliding_attention
	})
}

// hardwarePresets holds the built-in hardware descriptions.
var hardwarePresets = map[string]HardwarePreset{
	"neupims": {Name: "neupims", Source: "NeuPIMs systolic_ws_128x128_dev.json + memory_configs/neupims.json (HBM2 dual-row-buffer PIM, 32 channels)",
		Values: map[int]any{
			pClockMHz: 1000.0, pArrayH: 128, pArrayW: 128, pArrays: 8, pSRAMKB: 134218,
			pVectorUnits: 8, pVectorWidth: 128, pHBMChannels: 32, pHBMBytesPerCycle: 32.0, pDRAMMHz: 1000.0,
			pPIM: true, pPIMGwrite: 124, pPIMGemv: 157,
		}},
	"npu-hbm": {Name: "npu-hbm", Source: "the neupims NPU with plain HBM (NeuPIMs dram_type \"dram\"): attention on the NPU",
		Values: map[int]any{
			pClockMHz: 1000.0, pArrayH: 128, pArrayW: 128, pArrays: 8, pSRAMKB: 134218,
			pVectorUnits: 8, pVectorWidth: 128, pHBMChannels: 32, pHBMBytesPerCycle: 32.0, pDRAMMHz: 1000.0,
			pPIM: false,
		}},
}

// ModelPresetNames returns the built-in model preset names, sorted.
func ModelPresetNames() []string {
	names := make([]string, 0, len(modelPresets))
	for n := range modelPresets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// LookupModelPreset returns the built-in model preset called name.
func LookupModelPreset(name string) (ModelPreset, bool) {
	p, ok := modelPresets[name]
	return p, ok
}

// HardwarePresetNames returns the built-in hardware preset names, sorted.
func HardwarePresetNames() []string {
	names := make([]string, 0, len(hardwarePresets))
	for n := range hardwarePresets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
