package moe

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sweep-dse/sweep/engine"
)

// TestResolveTemplate holds Resolve's one-pass fill (a template of presets
// and defaults) to the long way, source by source: on random points, valid
// and not, both give the same vector or the same error.
func TestResolveTemplate(t *testing.T) {
	e := New()
	r := rand.New(rand.NewPCG(1, 2))
	models := append([]string{"custom", "no-such-model"}, ModelPresetNames()...)
	hardware := append([]string{"no-such-hardware"}, HardwarePresetNames()...)
	random := randomValue(r)
	var fast, ok int
	for trial := range 20000 {
		p := make([]engine.Value, nParams)
		if r.IntN(5) > 0 {
			p[pModel] = engine.StringV(models[r.IntN(len(models))])
		}
		if r.IntN(3) > 0 {
			p[pHardware] = engine.StringV(hardware[r.IntN(len(hardware))])
		}
		for range r.IntN(6) {
			i := r.IntN(nParams)
			if paramTable[i].File || i == pModel || i == pHardware {
				continue
			}
			p[i] = random(i)
		}
		if templateFor(p) != nil {
			fast++
		}
		a, b := append([]engine.Value(nil), p...), append([]engine.Value(nil), p...)
		errA, errB := e.Resolve("", a), e.resolveLong("", b)
		if (errA == nil) != (errB == nil) || (errA != nil && errA.Error() != errB.Error()) {
			t.Fatalf("trial %d, point %v: Resolve says %v, the long way %v", trial, p, errA, errB)
		}
		if errA != nil {
			continue
		}
		ok++
		for i := range a {
			if !a[i].Identical(b[i]) {
				t.Fatalf("trial %d, point %v: %s = %v, the long way %v", trial, p, paramTable[i].Name, a[i], b[i])
			}
		}
	}
	// the comparison means something only if both paths and both outcomes occur
	if fast < 10000 || ok < 2000 || ok > 18000 {
		t.Fatalf("%d of 20000 points took the template, %d resolved", fast, ok)
	}
	t.Logf("%d of 20000 points took the template, %d resolved", fast, ok)
}

// TestPrepare holds prepared resolution to Resolve: for random studies
// (fixed values and varying parameters) and random points of them, valid
// and not, both give the same vector or the same error.
func TestPrepare(t *testing.T) {
	e := New()
	r := rand.New(rand.NewPCG(3, 4))
	random := randomValue(r)
	models := append([]string{"custom"}, ModelPresetNames()...)
	var prepared, points, ok int
	for study := range 3000 {
		base := make([]engine.Value, nParams)
		if r.IntN(4) > 0 {
			base[pModel] = engine.StringV(models[r.IntN(len(models))])
		}
		if r.IntN(2) > 0 {
			base[pHardware] = engine.StringV(HardwarePresetNames()[r.IntN(len(HardwarePresetNames()))])
		}
		for range r.IntN(4) {
			if i := r.IntN(nParams); !paramTable[i].File && i != pModel && i != pHardware {
				base[i] = random(i)
			}
		}
		var vary []int
		for range 1 + r.IntN(5) {
			if i := r.IntN(nParams); !slices.Contains(vary, i) {
				vary = append(vary, i)
			}
		}
		resolve, can := e.Prepare("", base, vary)
		if !can {
			continue
		}
		prepared++
		for range 20 {
			p := slices.Clone(base)
			for _, i := range vary {
				p[i] = random(i)
				if r.IntN(50) == 0 {
					p[i] = engine.Value{} // an unset varying value: Resolve's way
				}
			}
			a, b := slices.Clone(p), slices.Clone(p)
			if r.IntN(2) == 0 {
				// the prepared resolution reads only the varying values
				for i := range a {
					if !slices.Contains(vary, i) {
						a[i] = random(i)
					}
				}
			}
			errA, errB := resolve(a), e.Resolve("", b)
			points++
			if (errA == nil) != (errB == nil) || (errA != nil && errA.Error() != errB.Error()) {
				t.Fatalf("study %d (vary %v), point %v: prepared says %v, Resolve %v", study, vary, p, errA, errB)
			}
			if errA != nil {
				continue
			}
			ok++
			for i := range a {
				if !a[i].Identical(b[i]) {
					t.Fatalf("study %d (vary %v), point %v: %s = %v, Resolve %v", study, vary, p, paramTable[i].Name, a[i], b[i])
				}
			}
		}
	}
	// the comparison means something only if both outcomes occur often
	if prepared < 1000 || ok < 5000 || ok > points-5000 {
		t.Fatalf("%d of 3000 studies prepared; %d of %d points resolved", prepared, ok, points)
	}
	t.Logf("%d of 3000 studies prepared; %d of %d points resolved", prepared, ok, points)
	// what Prepare declines
	for _, vary := range [][]int{{pModel}, {pHardware}, {pSeqTrace}, {pModelConfig}} {
		if _, can := e.Prepare("", make([]engine.Value, nParams), vary); can {
			t.Errorf("prepared a study varying %s", paramTable[vary[0]].Name)
		}
	}
	bad := make([]engine.Value, nParams)
	bad[pDModel] = engine.StringV("wide")
	if _, can := e.Prepare("", bad, []int{pBatch}); can {
		t.Error("prepared a study whose fixed values Resolve refuses")
	}
}

