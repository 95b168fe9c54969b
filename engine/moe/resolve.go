package moe

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sweep-dse/sweep/engine"
)

// files caches what Resolve loads, so that a study of a million points reads
// each referenced file once. Entries are keyed by the value as written in the
// study (Evaluate sees only that) and remember the absolute path they came from.
type files struct {
	mu sync.RWMutex
	m  map[string]fileEntry
}

type fileEntry struct {
	abs  string
	data any // map[string]engine.Value, []Request or *RoutingTrace
}

func (f *files) load(dir, name string, loader func(string) (any, error)) (any, error) {
	abs := name
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(dir, name)
	}
	f.mu.RLock()
	e, ok := f.m[name]
	f.mu.RUnlock()
	if ok {
		if e.abs != abs {
			return nil, fmt.Errorf("file %q names both %s and %s", name, e.abs, abs)
		}
		return e.data, nil
	}
	data, err := loader(abs)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]fileEntry{}
	}
	f.m[name] = fileEntry{abs: abs, data: data}
	return data, nil
}

func (f *files) get(name string) any {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.m[name].data
}

func toValue(k engine.Kind, x any) engine.Value {
	switch v := x.(type) {
	case int:
		if k == engine.Float {
			return engine.FloatV(float64(v))
		}
		return engine.IntV(int64(v))
	case float64:
		return engine.FloatV(v)
	case bool:
		return engine.BoolV(v)
	case string:
		return engine.StringV(v)
	}
	panic(fmt.Sprintf("preset value %T", x))
}

// fillFrom sets every unset parameter named in vals.
func fillFrom(p []engine.Value, vals map[string]engine.Value) {
	for name, v := range vals {
		i := engine.ParamIndex(paramTable[:], name)
		if i >= 0 && !p[i].IsSet() {
			p[i] = coerce(paramTable[i].Kind, v)
		}
	}
}

// Compact copies of the parameter table for Resolve's loops (the table's
// entries are large; these stay in a few cache lines).
var (
	kindOf    [nParams]engine.Kind
	defaultOf [nParams]engine.Value // Unset where the default is derived
	hasEnum   [nParams]bool
)

func init() {
	for i := range paramTable {
		kindOf[i] = paramTable[i].Kind
		defaultOf[i] = paramTable[i].Default
		hasEnum[i] = len(paramTable[i].Enum) > 0
	}
}

// presetVecs caches presets as the parameters they set, in index order, so
// Resolve fills from them without boxing or map iteration.
var modelVecs, hardwareVecs sync.Map // name -> *presetValues

// presetValues is a preset's parameters: idx[j] is set to vals[j].
type presetValues struct {
	name string
	idx  []int
	vals []engine.Value
}

func presetVec(cache *sync.Map, name string, values map[int]any) *presetValues {
	if v, ok := cache.Load(name); ok {
		return v.(*presetValues)
	}
	pv := &presetValues{name: name}
	for i := range paramTable {
		if x, ok := values[i]; ok {
			pv.idx = append(pv.idx, i)
			pv.vals = append(pv.vals, toValue(paramTable[i].Kind, x))
		}
	}
	cache.Store(name, pv)
	return pv
}

// lastPreset remembers the preset vector looked up last, so a study that
// uses one preset (the common case) finds it with a string comparison
// instead of two map lookups per point.
type lastPreset struct{ p atomic.Pointer[presetValues] }

var lastModel, lastHardware lastPreset

// vec returns the vector of preset name: the one used last, or the cached
// one of the presets that values looks name up in; ok is false for a name
// values does not know.
func (l *lastPreset) vec(cache *sync.Map, name string, values func(string) (map[int]any, bool)) (pv *presetValues, ok bool) {
	if pv := l.p.Load(); pv != nil && pv.name == name {
		return pv, true
	}
	vals, ok := values(name)
	if !ok {
		return nil, false
	}
	pv = presetVec(cache, name, vals)
	l.p.Store(pv)
	return pv, true
}

