package command

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sweep-dse/sweep/engine"
)

// TestLastObjectNeverTakesANestedObject: an object that does not decode is
// skipped whole, so the object nested in it is not taken for the answer;
// Python's bare NaN and Infinity decode.
func TestLastObjectNeverTakesANestedObject(t *testing.T) {
	// Python's json.dumps of {"lat": nan, "layers": [{"lat": 1.5}]}
	m, ok := lastObject([]byte(`log line {not json
{"lat": NaN, "thr": Infinity, "neg": -Infinity, "layers": [{"lat": 1.5, "thr": 99.0}], "s": "NaN in a string"}`))
	if !ok {
		t.Fatal("no object")
	}
	if _, nested := m["layers"]; !nested || m["s"] != "NaN in a string" {
		t.Fatalf("took %v", m)
	}
	v, err := jsonValue(engine.Float, m["lat"])
	if err != nil || !math.IsNaN(v.F) {
		t.Fatalf("lat %v %v", v, err)
	}
	// an outer object that is not valid JSON: nothing, not its inner one
	if m, ok := lastObject([]byte(`{"lat": 1.0,, "layers": [{"lat": 1.5}]}`)); ok {
		t.Fatalf("took %v from an invalid object", m)
	}
}

// TestPointsDoNotShareOutput: a program that reopens /dev/stdout (which
// truncates the file) and a process an earlier point left running detached
// never put their output into another point's result.
func TestPointsDoNotShareOutput(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "prog.sh")
	os.WriteFile(prog, []byte(`#!/bin/sh
echo "starting $1"
if [ "$1" = 1 ]; then
  setsid sh -c 'sleep 0.3; echo "{\"lat\": -999}"; echo stale > result.txt' &
fi
printf '{"lat": %d}\n' "$1" > /dev/stdout
[ "$1" = 1 ] || sleep 0.5
`), 0o755)
	e := mustBuild(t, dir, `
[command]
binary = "./prog.sh"
args = ["{{.x}}"]
[metrics]
lat = "int"
[params]
x = "int"
`)
	release := e.SetWorkDir(t.TempDir(), false)
	defer release()
	for x := 1; x <= 4; x++ {
		out := make([]engine.Value, 1)
		if err := e.Evaluate(context.Background(), point(t, e, map[string]any{"x": x}), out); err != nil {
			t.Fatalf("point %d: %v", x, err)
		}
		if out[0] != engine.IntV(int64(x)) {
			t.Fatalf("point %d read lat = %v", x, out[0])
		}
	}
}

// TestStoppedProgramIsNoResult: a program stopped by SIGTERM from outside
// (a cancelled job) is not a result of its point (engine.ErrStopped), while
// one killed by another signal is a failure.
func TestStoppedProgramIsNoResult(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "prog.sh")
	os.WriteFile(prog, []byte("#!/bin/sh\nkill -$1 $$\n"), 0o755)
	e := mustBuild(t, dir, `
[command]
binary = "./prog.sh"
args = ["{{.sig}}"]
[metrics]
lat = "int"
[params]
sig = "string"
`)
	release := e.SetWorkDir(t.TempDir(), false)
	defer release()
	for sig, stopped := range map[string]bool{"TERM": true, "INT": true, "KILL": false, "SEGV": false} {
		err := e.Evaluate(context.Background(), point(t, e, map[string]any{"sig": sig}), make([]engine.Value, 1))
		if err == nil || errors.Is(err, engine.ErrStopped) != stopped {
			t.Errorf("SIG%s: %v, want stopped %v", sig, err, stopped)
		}
	}
}

// TestOutputIsValidUTF8: bytes that are not UTF-8 in a regex-read string
// metric or in the stderr tail of a failure reach the dataset as U+FFFD
// (Parquet strings are UTF-8; DuckDB refuses other bytes).
func TestOutputIsValidUTF8(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "prog.sh")
	os.WriteFile(prog, []byte("#!/bin/sh\nif [ \"$1\" = fail ]; then printf 'partial \\377\\376\\303 failure\\n' >&2; exit 1; fi\nprintf 'name: abc\\377\\376def\\n'\n"), 0o755)
	e := mustBuild(t, dir, `
[command]
binary = "./prog.sh"
args = ["{{.mode}}"]
reader = "regex"
regex = ['name: (?P<name>.*)']
[metrics]
name = "string"
[params]
mode = "string"
`)
	release := e.SetWorkDir(t.TempDir(), false)
	defer release()
	out := make([]engine.Value, 1)
	if err := e.Evaluate(context.Background(), point(t, e, map[string]any{"mode": "ok"}), out); err != nil {
		t.Fatal(err)
	}
	if !utf8.ValidString(out[0].S) || !strings.Contains(out[0].S, "abc") {
		t.Errorf("name %q", out[0].S)
	}
	err := e.Evaluate(context.Background(), point(t, e, map[string]any{"mode": "fail"}), out)
	if err == nil || !utf8.ValidString(err.Error()) || !strings.Contains(err.Error(), "partial") {
		t.Errorf("failure %q", err)
	}
}

// TestRetryRemovesTheKeptFolder: the work folder a failed point kept goes
// once the point succeeds.
func TestRetryRemovesTheKeptFolder(t *testing.T) {
	dir := t.TempDir()
	flag := filepath.Join(dir, "fail")
	prog := filepath.Join(dir, "prog.sh")
	os.WriteFile(prog, []byte("#!/bin/sh\nif [ -e "+flag+" ]; then exit 3; fi\necho '{\"lat\": 1}'\n"), 0o755)
	e := mustBuild(t, dir, `
[command]
binary = "./prog.sh"
[metrics]
lat = "int"
[params]
x = "int"
`)
	root := t.TempDir()
	release := e.SetWorkDir(root, false)
	defer release()
	p := point(t, e, map[string]any{"x": 1})
	os.WriteFile(flag, nil, 0o644)
	if err := e.Evaluate(context.Background(), p, make([]engine.Value, 1)); err == nil {
		t.Fatal("the failing run succeeded")
	}
	if _, err := os.Stat(filepath.Join(root, e.WorkKey(p))); err != nil {
		t.Fatalf("the failed point kept no folder: %v", err)
	}
	os.Remove(flag)
	if err := e.Evaluate(context.Background(), p, make([]engine.Value, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, e.WorkKey(p))); !os.IsNotExist(err) {
		t.Fatalf("the kept folder stays after the retry succeeded: %v", err)
	}
}

// TestJSONStrings checks the string tracking that matchBrace and
// pythonNumbers share: braces and NaN inside strings, escaped quotes and
// escaped backslashes.
func TestJSONStrings(t *testing.T) {
	b := []byte(`{"a": "x\"}{NaN", "b\\": {"c": NaN}, "d": "\\"} tail`)
	if got, want := matchBrace(b, 0), len(b)-len(" tail"); got != want {
		t.Fatalf("matchBrace = %d, want %d", got, want)
	}
	if got, want := string(pythonNumbers(b)), `{"a": "x\"}{NaN", "b\\": {"c": "NaN"}, "d": "\\"} tail`; got != want {
		t.Fatalf("pythonNumbers = %s, want %s", got, want)
	}
}
