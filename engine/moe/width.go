package moe

import (
	"fmt"
	"math"
	"math/bits"
	"reflect"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/sweep-dse/sweep/engine"
)

// The expert width d_ff_expert comes, first found:
//
//   - from the point (d_ff_expert given): as given; giving moe_ffn_scaling
//     too is a conflict;
//   - from the model preset or config file, with moe_ffn_scaling given:
//     the model's width rescaled from its own expert count E0 to the
//     point's E (modelWidth): balanced keeps the experts' total width,
//     d_ff_expert0·E0/E; compute d_ff_expert0·sqrt(E0/E); capacity
//     d_ff_expert0;
//   - from the model preset or config file, without moe_ffn_scaling: the
//     model's width, whatever num_experts is;
//   - from moe_ffn_scaling (default balanced) over d_ff (expertWidth).
//
// Every width is rounded down and at least 1.

// modelWidth is d_ff_expert from the scaling mode relative to a model that
// has E0 experts of width w, rounded down and at least 1: balanced
// floor(w·E0/E), compute floor(w·sqrt(E0/E)), capacity w. At E = E0 every
// mode gives w; E0 < 1 leaves w as it is.
func modelWidth(mode string, w, E0, E int64) int64 {
	if E0 < 1 || E < 1 || w < 1 {
		return max(w, 1)
	}
	var r int64
	switch mode {
	case "compute":
		r = sqrtScaled(w, E0, E)
	case "capacity":
		r = w
	default:
		hi, lo := bits.Mul64(uint64(w), uint64(E0))
		if hi >= uint64(E) {
			return math.MaxInt64
		}
		q, _ := bits.Div64(hi, lo, uint64(E))
		r = int64(min(q, math.MaxInt64))
	}
	return max(r, 1)
}

// sqrtScaled is floor(w·sqrt(E0/E)), exact: the largest x with
// x²·E <= w²·E0 (a float estimate, corrected in 128-bit integers; for
// widths beyond 2^31 the estimate stands).
func sqrtScaled(w, E0, E int64) int64 {
	x := int64(math.Floor(float64(w) * math.Sqrt(float64(E0)/float64(E))))
	if w >= 1<<31 || x >= 1<<31 || E0 > 1<<31 || E > 1<<31 {
		return x
	}
	// le reports a²·b <= c²·d for a, c < 2^32
	le := func(a, b, c, d int64) bool {
		h1, l1 := bits.Mul64(uint64(a*a), uint64(b))
		h2, l2 := bits.Mul64(uint64(c*c), uint64(d))
		return h1 < h2 || h1 == h2 && l1 <= l2
	}
	for x > 0 && !le(x, E, w, E0) {
		x--
	}
	for le(x+1, E, w, E0) {
		x++
	}
	return x
}

// modelSource is what a point's model preset or model config file sets,
// as far as the derived defaults need it: which parameters, and the
// expert width and count the expert width rule scales from.
type modelSource struct {
	name    string // `model preset mixtral-8x7b`, `model_config "m.json"`
	preset  string // the preset's name ("" for a config file)
	by      int    // pModel or pModelConfig
	sets    [nParams]bool
	dffe, E int64 // its d_ff_expert (0 when it sets none) and num_experts
}

var (
	presetSources sync.Map // preset name -> *modelSource
	lastSource    atomic.Pointer[modelSource]
	configSources sync.Map // configKey -> *modelSource
)

// configKey names a loaded model config file: its name as written and the
// values loaded from it (one name may name files in two folders).
type configKey struct {
	name string
	vals unsafe.Pointer
}

// presetSource is the source of model preset name (nil for custom or an
// unknown name).
func presetSource(name string) *modelSource {
	if s := lastSource.Load(); s != nil && s.preset == name {
		return s
	}
	if v, ok := presetSources.Load(name); ok {
		s := v.(*modelSource)
		lastSource.Store(s)
		return s
	}
	vals, ok := modelValues(name)
	if !ok || name == "custom" {
		return nil
	}
	s := &modelSource{name: "model preset " + name, preset: name, by: pModel}
	pv := presetVec(&modelVecs, name, vals)
	for j, i := range pv.idx {
		s.sets[i] = true
		switch i {
		case pDFFExpert:
			s.dffe = pv.vals[j].I
		case pNumExperts:
			s.E = pv.vals[j].I
		}
	}
	presetSources.Store(name, s)
	lastSource.Store(s)
	return s
}