func modelValues(name string) (map[int]any, bool) {
	p, ok := modelPresets[name]
	return p.Values, ok
}

func hardwareValues(name string) (map[int]any, bool) {
	p, ok := hardwarePresets[name]
	return p.Values, ok
}

// fillVec sets every unset parameter that the preset sets.
func fillVec(p []engine.Value, pv *presetValues) {
	for j, i := range pv.idx {
		if p[i].Kind == engine.Unset {
			p[i] = pv.vals[j]
		}
	}
}

// coerce converts an Int to a Float for float parameters.
func coerce(k engine.Kind, v engine.Value) engine.Value {
	if k == engine.Float && v.Kind == engine.Int {
		return engine.FloatV(float64(v.I))
	}
	return v
}

func perr(i int, v engine.Value, format string, args ...any) error {
	return &engine.ParamError{Name: paramTable[i].Name, Value: v.String(), Msg: fmt.Sprintf(format, args...)}
}

// Resolve implements engine.Engine. Precedence, highest first: values given
// in the point, the NeuPIMs config files it names, the model and hardware
// presets, the defaults of Params.
func (e *Engine) Resolve(dir string, p []engine.Value) error {
	if len(p) != nParams {
		return fmt.Errorf("moe: point has %d parameters, want %d", len(p), nParams)
	}
	if t := templateFor(p); t != nil {
		return e.resolveFrom(dir, p, t)
	}
	return e.resolveLong(dir, p)
}

// resolveLong is Resolve filling from each source in turn: config files,
// presets, defaults. A point without config files gives the same result
// through its template (TestResolveTemplate).
func (e *Engine) resolveLong(dir string, p []engine.Value) error {
	for i := range p {
		if err := checkKind(p, i); err != nil {
			return err
		}
	}
	ownScaling, ownDFFE := p[pScaling].IsSet(), p[pDFFExpert].IsSet()
	var src *modelSource
	// model: config file, then preset; not both, or the preset's name would
	// label the config file's architecture
	if v := p[pModelConfig]; v.IsSet() && v.S != "" {
		if m := p[pModel]; m.IsSet() && m.S != "custom" {
			return perr(pModel, m, "model_config = %q gives the architecture too: give one of them (the rows would name preset %s with the file's shape)", v.S, m.S)
		}
		data, err := e.files.load(dir, v.S, func(path string) (any, error) { return LoadModelConfig(path) })
		if err != nil {
			return err
		}
		fillFrom(p, data.(map[string]engine.Value))
		src = configSource(v.S, data.(map[string]engine.Value))
	}
	if v := p[pModel]; v.IsSet() && v.S != "custom" {
		pv, ok := lastModel.vec(&modelVecs, v.S, modelValues)
		if !ok {
			return perr(pModel, v, "unknown model preset%s; known: custom, %s", caseHint(v.S, ModelPresetNames()), strings.Join(ModelPresetNames(), ", "))
		}
		fillVec(p, pv)
		src = presetSource(v.S)
	}
	// hardware: config files, then preset
	for _, fi := range []struct {
		i      int
		loader func(string) (map[string]engine.Value, error)
	}{{pNPUConfig, LoadNPUConfig}, {pMemConfig, LoadMemConfig}} {
		if v := p[fi.i]; v.IsSet() && v.S != "" {
			data, err := e.files.load(dir, v.S, func(path string) (any, error) { return fi.loader(path) })
			if err != nil {
				return err
			}
			fillFrom(p, data.(map[string]engine.Value))
		}
	}
	hw := p[pHardware]
	if !hw.IsSet() {
		hw = paramTable[pHardware].Default
		p[pHardware] = hw
	}
	pv, ok := lastHardware.vec(&hardwareVecs, hw.S, hardwareValues)
	if !ok {
		return perr(pHardware, hw, "unknown hardware preset%s; known: %s", caseHint(hw.S, HardwarePresetNames()), strings.Join(HardwarePresetNames(), ", "))
	}
	fillVec(p, pv)
	// traces
	nreq, err := e.traceRequests(dir, p)
	if err != nil {
		return err
	}
	given := givenBy(func(i int) bool { return p[i].IsSet() })
	given.widthFrom(ownScaling, ownDFFE, src)
	// plain defaults
	for i := range p {
		if !p[i].IsSet() {
			p[i] = defaultOf[i]
		}
	}
	return e.derive(dir, p, nreq, given)
}