// TestPrepareFailedPoint checks that a point the prepared resolution
// refuses keeps every value it was given, as with Resolve (the plan's
// error message describes the point from them).
func TestPrepareFailedPoint(t *testing.T) {
	e := New()
	base := make([]engine.Value, nParams)
	base[pModel] = engine.StringV("gpt3-7B")
	resolve, ok := e.Prepare("", base, []int{pScaling, pBatch})
	if !ok {
		t.Fatal("not prepared")
	}
	p := slices.Clone(base)
	p[pScaling] = engine.StringV("bogus")
	p[pBatch] = engine.IntV(64)
	a, b := slices.Clone(p), slices.Clone(p)
	errA, errB := resolve(a), e.Resolve("", b)
	if errA == nil || errB == nil || errA.Error() != errB.Error() {
		t.Fatalf("errors %v / %v", errA, errB)
	}
	for i := range p {
		if p[i].IsSet() && a[i] != b[i] {
			t.Fatalf("after the error %s is %v by the prepared resolution, %v by Resolve", paramTable[i].Name, a[i], b[i])
		}
	}
}

// BenchmarkResolve resolves the seed point from what a study gives, through
// its template and the long way.
func BenchmarkResolve(b *testing.B) {
	e := New()
	b.Run("template", func(b *testing.B) { benchResolve(b, e.Resolve) })
	b.Run("long", func(b *testing.B) { benchResolve(b, e.resolveLong) })
}

func benchResolve(b *testing.B, resolve func(string, []engine.Value) error) {
	given := make([]engine.Value, nParams)
	given[pModel] = engine.StringV("gpt3-7B")
	given[pNumExperts] = engine.IntV(64)
	given[pTopK] = engine.IntV(2)
	given[pBatch] = engine.IntV(512)
	given[pNLayers] = engine.IntV(1)
	given[pScaling] = engine.StringV("balanced")
	p := make([]engine.Value, nParams)
	b.ReportAllocs()
	for b.Loop() {
		copy(p, given)
		if err := resolve("", p); err != nil {
			b.Fatal(err)
		}
	}
}

// randomValue returns a generator of random values for a parameter: mostly
// of its kind (small and large, valid and not), sometimes another kind.
func randomValue(r *rand.Rand) func(i int) engine.Value {
	ints := []int64{-1, 0, 1, 2, 3, 4, 7, 8, 16, 64, 128, 512, 4096, 1 << 40}
	floats := []float64{-1, 0, 0.5, 1, 1.25, 2, 100, 1e300, math.Inf(1)}
	return func(i int) engine.Value {
		if r.IntN(20) == 0 { // a value of the wrong kind
			return engine.StringV("x")
		}
		switch paramTable[i].Kind {
		case engine.Int:
			return engine.IntV(ints[r.IntN(len(ints))])
		case engine.Float:
			if r.IntN(4) == 0 {
				return engine.IntV(ints[r.IntN(len(ints))]) // an int for a float parameter
			}
			return engine.FloatV(floats[r.IntN(len(floats))])
		case engine.Bool:
			return engine.BoolV(r.IntN(2) == 0)
		default:
			if enum := paramTable[i].Enum; len(enum) > 0 && r.IntN(10) > 0 {
				return engine.StringV(enum[r.IntN(len(enum))])
			}
			return engine.StringV("other")
		}
	}
}
