package sweep

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary study text to the decoder, validator and
// expander: it must return a study or an *InputError, never panic.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/bad/*.toml")
	files = append(files, "../studies/seed-moe.toml")
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(string(data))
		}
	}
	f.Add("[study]\nname = \"z\"\n[[zip]]\nd_model = [1024]\nn_heads = [8]\n")
	f.Fuzz(func(t *testing.T, text string) {
		s, err := Parse("fuzz.toml", text)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("error %T: %v", err, err)
			}
			return
		}
		if s.Combinations() > 100_000 {
			return
		}
		pl, err := Expand(context.Background(), s, filepath.Join(t.TempDir(), "none"), PlanOptions{})
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("expand error %T: %v", err, err)
			}
			return
		}
		if pl.Points+pl.Dropped != pl.Combinations || pl.Pending.Count() != pl.Points {
			t.Fatalf("points %d + dropped %d != %d, or pending %d", pl.Points, pl.Dropped, pl.Combinations, pl.Pending.Count())
		}
	})
}