// checkKind checks a given parameter's kind (an int for a float parameter
// becomes a float) and, for a string with a fixed set of values, its value.
func checkKind(p []engine.Value, i int) error {
	if !p[i].IsSet() {
		return nil
	}
	k := kindOf[i]
	if p[i].Kind == k && !hasEnum[i] {
		return nil
	}
	p[i] = coerce(k, p[i])
	if p[i].Kind != paramTable[i].Kind {
		return perr(i, p[i], "want %s, got %s", paramTable[i].Kind, p[i].Kind)
	}
	if enum := paramTable[i].Enum; len(enum) > 0 && !contains(enum, p[i].S) {
		return perr(i, p[i], "not one of %s", strings.Join(enum, ", "))
	}
	return nil
}

// traceRequests is the number of requests in the point's sequence trace
// (0 without one).
func (e *Engine) traceRequests(dir string, p []engine.Value) (int64, error) {
	v := p[pSeqTrace]
	if !v.IsSet() || v.S == "" {
		return 0, nil
	}
	data, err := e.files.load(dir, v.S, func(path string) (any, error) { return LoadSeqTrace(path) })
	if err != nil {
		return 0, err
	}
	return int64(len(data.([]Request))), nil
}

// givenFlags records which parameters with derived defaults the point or a
// preset gave, before the plain defaults were filled in, and where the
// expert width comes from (width.go).
type givenFlags struct {
	topK, dffe, qLoRA, qkNorm bool
	// scaling, ownDFFE: the point itself (not its model preset or config
	// file) gives moe_ffn_scaling, d_ff_expert
	scaling, ownDFFE bool
	// srcDFFE, srcE: the d_ff_expert and num_experts of the model preset or
	// config file, when it gives d_ff_expert and the point does not (else 0)
	srcDFFE, srcE int64
}

// givenBy is the flags of the parameters given reports as given.
func givenBy(given func(i int) bool) givenFlags {
	return givenFlags{topK: given(pTopK), dffe: given(pDFFExpert), qLoRA: given(pQLoRA), qkNorm: given(pQKNorm)}
}