// configSource is the source of a loaded model config file's values.
func configSource(name string, vals map[string]engine.Value) *modelSource {
	k := configKey{name: name, vals: reflect.ValueOf(vals).UnsafePointer()}
	if v, ok := configSources.Load(k); ok {
		return v.(*modelSource)
	}
	s := &modelSource{name: fmt.Sprintf("model_config %q", name), by: pModelConfig}
	for k := range vals {
		if i := engine.ParamIndex(paramTable[:], k); i >= 0 {
			s.sets[i] = true
		}
	}
	if v, ok := vals["d_ff_expert"]; ok && v.Kind == engine.Int {
		s.dffe = v.I
	}
	if v, ok := vals["num_experts"]; ok && v.Kind == engine.Int {
		s.E = v.I
	}
	configSources.Store(k, s)
	return s
}

// sourceOf is the model source of a resolved point: its config file (which
// Resolve has loaded) or its preset; nil for neither. It runs for every
// point of a study that gives moe_ffn_scaling or biases (Ignoring).
func (e *Engine) sourceOf(p []engine.Value) *modelSource {
	if name := p[pModelConfig].S; name != "" {
		if m, ok := e.files.get(name).(map[string]engine.Value); ok {
			return configSource(name, m)
		}
		return nil
	}
	name := p[pModel].S
	if s := lastSource.Load(); s != nil && s.preset == name {
		return s
	}
	if name == "custom" || name == "" {
		return nil
	}
	return presetSource(name)
}

// widthFrom sets the flags of the expert width rule: ownScaling, ownDFFE
// whether the point itself gives moe_ffn_scaling and d_ff_expert, and src
// its model source.
func (g *givenFlags) widthFrom(ownScaling, ownDFFE bool, src *modelSource) {
	g.scaling, g.ownDFFE = ownScaling, ownDFFE
	if !ownDFFE && src != nil && src.dffe > 0 {
		g.srcDFFE, g.srcE = src.dffe, src.E
	}
}

// ExpertWidthOrigin says where the expert width of the resolved point p
// came from, given the values the user set (given, before Resolve): "given",
// "moe_ffn_scaling balanced: d_ff/E = 14336/8", "model preset mixtral-8x7b's
// 14336 at 8 experts, moe_ffn_scaling balanced: 14336·8/32", ...; "" for a
// point without experts.
func (e *Engine) ExpertWidthOrigin(given, p []engine.Value) string {
	if len(given) != nParams || len(p) != nParams || p[pNumExperts].I < 1 {
		return ""
	}
	E, mode := p[pNumExperts].I, p[pScaling].S
	if given[pDFFExpert].IsSet() {
		return "given"
	}
	if src := e.sourceOf(p); src != nil && src.dffe > 0 {
		of := fmt.Sprintf("%s's %d at %d experts", src.name, src.dffe, src.E)
		if !given[pScaling].IsSet() {
			if E == src.E {
				return fmt.Sprintf("%s's", src.name)
			}
			return of + "; moe_ffn_scaling rescales it only when given"
		}
		switch mode {
		case "compute":
			return fmt.Sprintf("%s, moe_ffn_scaling compute: %d·sqrt(%d/%d)", of, src.dffe, src.E, E)
		case "capacity":
			return of + ", moe_ffn_scaling capacity: the same"
		}
		return fmt.Sprintf("%s, moe_ffn_scaling balanced: %d·%d/%d", of, src.dffe, src.E, E)
	}
	dff := p[pDFF].I
	switch mode {
	case "compute":
		return fmt.Sprintf("moe_ffn_scaling compute: d_ff/sqrt(E) = %d/sqrt(%d)", dff, E)
	case "capacity":
		return fmt.Sprintf("moe_ffn_scaling capacity: d_ff = %d", dff)
	}
	return fmt.Sprintf("moe_ffn_scaling balanced: d_ff/E = %d/%d", dff, E)
}
