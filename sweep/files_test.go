package sweep

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sweep-dse/sweep/engine"
)

// traceStudy is a study over two request traces (file parameters, relative
// to the study's folder) and two batch sizes: four points.
const traceStudy = `[study]
name = "traces"
seed = 1
[base]
model = "gpt3-7B"
n_layers = 1
[axes]
seq_trace = ["traces/a.csv", "traces/b.csv"]
batch_size = [4, 8]
`

// writeTraceStudy writes traceStudy and its traces into a new folder and
// returns the study's path.
func writeTraceStudy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "traces"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "traces", "a.csv"), "seq_len,ch_idx\n128,0\n256,1\n")
	writeFile(t, filepath.Join(dir, "traces", "b.csv"), "seq_len,ch_idx\n512,0\n1024,1\n")
	path := filepath.Join(dir, "study.toml")
	writeFile(t, path, traceStudy)
	return path
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// runAgain loads the study afresh (as a new process would: the engine's
// file cache and the digests start empty) and runs it into out.
func runAgain(t *testing.T, path, out string) *Result {
	t.Helper()
	s, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), s, RunOptions{Out: out, Jobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestEditedFileRerunsItsPoints: a point's ID covers the contents of the
// files it names. A second run with the files unchanged (rewritten with the
// same bytes, too) runs nothing; after one trace is edited, the second run
// reruns exactly the points that name it, and the plan says so beforehand.
func TestEditedFileRerunsItsPoints(t *testing.T) {
	path := writeTraceStudy(t)
	out := filepath.Join(t.TempDir(), "ds")
	if res := runAgain(t, path, out); res.Ran != 4 || res.OK != 4 {
		t.Fatalf("first run: ran %d, %d ok", res.Ran, res.OK)
	}
	if res := runAgain(t, path, out); res.Ran != 0 {
		t.Fatalf("unchanged files: the second run ran %d points", res.Ran)
	}
	a := filepath.Join(filepath.Dir(path), "traces", "a.csv")
	old, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, a, string(old)) // a new modification time, the same contents
	if res := runAgain(t, path, out); res.Ran != 0 {
		t.Fatalf("a file rewritten unchanged: the run ran %d points", res.Ran)
	}

	writeFile(t, a, "seq_len,ch_idx\n4096,0\n8192,1\n")
	s, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := Expand(context.Background(), s, out, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pl.Points != 4 || pl.Done != 2 || pl.Pending.Count() != 2 {
		t.Fatalf("plan after editing traces/a.csv: %d points, %d done, %d pending; want 4, 2, 2", pl.Points, pl.Done, pl.Pending.Count())
	}
	p := make([]engine.Value, len(s.Engine.Params()))
	pl.Pending.Each(func(idx int64) bool {
		s.Fill(idx, p)
		if got := p[engine.ParamIndex(s.Engine.Params(), "seq_trace")].S; got != "traces/a.csv" {
			t.Errorf("pending point %s does not name the edited trace", s.Describe(p))
		}
		return true
	})
	if res := runAgain(t, path, out); res.Ran != 2 || res.OK != 2 {
		t.Fatalf("after editing traces/a.csv: ran %d, %d ok; want 2", res.Ran, res.OK)
	}
	if res := runAgain(t, path, out); res.Ran != 0 {
		t.Fatalf("the run after the rerun ran %d points", res.Ran)
	}
}

// TestFileIDsAreStable: the IDs of points that name files depend on the
// files' contents, not on how the study is named (a relative path, or the
// absolute one Slurm tasks and status --verify are given) nor on the
// process; an edit changes them.
func TestFileIDsAreStable(t *testing.T) {
	path := writeTraceStudy(t)
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(path string) []ID {
		s, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		h := NewHasher(s)
		p := make([]engine.Value, len(s.Engine.Params()))
		var out []ID
		for idx := int64(0); idx < s.Combinations(); idx++ {
			s.Fill(idx, p)
			if err := s.Engine.Resolve(s.Dir, p); err != nil {
				t.Fatal(err)
			}
			id := mustID(t, h, p)
			if want := refID(t, s, h, p); id != want {
				t.Fatalf("point %d: ID %s, want %s by the definition", idx, id, want)
			}
			out = append(out, id)
		}
		return out
	}
	first := ids(path)
	if second := ids(abs); !equalIDs(first, second) {
		t.Fatalf("IDs by the study's absolute path differ:\n%v\n%v", first, second)
	}
	writeFile(t, filepath.Join(filepath.Dir(path), "traces", "b.csv"), "seq_len,ch_idx\n512,0\n1024,2\n")
	edited := ids(path)
	for i := range first {
		if b := i >= 2; (first[i] != edited[i]) != b {
			t.Errorf("point %d: ID %s before editing traces/b.csv, %s after", i, first[i], edited[i])
		}
	}
}

func equalIDs(a, b []ID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestUnreadableFileFailsThePlan: a file parameter naming a file that
// cannot be read gives no ID: the plan fails with an InputError at the key
// that names it, and a run writes nothing. A file the points ignore is not
// read: that study fails as one setting a parameter without effect.
func TestUnreadableFileFailsThePlan(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ study, want string }{
		{"[study]\nname = \"x\"\n[base]\nmodel = \"gpt3-7B\"\nnum_experts = 8\nrouting = \"trace\"\nrouting_trace = \"traces/gone.csv\"\n[axes]\nbatch_size = [4, 8]\n",
			":7: base.routing_trace: " + filepath.Join(dir, "traces", "gone.csv") + ": cannot read"},
		{"[study]\nname = \"x\"\n[base]\nmodel = \"gpt3-7B\"\nrouting_trace = \"traces/gone.csv\"\n[axes]\nbatch_size = [4, 8]\n",
			":5: base.routing_trace: has no effect on any point"},
	} {
		path := filepath.Join(dir, "study.toml")
		writeFile(t, path, tc.study)
		s, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, sh := range []Shard{All, {I: 1, N: 2}} {
			_, err = Expand(context.Background(), s, filepath.Join(dir, "none"), PlanOptions{Shard: sh})
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("shard %s: error %T %v, want an InputError", sh, err, err)
			}
			if !strings.HasPrefix(err.Error(), path+tc.want) {
				t.Fatalf("shard %s: error\n  %v\nwant it to start with\n  %s", sh, err, path+tc.want)
			}
		}
		out := filepath.Join(dir, "ds")
		if _, err := Run(context.Background(), s, RunOptions{Out: out}); err == nil {
			t.Fatal("the run succeeded")
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the run left %s: %v", out, err)
		}
	}
}
