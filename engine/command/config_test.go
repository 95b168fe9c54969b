package command

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every mistake in the command tables is a KeyError naming the key.
func TestConfigErrors(t *testing.T) {
	td := testdataDir(t)
	cases := []struct {
		name, study string
		key         string // dotted path of the KeyError
		msg         string // substring of its message
	}{
		{"no command table", `[metrics]
x = "int"`, "command", "needs a [command] table"},
		{"command not a table", `command = 3`, "command", "must be a table"},
		{"no binary", `[command]
args = ["a"]`, "command", "missing binary"},
		{"unknown key", `[command]
binary = "@SIM@"
argv = ["a"]`, "command.argv", "unknown key"},
		{"preset key without preset", `[command]
binary = "@SIM@"
root = "."`, "command.root", "is a key of preset"},
		{"unknown preset", `[command]
preset = "gem5"`, "command.preset", "unknown preset"},
		{"binary not in PATH", `[command]
binary = "no-such-simulator-here"`, "command.binary", "not found in PATH"},
		{"binary missing", `[command]
binary = "./missing/sim"`, "command.binary", "no such file"},
		{"binary not executable", `[command]
binary = "fakesim/main.go"`, "command.binary", "not an executable"},
		{"binary wrong type", `[command]
binary = 3`, "command.binary", "want a program path"},
		{"args not a list", `[command]
binary = "@SIM@"
args = "--x"`, "command.args", "want a list"},
		{"template syntax", `[command]
binary = "@SIM@"
args = ["{{.x"]
[metrics]
y = "int"
[axes]
x = [1]`, "command.args", "argument 1: template"},
		{"unknown template name", `[command]
binary = "@SIM@"
args = ["--experts", "{{.num_experts}}"]
[metrics]
y = "int"
[axes]
num_expert = [1]`, "command.args", "uses num_experts, which is not a parameter"},
		{"unknown template function", `[command]
binary = "@SIM@"
args = ["{{shell .x}}"]
[axes]
x = [1]`, "command.args", `function "shell" not defined`},
		{"file escapes the work folder", `[command]
binary = "@SIM@"
[command.files]
"../x.json" = { text = "{}" }`, "command.files.../x.json", "relative path inside"},
		{"file both template and text", `[command]
binary = "@SIM@"
[command.files]
"x.json" = { text = "{}", template = "neupims-root/configs/model_configs/gpt3-7B.json" }`, "command.files.x.json", "exactly one of"},
		{"file template missing", `[command]
binary = "@SIM@"
[command.files]
"x.json" = { template = "nope.tmpl" }`, "command.files.x.json.template", "cannot read template"},
		{"file template unknown name", `[command]
binary = "@SIM@"
[command.files]
"x.json" = { text = "{{.experts}}" }`, "command.files.x.json", "uses experts"},
		{"env bad name", `[command]
binary = "@SIM@"
[command.env]
"A=B" = "x"`, "command.env.A=B", "not a valid environment variable name"},
		{"bad timeout", `[command]
binary = "@SIM@"
timeout = "soon"`, "command.timeout", "want a duration"},
		{"negative timeout", `[command]
binary = "@SIM@"
timeout = -1`, "command.timeout", "must be positive"},
		{"bad exit code", `[command]
binary = "@SIM@"
exit_codes = [0, 256]`, "command.exit_codes", "0..255"},
		{"unknown reader", `[command]
binary = "@SIM@"
reader = "xml"
[metrics]
x = "int"`, "command.reader", "unknown reader"},
		{"json without metrics", `[command]
binary = "@SIM@"`, "metrics", "needs a [metrics] table"},
		{"metric bad type", `[command]
binary = "@SIM@"
[metrics]
x = "double"`, "metrics.x", "unknown type"},
		{"metric dataset column", `[command]
binary = "@SIM@"
[metrics]
status = "string"`, "metrics.status", "column of every dataset"},
		{"metric is a param", `[command]
binary = "@SIM@"
[metrics]
x = "int"
[axes]
x = [1]`, "metrics.x", "also a parameter"},
		{"metric unknown key", `[command]
binary = "@SIM@"
[metrics]
x = { type = "int", units = "s" }`, "metrics.x.units", "unknown key"},
		{"key for regex", `[command]
binary = "@SIM@"
reader = "regex"
regex = '(?P<x>\d+)'
[metrics]
x = { type = "int", key = "a.b" }`, "metrics.x.key", "for reader = \"json\""},
		{"regex without patterns", `[command]
binary = "@SIM@"
reader = "regex"
[metrics]
x = "int"`, "command.regex", "needs regex"},
		{"regex bad pattern", `[command]
binary = "@SIM@"
reader = "regex"
regex = '(?P<x>\d+'
[metrics]
x = "int"`, "command.regex", "missing closing )"},
		{"regex group not a metric", `[command]
binary = "@SIM@"
reader = "regex"
regex = '(?P<y>\d+)'
[metrics]
x = "int"`, "command.regex", `group "y" is not a metric`},
		{"metric without group", `[command]
binary = "@SIM@"
reader = "regex"
regex = ['(?P<x>\d+)']
[metrics]
x = "int"
z = "int"`, "metrics.z", "no regex group"},
		{"regex with json", `[command]
binary = "@SIM@"
regex = '(?P<x>\d+)'
[metrics]
x = "int"`, "command.regex", "for reader = \"regex\""},
		{"neupims reader without log_dir", `[command]
binary = "@SIM@"
reader = "neupims"
args = ["--config", "c.json", "--cli_config", "t.csv"]`, "command.args", "needs --log_dir"},
		{"neupims log_dir outside work", `[command]
binary = "@SIM@"
reader = "neupims"
args = ["--config", "c.json", "--cli_config", "t.csv", "--log_dir", "/tmp/out"]`, "command.args", "inside the point's work folder"},
		{"neupims with metrics", `[command]
binary = "@SIM@"
reader = "neupims"
args = ["--config", "c", "--cli_config", "t", "--log_dir", "{{.work}}"]
[metrics]
x = "int"`, "metrics", "metrics are fixed"},
		{"preset without root", `[command]
preset = "neupims"`, "command", "needs root"},
		{"preset root missing", `[command]
preset = "neupims"
root = "no/such/repo"`, "command.root", "is not a folder"},
		{"preset binary not built", `[command]
preset = "neupims"
root = "neupims-root"`, "command.root", "build NeuPIMs there first"},
		{"preset config missing", `[command]
preset = "neupims"
root = "neupims-root"
binary = "@SIM@"
config = "configs/npu.json"`, "command.config", "does not exist"},
		{"preset with args", `[command]
preset = "neupims"
root = "neupims-root"
binary = "@SIM@"
args = ["--x"]`, "command.args", "builds the argument list"},
		{"preset with other reader", `[command]
preset = "neupims"
root = "neupims-root"
binary = "@SIM@"
reader = "json"`, "command.reader", "reader = \"neupims\""},
		{"preset workdir", `[command]
preset = "neupims"
root = "neupims-root"
binary = "@SIM@"
workdir = "."`, "command.workdir", "runs from root"},
		{"reserved param name", `[command]
binary = "@SIM@"
[metrics]
x = "int"
[axes]
work = [1]`, "axes.work", "reserved template name"},
		{"param mixed kinds", `[command]
binary = "@SIM@"
[metrics]
x = "int"
[axes]
v = [1, "a"]`, "axes.v", "mixes int and string"},
		{"param kind differs", `[command]
binary = "@SIM@"
[metrics]
x = "int"
[base]
v = 1
[[zip]]
v = ["a"]`, "zip.0.v", "is string here but int elsewhere"},
		{"declared param bad default", `[command]
binary = "@SIM@"
[metrics]
x = "int"
[params]
v = { type = "int", default = "many" }`, "params.v.default", "want an integer"},
		{"declared enum default", `[command]
binary = "@SIM@"
[metrics]
x = "int"
[params]
v = { type = "string", enum = ["a"], default = "b" }`, "params.v.default", "not one of"},
		{"declared param no type", `[command]
binary = "@SIM@"
[metrics]
x = "int"
[params]
v = { default = 1 }`, "params.v", "missing type"},
		{"version file missing", `[command]
binary = "@SIM@"
version_files = ["nope.ini"]
[metrics]
x = "int"`, "command.version_files", "no such file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := build(t, td, c.study)
			var ke *KeyError
			if !errors.As(err, &ke) {
				t.Fatalf("want a KeyError, got %v", err)
			}
			if got := strings.Join(ke.Path, "."); got != c.key || !strings.Contains(ke.Msg, c.msg) {
				t.Errorf("got %s: %s\nwant %s: ...%s...", got, ke.Msg, c.key, c.msg)
			}
		})
	}
}

// The preset finds NeuPIMs' own binary under root, and its defaults need
// nothing else.
func TestPresetDefaults(t *testing.T) {
	td := testdataDir(t)
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(filepath.Join(td, "neupims-root"))); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(fakesim)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "build", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, neupimsBinary), data, 0o755); err != nil {
		t.Fatal(err)
	}
	e := mustBuild(t, t.TempDir(), `
[command]
preset = "neupims"
root = "`+root+`"
log_level = "debug"
`)
	if e.Program() != filepath.Join(root, neupimsBinary) {
		t.Errorf("program %s", e.Program())
	}
	inv, err := e.Render(point(t, e, nil), "/w")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(inv.Args[len(inv.Args)-4:], " "); got != "--log_dir /w/log --log_level debug" {
		t.Errorf("arguments end %q", got)
	}
	// the fixed config files are part of the version
	v1 := e.Version()
	cfg := filepath.Join(root, neupimsDefaults["config"])
	if err := os.WriteFile(cfg, []byte(`{"core_freq": 2000}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if v := mustBuild(t, t.TempDir(), `
[command]
preset = "neupims"
root = "`+root+`"
log_level = "debug"
`).Version(); v == v1 {
		t.Error("editing the NPU config keeps the version")
	}
}
