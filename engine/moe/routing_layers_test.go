package moe

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRoutingEachLayer: every MoE layer routes the batch on its own, so a
// point's routing figures are means over its layers. For a Mixtral-shaped
// layer at 8 requests (8 experts, top-2) the expected number of experts a
// layer touches is 8·(1 − (6/8)^8) = 7.199; over 100 seeds the 32-layer
// means must centre on it, and spread about sqrt(32) ≈ 5.7 times less
// than one layer's sample does (one sample standing for every layer gave
// 6, 7 or 8 experts, and latencies 15 % apart, by the seed alone).
func TestRoutingEachLayer(t *testing.T) {
	e := New()
	stats := func(layers int) (mean, sd, cyclesSD float64, whole int) {
		var xs, cs []float64
		for seed := 1; seed <= 100; seed++ {
			m := metrics(t, e, map[string]any{"d_model": 4096, "num_experts": 8, "top_k": 2,
				"d_ff_expert": 14336, "batch_size": 8, "n_layers": layers, "seed": seed})
			x := m["experts_active"].F
			xs = append(xs, x)
			cs = append(cs, float64(m["cycles_experts"].I)/float64(layers))
			if x == math.Trunc(x) {
				whole++
			}
		}
		mean, sd = meanSD(xs)
		_, cyclesSD = meanSD(cs)
		return mean, sd, cyclesSD, whole
	}
	want := 8 * (1 - math.Pow(6.0/8, 8))
	m1, sd1, c1, _ := stats(1)
	m32, sd32, c32, whole := stats(32)
	t.Logf("experts active per layer: 1 layer %.3f ± %.3f, 32 layers %.3f ± %.3f (expected %.3f); expert cycles per layer spread %.0f and %.0f",
		m1, sd1, m32, sd32, want, c1, c32)
	if math.Abs(m32-want) > 0.05 {
		t.Errorf("32 layers: %.3f experts active on average over the seeds, want %.3f", m32, want)
	}
	if math.Abs(m1-want) > 0.3 { // about 4 standard errors of 100 seeds
		t.Errorf("1 layer: %.3f experts active on average over the seeds, want %.3f", m1, want)
	}
	if sd1 < 3*sd32 || c1 < 3*c32 {
		t.Errorf("the 32-layer means spread %.3f (cycles %.0f), one layer %.3f (%.0f): want at least 3 times less", sd32, c32, sd1, c1)
	}
	if whole > 50 {
		t.Errorf("%d of 100 seeds give a whole number of active experts over 32 layers: not a mean of the layers", whole)
	}
}

func meanSD(xs []float64) (mean, sd float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		sd += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(sd / float64(len(xs)-1))
}

// TestSampleLayers checks the routing of the layers: its sums are those of
// the layers' samples, its first layer is the sample of layer 0, layers
// draw different samples, and the two layers it times are samples of the
// layers whose active experts, weighted 1−f and f, are the layers' mean.
func TestSampleLayers(t *testing.T) {
	e := New()
	for _, kv := range []map[string]any{
		{"num_experts": 64, "top_k": 2, "batch_size": 512, "n_layers": 32},
		{"num_experts": 8, "top_k": 2, "batch_size": 8, "n_layers": 32, "capacity_factor": 1.0},
		{"num_experts": 16, "top_k": 4, "batch_size": 100, "n_layers": 12, "routing": "zipf", "routing_skew": 1.2},
		{"num_experts": 8, "top_k": 8, "batch_size": 3, "n_layers": 4},
	} {
		kv["d_model"] = 1024
		c := e.config(point(t, e, kv))
		L := c.moeLayers()
		scratch := make([]int32, c.E)
		r := c.sampleLayers(L, scratch)
		var sum routeStats
		layerOf := map[string]routeStats{}
		for l := range L {
			st := c.sample(scratch, l)
			sum.assigned += st.assigned
			sum.dropped += st.dropped
			sum.active += st.active
			sum.maxLoad += st.maxLoad
			sum.loaded += st.loaded
			layerOf[fmt.Sprint(scratch[:c.E])] = st
		}
		if r.layers != L || r.sum != sum {
			t.Fatalf("%v: %d layers (want %d), sums %+v, want %+v", kv, r.layers, L, r.sum, sum)
		}
		if r.sum.assigned+r.sum.dropped != L*c.batch*c.K {
			t.Fatalf("%v: %d assigned + %d dropped over %d layers, want %d", kv, r.sum.assigned, r.sum.dropped, L, L*c.batch*c.K)
		}
		lo, okLo := layerOf[fmt.Sprint(r.lo)]
		hi, okHi := layerOf[fmt.Sprint(r.hi)]
		if !okLo || !okHi || r.f < 0 || r.f > 1 {
			t.Fatalf("%v: timed layers are samples %v and %v, f %v", kv, okLo, okHi, r.f)
		}
		if got, want := (1-r.f)*float64(lo.active)+r.f*float64(hi.active), r.mean(r.sum.active); math.Abs(got-want) > 1e-9 {
			t.Fatalf("%v: blended active experts %v (%d, %d at f %v), the layers' mean %v", kv, got, lo.active, hi.active, r.f, want)
		}
		one := c.sampleLayers(1, scratch)
		first := slices.Clone(scratch[:c.E])
		st := c.sample(scratch, 0)
		if st != one.sum || !slices.Equal(first, scratch[:c.E]) || !slices.Equal(one.lo, first) || one.f != 0 {
			t.Fatalf("%v: one layer's routing %+v is not the sample of layer 0 %+v", kv, one.sum, st)
		}
		if c.K < c.E {
			c.sample(scratch, 1)
			if slices.Equal(first, scratch[:c.E]) {
				t.Fatalf("%v: layers 0 and 1 drew the same routing", kv)
			}
		}
	}
}

