package sweep

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sweep-dse/sweep/engine"
)

// loadAndExpand does what `sweep run` does before it writes anything.
func loadAndExpand(path string) error {
	s, err := Load(path)
	if err != nil {
		return err
	}
	_, err = Expand(context.Background(), s, filepath.Join(os.TempDir(), "sweep-no-such-dataset"), PlanOptions{})
	return err
}

// TestMalformedStudies runs every file of testdata/bad: each names, on its
// first line, the error it must give ("# want: :LINE: KEY: message").
func TestMalformedStudies(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.toml")
	if len(files) < 40 {
		t.Fatalf("only %d malformed studies", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want := wantLine(t, f)
			err := loadAndExpand(f)
			if err == nil {
				t.Fatalf("no error, want %q", want)
			}
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("error %T %v is not an InputError", err, err)
			}
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error\n  %v\nwant it to contain\n  %s", err, want)
			}
			if !strings.HasPrefix(err.Error(), f) {
				t.Errorf("error %q does not start with the file name", err)
			}
		})
	}
}

func wantLine(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	w, ok := strings.CutPrefix(sc.Text(), "# want: ")
	if !ok {
		t.Fatalf("%s: first line must be # want: ...", path)
	}
	return w
}

func TestSeedStudyExpands(t *testing.T) {
	s, err := Load("../studies/seed-moe.toml")
	if err != nil {
		t.Fatal(err)
	}
	pl, err := Expand(context.Background(), s, t.TempDir(), PlanOptions{Preview: 3})
	if err != nil {
		t.Fatal(err)
	}
	// 5 experts x 3 modes x 4 batches x 3 top-k; top_k <= 8 always holds
	if pl.Combinations != 180 || pl.Points != 180 || pl.Dropped != 0 || pl.Pending.Count() != 180 {
		t.Fatalf("plan %+v", pl)
	}
}

