package moe

import (
	"slices"
	"strings"

	"github.com/sweep-dse/sweep/engine"
)

// Rules of parameters without effect (engine.Ignorer). Each names when a
// parameter's value cannot change any metric of a resolved point; the
// point keeps the value all the same, so that resolution never maps two
// inputs to one point. TestIgnoredHasNoEffect holds every rule to the
// model: changing an ignored value changes no metric.
//
//   - num_experts = 0 (a dense model): the MoE parameters (moeOnly);
//   - routing_skew without routing = "zipf", routing_trace without
//     routing = "trace", seed with routing = "trace" (a trace draws
//     nothing);
//   - d_ff_shared and shared_expert_gate without shared experts;
//   - overlap_loads with every expert resident (nothing is loaded);
//   - moe_ffn_scaling where every mode gives one width: at num_experts =
//     1 over d_ff, and at the model's own expert count for a width from a
//     model preset or config file (width.go);
//   - seq_len with a seq_trace (each request's length comes from the
//     trace);
//   - pim_gwrite_cycles, pim_gemv_cycles and sub_batch without pim;
//     sub_batch with batch_size 1 (no two halves);
//   - sliding_window with sliding_fraction = 0 (no layer slides), and
//     sliding_fraction with sliding_window = 0 (no window);
//   - norms_per_layer with norm = "none";
//   - biases when qkv_bias, out_bias and ffn_bias, the values it is the
//     default of, are all set (by the point, the model preset or config).
//
// top_k = 0 and d_ff_expert = 0 of a dense point are not reported: they are
// the only values a dense point takes.

// moeOnly are the parameters of MoE layers, which a dense point ignores.
var moeOnly = []int{pScaling, pCapacity, pSharedExperts, pDFFShared, pSharedGate, pDenseLayers,
	pMoEFreq, pRouterBias, pLinkGBps, pLinkLatency, pResident, pOverlap, pRouting, pSkew, pRoutingTrace, pSeed}

// The reasons, one per rule (constant strings: the planner compares them).
var (
	whyDense         [nParams]string
	whySkew          = whyName(`{} applies only to routing = "zipf"`, pSkew)
	whyRoutingTrace  = whyName(`{} applies only to routing = "trace"`, pRoutingTrace)
	whySeed          = whyName(`{} applies only to random routing, routing = "uniform" or "zipf": a trace draws nothing`, pSeed)
	whyDFFShared     = whyName(`{} applies only to shared_experts >= 1`, pDFFShared)
	whySharedGate    = whyName(`{} applies only to shared_experts >= 1`, pSharedGate)
	whyOverlap       = whyName(`{} applies only when experts are loaded, with resident_experts < num_experts`, pOverlap)
	whyScalingOne    = whyName(`at num_experts = 1 every {} mode gives d_ff_expert = d_ff`, pScaling)
	whyScalingModel  = whyName(`{} rescales the model's d_ff_expert from the model's own num_experts, where every mode keeps it`, pScaling)
	whyScaling       = whyName(`every {} mode gives the same d_ff_expert`, pScaling)
	whySeqLen        = whyName(`{} applies only without seq_trace: each request's KV length comes from the trace`, pSeqLen)
	whyGwrite        = whyName(`{} applies only to pim = true`, pPIMGwrite)
	whyGemv          = whyName(`{} applies only to pim = true`, pPIMGemv)
	whySubBatchPIM   = whyName(`{} applies only to pim = true`, pSubBatch)
	whySubBatchBatch = whyName(`{} needs batch_size >= 2 to split the batch in two`, pSubBatch)
	whyWindowLayers  = whyName(`{} applies only to sliding_fraction > 0`, pSlidingWindow)
	whyFraction      = whyName(`{} applies only to sliding_window > 0`, pSlidingFraction)
	whyNormsPerLayer = whyName(`{} applies only to norm != "none"`, pNormsPerLayer)
	whyBiasesGiven   = whyName(`{} is only the default of qkv_bias, out_bias and ffn_bias, which are all given`, pBiases)
	whyBiasesModel   = whyName(`{} is only the default of qkv_bias, out_bias and ffn_bias, and all three are set by the model or the study`, pBiases)
	biasesDefaultOf  = [...]int{pQKVBias, pOutBias, pFFNBias}
	withoutPIM       = [...]int{pPIMGwrite, pPIMGemv, pSubBatch}
	whyWithoutPIM    = [...]string{whyGwrite, whyGemv, whySubBatchPIM}
)

func init() {
	for _, i := range moeOnly {
		whyDense[i] = whyName("{} applies only to MoE layers, num_experts >= 1", i)
	}
}

