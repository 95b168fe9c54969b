package moe

import "sort"

// ModelPreset is a named model: the parameter values it sets. Parameters it
// does not name keep their defaults; values given explicitly win over it.
type ModelPreset struct {
	Name   string
	Source string // where the shape comes from
	Values map[int]any
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
}

// hardwarePresets holds the built-in hardware descriptions.
var hardwarePresets = map[string]HardwarePreset{
	"neupims": {Name: "neupims", Source: "NeuPIMs systolic_ws_128x128_dev.json + memory_configs/neupims.json (HBM2 dual-row-buffer PIM, 32 channels)",
		Values: map[int]any{
			pClockMHz: 1000.0, pArrayH: 128, pArrayW: 128, pArrays: 8, pSRAMKB: 134218,
			pVectorUnits: 8, pVectorWidth: 128, pHBMChannels: 32, pHBMBytesPerCycle: 32.0,
			pPIM: true, pPIMGwrite: 100, pPIMGemv: 184,
		}},
	"npu-hbm": {Name: "npu-hbm", Source: "the neupims NPU with plain HBM (NeuPIMs dram_type \"dram\"): attention on the NPU",
		Values: map[int]any{
			pClockMHz: 1000.0, pArrayH: 128, pArrayW: 128, pArrays: 8, pSRAMKB: 134218,
			pVectorUnits: 8, pVectorWidth: 128, pHBMChannels: 32, pHBMBytesPerCycle: 32.0,
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

// HardwarePresetNames returns the built-in hardware preset names, sorted.
func HardwarePresetNames() []string {
	names := make([]string, 0, len(hardwarePresets))
	for n := range hardwarePresets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
