package sweep

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestNoEffectOnSomePoints: an axis that some points ignore is a
// legitimate design (routing × routing_skew): the plan succeeds with one
// note saying how many points ignore it; a [base] value some points ignore
// repeats nothing and gets no note.
func TestNoEffectOnSomePoints(t *testing.T) {
	pl := planOf(t, `[study]
name = "t"
[base]
num_experts = 8
routing_trace = "testdata/bad/routing8.csv"
[axes]
routing = ["uniform", "zipf", "trace"]
routing_skew = [0.5, 1.0, 2.0]
top_k = [1, 2]
[[zip]]
batch_size = [16, 32]
seed = [1, 2]
`)
	notes := pl.Notes()
	want := []string{
		`note: t.toml:8: axes.routing_skew has no effect on 24 of 36 points (routing_skew applies only to routing = "zipf"; those points have routing = "uniform" or "trace"): points that differ only in routing_skew repeat each other's results there`,
		`note: t.toml:12: zip[0].seed has no effect on 12 of 36 points (seed applies only to random routing, routing = "uniform" or "zipf": a trace draws nothing; those points have routing = "trace"): points that differ only in seed repeat each other's results there`,
	}
	if !reflect.DeepEqual(notes, want) {
		t.Errorf("notes\n  %s\nwant\n  %s", strings.Join(notes, "\n  "), strings.Join(want, "\n  "))
	}
	// a dense baseline beside MoE points: the base values of MoE layers do
	// not apply to it, and that is no mistake
	pl = planOf(t, `[study]
name = "t"
seed = 3
[base]
routing = "zipf"
resident_experts = 4096
[axes]
num_experts = [0, 8, 64]
batch_size = [64, 128]
`)
	if n := pl.Notes(); len(n) != 0 {
		t.Errorf("notes %q for [base] values", n)
	}
	if len(pl.NoEffect) != 2 { // [study] seed is a study-wide default: never counted
		t.Errorf("ignored %+v, want base.routing and base.resident_experts", pl.NoEffect)
	}
	for _, x := range pl.NoEffect {
		if x.Points != 2 || x.Of != 6 || x.Varied || x.All() {
			t.Errorf("%+v: want 2 of 6 points, not varied", x)
		}
	}
}

// TestNoEffectMessage names the reasons and the values that decide them,
// when points ignore a parameter for several reasons.
func TestNoEffectMessage(t *testing.T) {
	s, err := Parse("t.toml", `[study]
name = "t"
[axes]
num_experts = [0, 8]
routing = ["uniform", "trace"]
routing_skew = [1.0, 2.0]
[base]
routing_trace = "testdata/bad/routing8.csv"
`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Expand(context.Background(), s, t.TempDir(), PlanOptions{})
	var ie *InputError
	if !errors.As(err, &ie) {
		t.Fatalf("error %v, want an InputError", err)
	}
	want := `t.toml:6: axes.routing_skew: has no effect on any point: routing_skew applies only to MoE layers, num_experts >= 1 (at num_experts = 0); routing_skew applies only to routing = "zipf" (at routing = "uniform" or "trace")`
	if err.Error() != want {
		t.Errorf("error\n  %v\nwant\n  %s", err, want)
	}
}

// TestNoEffectIsStudyWide: every shard of a study, and every worker count,
// finds the same: a key without effect fails each shard alike, and the
// counts are those of the whole study.
func TestNoEffectIsStudyWide(t *testing.T) {
	text := `[study]
name = "t"
# the routing trace has 8 experts
where = ["top_k <= num_experts", 'routing != "trace" || num_experts == 8']
[axes]
num_experts = {from = 0, to = 40, step = 1}
top_k = [1, 2, 4]
batch_size = {from = 1, to = 300, step = 1}
routing = ["uniform", "zipf", "trace"]
routing_skew = [0.5, 1.5]
[base]
routing_trace = "testdata/bad/routing8.csv"
`
	s, err := Parse("t.toml", text)
	if err != nil {
		t.Fatal(err)
	}
	var first []NoEffect
	for _, o := range []PlanOptions{{Jobs: 1}, {Jobs: 2}, {Jobs: 3}, {Jobs: 2, Shard: Shard{1, 4}}, {Jobs: 2, Shard: Shard{3, 4}}} {
		pl, err := Expand(context.Background(), s, filepath.Join(t.TempDir(), "none"), o)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = pl.NoEffect
			if len(first) == 0 {
				t.Fatal("nothing ignored")
			}
			continue
		}
		if !reflect.DeepEqual(pl.NoEffect, first) {
			t.Errorf("%+v: ignored\n  %+v\nwant\n  %+v", o, pl.NoEffect, first)
		}
	}
	for _, x := range first {
		t.Logf("%s: %d of %d: %s", x.Key, x.Points, x.Of, x.Msg)
	}
}

// TestNoEffectLenient: with Lenient (sweep status), a key without effect
// on any point is listed, not an error.
func TestNoEffectLenient(t *testing.T) {
	s, err := Parse("t.toml", `[study]
name = "t"
[axes]
routing_skew = [1.0, 2.0]
num_experts = [4, 8]
`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Expand(context.Background(), s, t.TempDir(), PlanOptions{}); err == nil {
		t.Fatal("no error")
	}
	pl, err := Expand(context.Background(), s, t.TempDir(), PlanOptions{Lenient: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.NoEffect) != 1 || !pl.NoEffect[0].All() || pl.NoEffect[0].Key != "axes.routing_skew" || pl.Points != 4 {
		t.Errorf("ignored %+v, points %d", pl.NoEffect, pl.Points)
	}
}