// TestExpertFFNsOneLayer: over one layer, the experts are timed as that
// layer's every active expert in turn; over two layers they blend.
func TestExpertFFNsOneLayer(t *testing.T) {
	e := New()
	for _, kv := range []map[string]any{
		{"num_experts": 64, "top_k": 2, "batch_size": 512},
		{"num_experts": 8, "top_k": 2, "batch_size": 8},
		{"num_experts": 16, "top_k": 16, "batch_size": 300, "ffn": "swiglu"},
		{"num_experts": 32, "top_k": 4, "batch_size": 1000, "routing": "zipf", "routing_skew": 1.5},
	} {
		kv["d_model"], kv["n_layers"] = 2048, 1
		c := e.config(point(t, e, kv))
		scratch := make([]int32, c.E)
		r := c.sampleLayers(1, scratch)
		time := func(f func(c *config, t *tally)) (tally, Seq) {
			d := c
			d.seq = Seq{Dev: d.dev, Backlog: 12345}
			var t tally
			f(&d, &t)
			return t, d.seq
		}
		ta, sa := time(func(c *config, t *tally) { c.expertFFNs(t, &r) })
		tb, sb := time(func(c *config, t *tally) {
			for _, n := range r.lo {
				if n > 0 {
					c.ffn(t, int64(n), c.dFFE)
				}
			}
		})
		near := func(x, y float64) bool { return math.Abs(x-y) <= 1e-9*math.Max(1, math.Abs(y)) }
		if ta != tb || !near(sa.T, sb.T) || !near(sa.Mem, sb.Mem) || sa.Backlog != sb.Backlog {
			t.Fatalf("%v: one layer %+v (seq %+v), every expert %+v (seq %+v)", kv, ta, sa, tb, sb)
		}
		// two layers blended at f: the weighted work of each
		two := r
		c.sample(scratch, 1)
		two.hi, two.f = slices.Clone(scratch[:c.E]), 0.25
		tl, sl := time(func(c *config, t *tally) { c.expertsOf(t, two.lo, new(expertMemo)) })
		th, sh := time(func(c *config, t *tally) { c.expertsOf(t, two.hi, new(expertMemo)) })
		tm, sm := time(func(c *config, t *tally) { c.expertFFNs(t, &two) })
		want := func(a, b int64) int64 { return int64(math.Round(0.75*float64(a) + 0.25*float64(b))) }
		if tm.cycles != want(tl.cycles, th.cycles) || tm.macs != want(tl.macs, th.macs) ||
			math.Abs(sm.T-(0.75*sl.T+0.25*sh.T)) > 1e-6 || math.Abs(sm.Backlog-(0.75*sl.Backlog+0.25*sh.Backlog)) > 1e-6 {
			t.Fatalf("%v: blend %+v (seq %+v) of %+v and %+v", kv, tm, sm, tl, th)
		}
	}
}

// TestRoutingTraceLayers: MoE layer l routes by the trace's layer l mod its
// layers, and its resident experts are the ones that layer picks most. In
// layer 0 of this trace every token takes experts 0 and 1; in layer 1,
// token t takes t mod 4 and t+1 mod 4.
func TestRoutingTraceLayers(t *testing.T) {
	var b strings.Builder
	b.WriteString("layer_id,token_id,expert_0,expert_1,expert_2,expert_3\n")
	for _, layer := range []int{0, 1} {
		for tok := 0; tok < 8; tok++ {
			p := []float64{0.01, 0.01, 0.01, 0.01}
			pick := []int{0, 1}
			if layer == 1 {
				pick = []int{tok % 4, (tok + 1) % 4}
			}
			p[pick[0]], p[pick[1]] = 0.6, 0.3
			fmt.Fprintf(&b, "%d,%d,%g,%g,%g,%g\n", 7+layer, tok, p[0], p[1], p[2], p[3]) // layer ids need not start at 0
		}
	}
	path := filepath.Join(t.TempDir(), "routing.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	e := New()
	for _, tc := range []struct {
		layers         int
		active, loaded float64
		maxLoad        float64
		resident       int
		want           string
	}{
		{1, 2, 0, 8, 2, "one layer: the trace's first"},
		{2, 3, 1, 6, 2, "two: layer 0 takes 2 experts, both resident; layer 1 all 4 (4 tokens each), 2 of them loaded"},
		{4, 3, 1, 6, 2, "four: the trace's layers in turn"},
		{2, 3, 2, 6, 1, "one resident per layer: 1 of 2 loaded in layer 0, 3 of 4 in layer 1"},
	} {
		m := metrics(t, e, map[string]any{"d_model": 256, "n_heads": 4, "n_layers": tc.layers, "num_experts": 4, "top_k": 2,
			"batch_size": 8, "routing": "trace", "routing_trace": path, "resident_experts": tc.resident})
		if m["experts_active"].F != tc.active || m["experts_loaded"].F != tc.loaded || m["tokens_per_expert_max"].F != tc.maxLoad {
			t.Errorf("%s: experts active %v, loaded %v, max load %v; want %v, %v, %v", tc.want,
				m["experts_active"].F, m["experts_loaded"].F, m["tokens_per_expert_max"].F, tc.active, tc.loaded, tc.maxLoad)
		}
	}
}