// derive completes a point whose given, config-file, preset and plain
// default values are in place: derived defaults, then validation.
func (e *Engine) derive(dir string, p []engine.Value, nreq int64, given givenFlags) error {
	topKGiven, dffeGiven, qLoRAGiven, qkNormGiven := given.topK, given.dffe, given.qLoRA, given.qkNorm
	// derived defaults
	for _, i := range []int{pQKVBias, pOutBias, pFFNBias} {
		if !p[i].IsSet() {
			p[i] = p[pBiases]
		}
	}
	if err := resolveAttention(p, qLoRAGiven, qkNormGiven); err != nil {
		return err
	}
	if !p[pNKVHeads].IsSet() {
		p[pNKVHeads] = p[pNHeads]
	}
	if !p[pHeadDim].IsSet() {
		if p[pNHeads].I < 1 {
			return perr(pNHeads, p[pNHeads], "must be at least 1")
		}
		if p[pDModel].I%p[pNHeads].I != 0 {
			return perr(pNHeads, p[pNHeads], "does not divide d_model = %d; set head_dim", p[pDModel].I)
		}
		p[pHeadDim] = engine.IntV(p[pDModel].I / p[pNHeads].I)
	}
	if !p[pDFF].IsSet() {
		p[pDFF] = engine.IntV(4 * p[pDModel].I)
	}
	if given.scaling && given.ownDFFE {
		return perr(pScaling, p[pScaling], "conflicts with d_ff_expert = %d, which is given too: moe_ffn_scaling derives d_ff_expert; give one of them", p[pDFFExpert].I)
	}
	E := p[pNumExperts].I
	if E < 0 || E > maxExperts {
		return perr(pNumExperts, p[pNumExperts], "must be 0 (dense FFN) to %d", maxExperts)
	}
	if E == 0 {
		if topKGiven && p[pTopK].I != 0 {
			return perr(pTopK, p[pTopK], "needs num_experts >= 1 (num_experts = 0 is a dense FFN)")
		}
		if dffeGiven && p[pDFFExpert].I != 0 {
			return perr(pDFFExpert, p[pDFFExpert], "needs num_experts >= 1 (num_experts = 0 is a dense FFN)")
		}
		// a dense layer has no experts: derived MoE fields are zero. Given
		// values are kept as given (they change nothing here), so that
		// resolution never maps two different inputs to one point.
		p[pTopK] = engine.IntV(0)
		p[pDFFExpert] = engine.IntV(0)
		if !p[pDFFShared].IsSet() {
			p[pDFFShared] = engine.IntV(0)
		}
	} else {
		if !topKGiven {
			p[pTopK] = engine.IntV(min(2, E))
		}
		if k := p[pTopK].I; k < 1 || k > E {
			return perr(pTopK, p[pTopK], "must be between 1 and num_experts = %d", E)
		}
		switch {
		case !dffeGiven:
			p[pDFFExpert] = engine.IntV(expertWidth(p[pScaling].S, p[pDFF].I, E))
		case given.scaling && given.srcDFFE > 0:
			// the model's width, rescaled from its own expert count
			p[pDFFExpert] = engine.IntV(modelWidth(p[pScaling].S, given.srcDFFE, given.srcE, E))
		case p[pDFFExpert].I < 1:
			return perr(pDFFExpert, p[pDFFExpert], "must be at least 1")
		}
		if !p[pDFFShared].IsSet() {
			p[pDFFShared] = p[pDFFExpert]
		}
	}
	if !p[pBatch].IsSet() {
		if nreq > 0 {
			p[pBatch] = engine.IntV(nreq)
		} else {
			p[pBatch] = engine.IntV(512)
		}
	}
	if err := validate(p); err != nil {
		return err
	}
	if p[pRouting].S == "trace" && E > 0 {
		data, err := e.files.load(dir, p[pRoutingTrace].S, func(path string) (any, error) { return LoadRoutingTrace(path) })
		if err != nil {
			return err
		}
		rt := data.(*RoutingTrace)
		if int64(rt.Experts) != E {
			return perr(pRoutingTrace, p[pRoutingTrace], "has %d experts, num_experts = %d", rt.Experts, E)
		}
		if p[pTopK].I > int64(rt.K) {
			return perr(pTopK, p[pTopK], "routing traces rank at most %d experts per token", rt.K)
		}
	}
	return nil
}

