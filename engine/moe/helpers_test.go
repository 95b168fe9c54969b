package moe

import (
	"context"
	"testing"

	"github.com/sweep-dse/sweep/engine"
)

// point builds a resolved point from name=value pairs.
func point(t testing.TB, e *Engine, kv map[string]any) []engine.Value {
	t.Helper()
	p, err := tryPoint(e, kv)
	if err != nil {
		t.Fatalf("resolve %v: %v", kv, err)
	}
	return p
}

func tryPoint(e *Engine, kv map[string]any) ([]engine.Value, error) {
	p, _ := values(kv)
	return p, e.Resolve("testdata", p)
}

// values is kv as an unresolved point, and which parameters it gives.
func values(kv map[string]any) ([]engine.Value, []bool) {
	p := make([]engine.Value, nParams)
	given := make([]bool, nParams)
	for name, v := range kv {
		i := engine.ParamIndex(paramTable[:], name)
		if i < 0 {
			panic("no param " + name)
		}
		switch x := v.(type) {
		case int:
			p[i] = engine.IntV(int64(x))
		case float64:
			p[i] = engine.FloatV(x)
		case string:
			p[i] = engine.StringV(x)
		case bool:
			p[i] = engine.BoolV(x)
		}
		given[i] = true
	}
	return p, given
}

// metrics evaluates a point and returns its metrics by name.
func metrics(t testing.TB, e *Engine, kv map[string]any) map[string]engine.Value {
	t.Helper()
	p := point(t, e, kv)
	out := make([]engine.Value, len(e.Metrics()))
	if err := e.Evaluate(context.Background(), p, out); err != nil {
		t.Fatal(err)
	}
	m := map[string]engine.Value{}
	for i, f := range e.Metrics() {
		m[f.Name] = out[i]
	}
	for i, pr := range e.Params() {
		m["in."+pr.Name] = p[i]
	}
	return m
}

// seedPoint is the seed document's validation point.
func seedPoint() map[string]any {
	return map[string]any{"d_model": 4096, "num_experts": 64, "top_k": 2, "moe_ffn_scaling": "balanced", "batch_size": 512}
}