func TestConstraintsAndZip(t *testing.T) {
	text := `[study]
name = "t"
where = ["top_k <= num_experts", "batch_size * top_k >= 8"]
[axes]
num_experts = [1, 2, 4]
top_k = {from = 1, to = 4, step = 1}
batch_size = {from = 1, to = 8, mul = 2}
[[zip]]
d_model = [1024, 2048]
n_heads = [8, 16]
`
	s, err := Parse("t.toml", text)
	if err != nil {
		t.Fatal(err)
	}
	if s.Combinations() != 3*4*4*2 {
		t.Fatalf("combinations %d", s.Combinations())
	}
	pl, err := Expand(context.Background(), s, t.TempDir(), PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// count by brute force
	want := int64(0)
	for _, e := range []int{1, 2, 4} {
		for k := 1; k <= 4; k++ {
			for _, b := range []int{1, 2, 4, 8} {
				if k <= e && b*k >= 8 {
					want += 2
				}
			}
		}
	}
	if pl.Points != want || pl.Dropped != s.Combinations()-want {
		t.Fatalf("points %d dropped %d, want %d", pl.Points, pl.Dropped, want)
	}
}

// planOf parses a study text and expands it against an empty dataset.
func planOf(t *testing.T, text string) *Plan {
	t.Helper()
	s, err := Parse("t.toml", text)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := Expand(context.Background(), s, t.TempDir(), PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

// TestDistinctInputsAreDistinctPoints: resolution keeps given values, so
// combinations that differ only in values the engine ignores (MoE fields of
// a dense layer) stay distinct points. A study whose every point ignores
// them is refused (testdata/bad/noeffect-*.toml), unless Lenient.
func TestDistinctInputsAreDistinctPoints(t *testing.T) {
	pl := planOf(t, `[study]
name = "t"
[axes]
num_experts = [0, 8]
seed = [1, 2]
routing = ["uniform", "zipf"]
`)
	if pl.Points != 8 {
		t.Fatalf("points %d", pl.Points)
	}
	s, err := Parse("t.toml", `[study]
name = "t"
[axes]
num_experts = [0]
seed = [1, 2]
routing = ["uniform", "zipf"]
`)
	if err != nil {
		t.Fatal(err)
	}
	pl, err = Expand(context.Background(), s, t.TempDir(), PlanOptions{Lenient: true})
	if err != nil {
		t.Fatal(err)
	}
	if pl.Points != 4 {
		t.Fatalf("dense points %d", pl.Points)
	}
}

// TestKeepTableMatchesEvaluation compares the tabulated constraints with
// evaluating them, on every combination of a study whose constraints read
// some axes and not others.
func TestKeepTableMatchesEvaluation(t *testing.T) {
	text := `[study]
name = "t"
repeats = 2
where = ["top_k <= num_experts", "batch_size * top_k >= 8 || d_model > 1024"]
[axes]
num_experts = [1, 2, 4, 8]
seq_len = [128, 256, 512]
top_k = {from = 1, to = 4, step = 1}
batch_size = {from = 1, to = 8, mul = 2}
[[zip]]
d_model = [1024, 2048]
n_heads = [8, 16]
`
	s, err := Parse("t.toml", text)
	if err != nil {
		t.Fatal(err)
	}
	if s.table() == nil || len(s.table().dims) != 4 {
		t.Fatalf("table over %v", s.table())
	}
	f := s.NewFilter()
	p := make([]engine.Value, len(s.Engine.Params()))
	kept := 0
	for idx := int64(0); idx < s.Combinations(); idx++ {
		s.Fill(idx, p)
		a, err1 := f.Keep(p)
		b, err2 := f.KeepIndex(idx, p)
		if a != b || err1 != nil || err2 != nil {
			t.Fatalf("combination %d (%s): evaluated %v, table %v", idx, s.Describe(p), a, b)
		}
		if a {
			kept++
		}
	}
	if kept == 0 || kept == int(s.Combinations()) {
		t.Fatalf("kept %d of %d: the constraints should drop some", kept, s.Combinations())
	}
}

// TestFloatRangesAreExact: range values equal the decimal literals a user
// would write for them (a where clause or a later list with 1.7 finds the
// point), for linear and geometric ranges.
func TestFloatRangesAreExact(t *testing.T) {
	s, err := Parse("r.toml", `[study]
name = "r"
[axes]
capacity_factor = {from = 1.0, to = 2.0, step = 0.1}
routing_skew = {from = 1.0, to = 2.0, mul = 1.1}
`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]float64{
		"capacity_factor": {1, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2},
		"routing_skew":    {1, 1.1, 1.21, 1.331, 1.4641, 1.61051, 1.771561, 1.9487171},
	}
	for _, d := range s.Dims {
		w := want[d.Names[0]]
		if len(d.Values[0]) != len(w) {
			t.Fatalf("%s: %d values, want %d", d.Names[0], len(d.Values[0]), len(w))
		}
		for i, v := range d.Values[0] {
			if v.F != w[i] {
				t.Errorf("%s[%d] = %v, want %v", d.Names[0], i, v.F, w[i])
			}
		}
	}
}

// TestEnumLiterals: a comparison of a parameter with a fixed set of values
// to a string outside the set is an error naming the literal and the
// values, in each form (==, != with the literal on either side, in and
// not in); comparisons within the set, other operators and expressions of
// other shapes pass; no expression panics.
func TestEnumLiterals(t *testing.T) {
	params := []engine.Param{
		{Name: "scaling", Kind: engine.String, Enum: []string{"balanced", "compute", "capacity"}},
		{Name: "routing", Kind: engine.String, Enum: []string{"uniform", "zipf", "trace"}},
		{Name: "model", Kind: engine.String},
		{Name: "top_k", Kind: engine.Int},
	}
	enums := EnumsOf(params)
	bad := map[string]string{
		`scaling == "capcity"`:                        `scaling is never "capcity": the values are balanced, compute, capacity (did you mean "capacity"?)`,
		`scaling != "capcity"`:                        `scaling is never "capcity"`,
		`"capcity" == scaling`:                        `scaling is never "capcity"`,
		`"capcity" != scaling`:                        `scaling is never "capcity"`,
		`scaling in ["compute", "capcity"]`:           `scaling is never "capcity"`,
		`scaling not in ["capcity"]`:                  `scaling is never "capcity"`,
		`!(scaling in ["balanced", "x"])`:             `scaling is never "x": the values are balanced, compute, capacity`,
		`top_k > 1 && (routing == "Zipf")`:            `routing is never "Zipf": the values are uniform, zipf, trace (did you mean "zipf"?)`,
		`top_k > 1 ? scaling == "a" : true`:           `scaling is never "a"`,
		`"capcity" in [scaling]`:                      `scaling is never "capcity"`,
		`"x" in [scaling, routing]`:                   `none of scaling, routing is ever "x": the values are balanced, compute, capacity, uniform, zipf, trace`,
		`all(["a"], scaling == "a")`:                  `scaling is never "a"`,
		`let s = scaling; s == "a" || scaling == "b"`: `scaling is never "b"`,
	}
	for src, want := range bad {
		err := CheckEnumLiterals(src, enums)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want it to contain %s", src, err, want)
		}
	}
	good := []string{
		`scaling == "capacity"`,
		`scaling != "balanced" && routing == "zipf"`,
		`scaling in ["compute", "capacity"]`,
		`scaling not in []`,
		`"trace" in [scaling, routing]`,
		`"x" in [scaling, model]`,
		`model == "no-such-preset"`,
		`scaling == routing`,
		`scaling contains "cap"`,
		`scaling startsWith "x"`,
		`scaling in "capacity"`,
		`let scaling = "x"; scaling == "x"`,
		`"a" == "b"`,
		`top_k == 1`,
		// odd or malformed expressions: no error here, and no panic
		``, `(`, `scaling ==`, `== "x"`, `[`, `scaling in`, `in [1]`, `#`, `.x == "y"`,
		`{"scaling": "x"}.scaling == "y"`, `scaling?.x == "y"`, `scaling[0:1] == "z"`,
		`scaling | upper() == "Q"`, `1..3`, `nil == scaling`, `scaling ?? "q"`,
	}
	for _, src := range good {
		if err := CheckEnumLiterals(src, enums); err != nil {
			t.Errorf("%s: %v", src, err)
		}
	}
}

// TestEnumLiteralsInStudies: the check applies to the study's constraints
// (a literal on an axis of an enumerated parameter, or on a base value).
func TestEnumLiteralsInStudies(t *testing.T) {
	text := "[study]\nname = \"x\"\nwhere = ['moe_ffn_scaling != \"capcity\"']\n[axes]\nmoe_ffn_scaling = [\"balanced\", \"capacity\"]\n"
	_, err := Parse("e.toml", text)
	var ie *InputError
	if !errors.As(err, &ie) || ie.File != "e.toml" || ie.Line != 3 || ie.Key != "study.where[0]" || !strings.Contains(ie.Msg, "the values are balanced, compute, capacity") {
		t.Fatalf("error %v", err)
	}
	if _, err := Parse("e.toml", strings.Replace(text, "capcity", "capacity", 1)); err != nil {
		t.Fatal(err)
	}
}
