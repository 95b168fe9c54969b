package command

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/sweep-dse/sweep/engine"
	"github.com/sweep-dse/sweep/internal/proctest"
)

// fakesim is the fixture program (testdata/fakesim), built once.
var fakesim string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fakesim-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fakesim = filepath.Join(dir, "fakesim")
	cmd := exec.Command("go", "build", "-o", fakesim, "./testdata/fakesim")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the fixture program: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testdataDir is the absolute path of testdata.
func testdataDir(t testing.TB) string {
	t.Helper()
	d, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// build decodes a study text (@SIM@ stands for the fixture's path) and
// builds the engine, with dir as the study folder.
func build(t testing.TB, dir, text string) (*Engine, error) {
	t.Helper()
	text = strings.ReplaceAll(text, "@SIM@", fakesim)
	var raw map[string]any
	if _, err := toml.Decode(text, &raw); err != nil {
		t.Fatalf("test study does not parse: %v", err)
	}
	return New(Source{Tables: raw, Dir: dir})
}

func mustBuild(t testing.TB, dir, text string) *Engine {
	t.Helper()
	e, err := build(t, dir, text)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

// point resolves a point from name → value (Go int, float64, string, bool).
func point(t testing.TB, e *Engine, vals map[string]any) []engine.Value {
	t.Helper()
	params := e.Params()
	p := make([]engine.Value, len(params))
	for name, v := range vals {
		i := engine.ParamIndex(params, name)
		if i < 0 {
			t.Fatalf("no parameter %s", name)
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
		default:
			t.Fatalf("bad test value %T", v)
		}
	}
	if err := e.Resolve(".", p); err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	return p
}

// evaluate runs one point with work folders under a fresh temporary folder.
func evaluate(t testing.TB, e *Engine, p []engine.Value, keep bool) ([]engine.Value, string, error) {
	t.Helper()
	root := t.TempDir()
	release := e.SetWorkDir(root, keep)
	out := make([]engine.Value, len(e.Metrics()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := e.Evaluate(ctx, p, out)
	release()
	// only the point's kept folder may be left
	ents, rerr := os.ReadDir(root)
	if rerr != nil && !os.IsNotExist(rerr) {
		t.Fatal(rerr)
	}
	for _, d := range ents {
		if d.Name() != e.WorkKey(p) {
			t.Errorf("work folder %s left after the run", d.Name())
		}
	}
	return out, filepath.Join(root, e.WorkKey(p)), err
}

// metric returns the named metric of out.
func metric(t testing.TB, e *Engine, out []engine.Value, name string) engine.Value {
	t.Helper()
	i := engine.FieldIndex(e.Metrics(), name)
	if i < 0 {
		t.Fatalf("no metric %s", name)
	}
	return out[i]
}

// readPids reads the pids the hang fixture recorded.
func readPids(t testing.TB, path string) []int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the hanging fixture left no pid file: %v", err)
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, n)
	}
	if len(pids) != 2 {
		t.Fatalf("want the fixture's and its child's pid, got %q", data)
	}
	return pids
}

// waitGone waits a little for killed processes to disappear.
func waitGone(t testing.TB, pids []int) {
	t.Helper()
	if left := proctest.Outliving(pids, nil); len(left) > 0 {
		t.Fatalf("processes %v still run", left)
	}
}