// Ignoring implements engine.Ignorer.
func (e *Engine) Ignoring(base []engine.Value, vary []int) func(p []engine.Value, dst []engine.Ignored) []engine.Ignored {
	if len(base) != nParams {
		return nil
	}
	var g [nParams]bool // the parameters the study gives
	for i := range base {
		g[i] = base[i].IsSet()
	}
	for _, i := range vary {
		if i < 0 || i >= nParams {
			return nil
		}
		g[i] = true
	}
	// the model source, when every point has the same preset (nil: none)
	var src *modelSource
	fixed := !slices.Contains(vary, pModel) && !slices.Contains(vary, pModelConfig) && noFile(base[pModelConfig])
	if m := base[pModel]; fixed && m.Kind == engine.String && m.S != "custom" {
		src = presetSource(m.S)
	}
	sourceOf := func(p []engine.Value) *modelSource {
		if fixed {
			return src
		}
		return e.sourceOf(p)
	}
	var dense []int // given parameters a dense point ignores
	for _, i := range moeOnly {
		if g[i] {
			dense = append(dense, i)
		}
	}
	routed := g[pSkew] || g[pRoutingTrace] || g[pSeed]
	shared := g[pDFFShared] || g[pSharedGate]
	pim := g[pPIMGwrite] || g[pPIMGemv] || g[pSubBatch]
	if len(dense) == 0 && !g[pSeqLen] && !pim && !g[pNormsPerLayer] && !g[pBiases] && !g[pSlidingWindow] && !g[pSlidingFraction] {
		return nil
	}
	// the rules whose parameters the study gives, reading only the values
	// they need (a point costs a few loads and compares)
	return func(p []engine.Value, dst []engine.Ignored) []engine.Ignored {
		add := func(i int, why string, by int) { dst = append(dst, engine.Ignored{Param: i, Why: why, By: by}) }
		if E := p[pNumExperts].I; E < 1 {
			for _, i := range dense {
				add(i, whyDense[i], pNumExperts)
			}
		} else if len(dense) > 0 {
			if routed {
				routing := p[pRouting].S
				if g[pSkew] && routing != "zipf" {
					add(pSkew, whySkew, pRouting)
				}
				if g[pRoutingTrace] && routing != "trace" {
					add(pRoutingTrace, whyRoutingTrace, pRouting)
				}
				if g[pSeed] && routing == "trace" {
					add(pSeed, whySeed, pRouting)
				}
			}
			if shared && p[pSharedExperts].I == 0 {
				if g[pDFFShared] {
					add(pDFFShared, whyDFFShared, pSharedExperts)
				}
				if g[pSharedGate] {
					add(pSharedGate, whySharedGate, pSharedExperts)
				}
			}
			if g[pOverlap] && p[pResident].I >= E {
				add(pOverlap, whyOverlap, pResident)
			}
			if g[pScaling] {
				if why := scalingIgnored(p, E, sourceOf(p)); why != "" {
					add(pScaling, why, pNumExperts)
				}
			}
		}
		if g[pSeqLen] && p[pSeqTrace].S != "" {
			add(pSeqLen, whySeqLen, pSeqTrace)
		}
		if pim {
			if !p[pPIM].Bool() {
				for j, i := range withoutPIM {
					if g[i] {
						add(i, whyWithoutPIM[j], pPIM)
					}
				}
			} else if g[pSubBatch] && p[pBatch].I < 2 {
				add(pSubBatch, whySubBatchBatch, pBatch)
			}
		}
		if g[pSlidingWindow] && p[pSlidingFraction].F == 0 {
			add(pSlidingWindow, whyWindowLayers, pSlidingFraction)
		}
		if g[pSlidingFraction] && p[pSlidingWindow].I == 0 {
			add(pSlidingFraction, whyFraction, pSlidingWindow)
		}
		if g[pNormsPerLayer] && p[pNorm].S == "none" {
			add(pNormsPerLayer, whyNormsPerLayer, pNorm)
		}
		if g[pBiases] {
			if why, by := biasesIgnored(&g, sourceOf(p)); why != "" {
				add(pBiases, why, by)
			}
		}
		return dst
	}
}

// scalingIgnored is the reason moe_ffn_scaling has no effect on the
// resolved point p with E >= 1 experts, a d_ff_expert the point does not
// give and the model source src, or "". The width of mode compute lies
// between those of balanced and capacity (for E above and below the
// model's own count alike), so the modes agree when those two do.
func scalingIgnored(p []engine.Value, E int64, src *modelSource) string {
	if src != nil && src.dffe > 0 {
		if modelWidth("balanced", src.dffe, src.E, E) != modelWidth("capacity", src.dffe, src.E, E) {
			return ""
		}
		if E == src.E {
			return whyScalingModel
		}
		return whyScaling
	}
	// over d_ff: balanced max(d_ff/E, 1) = capacity max(d_ff, 1) only at
	// E = 1 or d_ff = 1 (TestScalingIgnoredOverDFF)
	switch dff := p[pDFF].I; {
	case E == 1:
		return whyScalingOne
	case dff <= 1:
		return whyScaling
	}
	return ""
}

// biasesIgnored is the reason biases has no effect on a point whose model
// source is src (g: the parameters the study gives), and the parameter
// that makes it so; "" when it has an effect.
func biasesIgnored(g *[nParams]bool, src *modelSource) (string, int) {
	all, own := true, true
	for _, i := range biasesDefaultOf {
		switch {
		case g[i]:
		case src != nil && src.sets[i]:
			own = false
		default:
			all = false
		}
	}
	switch {
	case !all:
		return "", -1
	case own:
		return whyBiasesGiven, -1
	}
	return whyBiasesModel, src.by
}

// whyName is a rule's text with its parameter's name in place of {}.
func whyName(format string, i int) string {
	return strings.ReplaceAll(format, "{}", paramTable[i].Name)
}