// resolveAttention completes the attention kind. With kv_lora_rank > 0
// (multi-head latent attention) it fills qk_nope_head_dim (unset = d_model /
// n_heads), qk_rope_head_dim (unset = 64) and v_head_dim (unset =
// qk_nope_head_dim), sets head_dim = qk_nope_head_dim + qk_rope_head_dim and
// n_kv_heads = n_heads (the latent is shared by all heads; KV heads have no
// meaning); QK-norm does not apply. Without MLA the MLA fields are 0 and
// must not be given otherwise.
func resolveAttention(p []engine.Value, qLoRAGiven, qkNormGiven bool) error {
	if p[pKVLoRA].I < 0 {
		return perr(pKVLoRA, p[pKVLoRA], "must be 0 (no MLA) or positive")
	}
	if p[pKVLoRA].I == 0 {
		for _, i := range []int{pQKNope, pQKRope, pVHeadDim} {
			if p[i].IsSet() && p[i].I != 0 {
				return perr(i, p[i], "needs kv_lora_rank >= 1 (multi-head latent attention)")
			}
			p[i] = engine.IntV(0)
		}
		if qLoRAGiven && p[pQLoRA].I != 0 {
			return perr(pQLoRA, p[pQLoRA], "needs kv_lora_rank >= 1 (multi-head latent attention)")
		}
		p[pQLoRA] = engine.IntV(0)
		return nil
	}
	if h := p[pNHeads].I; h < 1 {
		return perr(pNHeads, p[pNHeads], "must be at least 1")
	}
	if p[pQLoRA].I < 0 {
		return perr(pQLoRA, p[pQLoRA], "must be 0 (no query compression) or positive")
	}
	if qkNormGiven && p[pQKNorm].S != "none" {
		return perr(pQKNorm, p[pQKNorm], "does not apply to multi-head latent attention (kv_lora_rank > 0)")
	}
	p[pQKNorm] = engine.StringV("none")
	if !p[pQKNope].IsSet() {
		if p[pDModel].I%p[pNHeads].I != 0 {
			return perr(pNHeads, p[pNHeads], "does not divide d_model = %d; set qk_nope_head_dim", p[pDModel].I)
		}
		p[pQKNope] = engine.IntV(p[pDModel].I / p[pNHeads].I)
	}
	if !p[pQKRope].IsSet() {
		p[pQKRope] = engine.IntV(64)
	}
	if !p[pVHeadDim].IsSet() {
		p[pVHeadDim] = p[pQKNope]
	}
	if p[pQKNope].I < 1 {
		return perr(pQKNope, p[pQKNope], "must be at least 1")
	}
	if p[pQKRope].I < 0 {
		return perr(pQKRope, p[pQKRope], "must be at least 0")
	}
	if p[pVHeadDim].I < 1 {
		return perr(pVHeadDim, p[pVHeadDim], "must be at least 1")
	}
	hd := p[pQKNope].I + p[pQKRope].I
	if p[pHeadDim].IsSet() && p[pHeadDim].I != hd {
		return perr(pHeadDim, p[pHeadDim], "under multi-head latent attention head_dim is qk_nope_head_dim + qk_rope_head_dim = %d", hd)
	}
	p[pHeadDim] = engine.IntV(hd)
	if p[pNKVHeads].IsSet() && p[pNKVHeads].I != p[pNHeads].I {
		return perr(pNKVHeads, p[pNKVHeads], "has no meaning under multi-head latent attention; leave it unset")
	}
	p[pNKVHeads] = p[pNHeads]
	return nil
}

// expertWidth is d_ff_expert from the scaling mode, rounded down and at
// least 1: balanced floor(d_ff/E), compute floor(d_ff/sqrt(E)), capacity d_ff.
// (The NeuPIMs MoE fork divides by floor(sqrt(E)) instead; the two agree when
// E is a perfect square.)
func expertWidth(mode string, dff, E int64) int64 {
	var w int64
	switch mode {
	case "compute":
		w = int64(math.Floor(float64(dff) / math.Sqrt(float64(E))))
	case "capacity":
		w = dff
	default:
		w = dff / E
	}
	return max(w, 1)
}

// maxExperts bounds num_experts (routing keeps per-expert counts on the stack).
const maxExperts = 4096 // also the bound for rng.small (<= 65536)

// maxBatch bounds batch_size.
const maxBatch = 1 << 24

func validate(p []engine.Value) error {
	atLeast := func(i int, lo int64) error {
		if p[i].I < lo {
			return perr(i, p[i], "must be at least %d", lo)
		}
		return nil
	}
	for _, c := range lowerBounds {
		if err := atLeast(c.i, c.lo); err != nil {
			return err
		}
	}
	return validateRest(p)
}

