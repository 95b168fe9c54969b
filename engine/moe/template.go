package moe

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/sweep-dse/sweep/engine"
)

// A resolveTemplate is what the unset parameters of a point that names no
// config file take: the model preset's values, then the hardware preset's,
// then the plain defaults (Unset where the default is derived). With it,
// Resolve fills a point in one pass over its parameters instead of one per
// source; a sweep resolves every point twice (the plan's check and the
// worker's), so this pass is a visible share of a sweep's CPU.
type resolveTemplate struct {
	key    templateKey
	vals   [nParams]engine.Value
	preset [nParams]bool // set by a preset: given, for derived defaults
	src    *modelSource  // the model preset (nil for none)
}

// templateKey names a template: the point's model and hardware values.
type templateKey struct {
	model, hardware       string
	modelSet, hardwareSet bool
}

var (
	lastTemplate atomic.Pointer[resolveTemplate]
	templates    sync.Map // templateKey -> *resolveTemplate, known presets only
)

// noFile reports whether a file parameter names no file.
func noFile(v engine.Value) bool { return !v.IsSet() || (v.Kind == engine.String && v.S == "") }

// templateFor returns the template of a point that names no config file and
// known presets (or none); nil otherwise, and then Resolve takes the long
// way, which also words the errors.
func templateFor(p []engine.Value) *resolveTemplate {
	if !noFile(p[pModelConfig]) || !noFile(p[pNPUConfig]) || !noFile(p[pMemConfig]) {
		return nil
	}
	m, h := p[pModel], p[pHardware]
	if (m.IsSet() && m.Kind != engine.String) || (h.IsSet() && h.Kind != engine.String) {
		return nil
	}
	k := templateKey{model: m.S, hardware: h.S, modelSet: m.IsSet(), hardwareSet: h.IsSet()}
	if t := lastTemplate.Load(); t != nil && t.key == k {
		return t
	}
	if v, ok := templates.Load(k); ok {
		t := v.(*resolveTemplate)
		lastTemplate.Store(t)
		return t
	}
	t := buildTemplate(k)
	if t == nil {
		return nil
	}
	templates.Store(k, t)
	lastTemplate.Store(t)
	return t
}

// buildTemplate fills an empty point as Resolve's long way does: model
// preset, hardware preset (the default one if unset), plain defaults. Nil
// for an unknown preset.
func buildTemplate(k templateKey) *resolveTemplate {
	t := &resolveTemplate{key: k}
	q := t.vals[:]
	if k.modelSet {
		q[pModel] = engine.StringV(k.model)
	}
	if k.hardwareSet {
		q[pHardware] = engine.StringV(k.hardware)
	}
	if v := q[pModel]; v.IsSet() && v.S != "custom" {
		vals, ok := modelValues(v.S)
		if !ok {
			return nil
		}
		fillVec(q, presetVec(&modelVecs, v.S, vals))
		t.src = presetSource(v.S)
	}
	if !q[pHardware].IsSet() {
		q[pHardware] = paramTable[pHardware].Default
	}
	vals, ok := hardwareValues(q[pHardware].S)
	if !ok {
		return nil
	}
	fillVec(q, presetVec(&hardwareVecs, q[pHardware].S, vals))
	for i := range q {
		t.preset[i] = q[i].IsSet()
		if !q[i].IsSet() {
			q[i] = defaultOf[i]
		}
	}
	return t
}

// resolveFrom is Resolve for a point with a template: one pass checks the
// given values and fills the others, then the derived defaults follow.
func (e *Engine) resolveFrom(dir string, p []engine.Value, t *resolveTemplate) error {
	given := givenBy(func(i int) bool { return p[i].IsSet() || t.preset[i] })
	given.widthFrom(p[pScaling].IsSet(), p[pDFFExpert].IsSet(), t.src)
	for i := range p {
		switch {
		case !p[i].IsSet():
			p[i] = t.vals[i]
		case p[i].Kind == kindOf[i] && !hasEnum[i]:
		default:
			if err := checkKind(p, i); err != nil {
				return err
			}
		}
	}
	return e.deriveTraced(dir, p, given)
}

// deriveTraced is derive for a point whose sequence trace, if any, is not
// loaded yet.
func (e *Engine) deriveTraced(dir string, p []engine.Value, given givenFlags) error {
	nreq, err := e.traceRequests(dir, p)
	if err != nil {
		return err
	}
	return e.derive(dir, p, nreq, given)
}

// maxPrepared bounds how many varying parameters a prepared resolution
// handles (a study varies a handful).
const maxPrepared = 16

// Prepare implements engine.Preparer for studies whose model, hardware
// and config files are fixed: the template fill and the checks of the
// fixed values are done once, and a point costs one copy of the prepared
// vector, its varying values and the derived defaults. (Resolve scans every
// parameter for whether it is set, and a sweep resolves each point twice;
// TestPrepare holds the two to the same results.) The other values of p
// are not read. A point with an unset varying value takes Resolve.
func (e *Engine) Prepare(dir string, base []engine.Value, vary []int) (func([]engine.Value) error, bool) {
	if len(base) != nParams || len(vary) > maxPrepared {
		return nil, false
	}
	vary = slices.Clone(vary)
	slices.Sort(vary) // errors name the first bad parameter, as Resolve's do
	q := slices.Clone(base)
	for _, i := range vary {
		switch {
		case i < 0 || i >= nParams:
			return nil, false
		case i == pModel || i == pHardware || paramTable[i].File:
			return nil, false // the template or a loaded file would vary
		}
		q[i] = engine.Value{}
	}
	t := templateFor(q)
	if t == nil {
		return nil, false
	}
	for i := range q {
		if err := checkKind(q, i); err != nil {
			return nil, false // Resolve words it
		}
	}
	given := givenBy(func(i int) bool { return q[i].IsSet() || slices.Contains(vary, i) || t.preset[i] })
	own := func(i int) bool { return q[i].IsSet() || slices.Contains(vary, i) }
	given.widthFrom(own(pScaling), own(pDFFExpert), t.src)
	prepared := make([]engine.Value, nParams)
	for i := range q {
		if q[i].IsSet() {
			prepared[i] = q[i]
		} else {
			prepared[i] = t.vals[i]
		}
	}
	base = slices.Clone(base)
	return func(p []engine.Value) error {
		if len(p) != nParams {
			return e.Resolve(dir, p)
		}
		var saved [maxPrepared]engine.Value
		unset := false
		for j, i := range vary {
			saved[j] = p[i]
			unset = unset || !p[i].IsSet()
		}
		if unset {
			copy(p, base) // Resolve's way, from the base values
		} else {
			copy(p, prepared)
		}
		for j, i := range vary {
			p[i] = saved[j]
		}
		if unset {
			return e.Resolve(dir, p)
		}
		// checked once all are back: a failed point is left as Resolve
		// leaves it
		for _, i := range vary {
			if p[i].Kind != kindOf[i] || hasEnum[i] {
				if err := checkKind(p, i); err != nil {
					return err
				}
			}
		}
		return e.deriveTraced(dir, p, given)
	}, true
}