// lowerBounds are the smallest valid values of integer parameters.
var lowerBounds = []struct {
	i  int
	lo int64
}{
	{pDModel, 1}, {pNHeads, 1}, {pNKVHeads, 1}, {pHeadDim, 1}, {pNLayers, 1}, {pVocab, 1},
	{pDFF, 1}, {pTP, 1}, {pSharedExperts, 0}, {pDenseLayers, 0}, {pMoEFreq, 1}, {pNormsPerLayer, 0}, {pDtypeBytes, 1},
	{pArrayH, 1}, {pArrayW, 1}, {pArrays, 1}, {pSRAMKB, 0}, {pVectorUnits, 1}, {pVectorWidth, 1},
	{pHBMChannels, 1}, {pPIMGwrite, 0}, {pPIMGemv, 0}, {pLinkLatency, 0}, {pResident, 0},
	{pBatch, 1}, {pSeqLen, 1},
}

func validateRest(p []engine.Value) error {
	if p[pHBMChannels].I > maxChannels {
		return perr(pHBMChannels, p[pHBMChannels], "must be at most %d", maxChannels)
	}
	if p[pBatch].I > maxBatch {
		return perr(pBatch, p[pBatch], "must be at most %d", maxBatch)
	}
	if p[pNHeads].I%p[pNKVHeads].I != 0 {
		return perr(pNKVHeads, p[pNKVHeads], "must divide n_heads = %d", p[pNHeads].I)
	}
	if p[pDenseLayers].I > p[pNLayers].I {
		return perr(pDenseLayers, p[pDenseLayers], "exceeds n_layers = %d", p[pNLayers].I)
	}
	if p[pNumExperts].I > 0 && p[pSharedExperts].I > 0 && p[pDFFShared].I < 1 {
		return perr(pDFFShared, p[pDFFShared], "must be at least 1")
	}
	for _, i := range []int{pClockMHz, pHBMBytesPerCycle, pDRAMMHz, pLinkGBps} {
		if f := p[i].F; !(f > 0) || math.IsInf(f, 0) {
			return perr(i, p[i], "must be a positive number")
		}
	}
	if p[pSlidingWindow].I < 0 {
		return perr(pSlidingWindow, p[pSlidingWindow], "must be 0 (no sliding window) or positive")
	}
	if f := p[pSlidingFraction].F; !(f >= 0 && f <= 1) {
		return perr(pSlidingFraction, p[pSlidingFraction], "must be between 0 and 1")
	}
	if f := p[pCapacity].F; !(f >= 0) || math.IsInf(f, 0) {
		return perr(pCapacity, p[pCapacity], "must be 0 (dropless) or positive")
	}
	if f := p[pSkew].F; !(f >= 0) || f > 100 {
		return perr(pSkew, p[pSkew], "must be between 0 and 100")
	}
	if p[pRouting].S == "trace" && p[pNumExperts].I > 0 && p[pRoutingTrace].S == "" {
		return perr(pRouting, p[pRouting], "needs routing_trace")
	}
	// the metrics are 64-bit integers: the iteration's attention and FFN
	// work (layers · batch · (seq_len·d_model + d_model·d_ff·(top_k +
	// shared + 1)), in bytes) must stay far below 2^63
	f := func(i int) float64 { return float64(p[i].I) }
	work := f(pNLayers) * f(pBatch) * (f(pSeqLen)*f(pDModel) + f(pDModel)*f(pDFF)*float64(max(1, p[pTopK].I+p[pSharedExperts].I+1))) * f(pDtypeBytes)
	if work > 1<<60 {
		return perr(pSeqLen, p[pSeqLen], "with batch_size = %d, d_model = %d, d_ff = %d and n_layers = %d the iteration is too large to count in 64-bit integers (%.2g bytes of work)",
			p[pBatch].I, p[pDModel].I, p[pDFF].I, p[pNLayers].I, work)
	}
	return nil
}

// caseHint suggests the preset that name spells in another case (preset
// names are case-sensitive: gpt3-7B, mixtral-8x7b).
func caseHint(name string, names []string) string {
	for _, n := range names {
		if strings.EqualFold(n, name) {
			return fmt.Sprintf(" (did you mean %s?)", n)
		}
	}
	return ""
}
