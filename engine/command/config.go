package command

import (
	"errors"
	"fmt"
	"github.com/sweep-dse/sweep/internal/tomlx"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sweep-dse/sweep/engine"
)

// Source is what a study file gives the command engine: the decoded TOML
// document and where the study lives.
type Source struct {
	// Tables is the whole decoded study document. The engine reads its
	// [command], [metrics] and [params] tables, and infers parameters from
	// the values in [base], [axes] and [[zip]].
	Tables map[string]any
	// Dir is the study file's folder: relative paths start here.
	Dir string
	// Order returns the keys of the table at path (e.g. ["metrics"]) in the
	// order the file lists them; nil means sorted order. Parameters and
	// metrics become dataset columns in this order.
	Order func(path []string, m map[string]any) []string
	// ReadOnly builds an engine to read a stored study's parameters and
	// metrics (analysis of a dataset), not to run it: the program need not
	// exist here, and the version is not computed ("").
	ReadOnly bool
}

// KeyError is a problem with one key of the study file: Path is the table
// path and key, e.g. ["command", "files", "model.json"].
type KeyError struct {
	Path []string
	Msg  string
}

// Error formats the key path and the problem.
func (e *KeyError) Error() string { return strings.Join(e.Path, ".") + ": " + e.Msg }

func keyErr(path []string, format string, args ...any) error {
	return &KeyError{Path: slices.Clone(path), Msg: fmt.Sprintf(format, args...)}
}

// Reserved template names: they are not parameters.
const (
	dataWork     = "work"      // absolute path of the point's work folder
	dataStudyDir = "study_dir" // absolute path of the study file's folder
	dataRoot     = "root"      // the preset's root (neupims: the repository), else study_dir
)

var reservedNames = []string{dataWork, dataStudyDir, dataRoot}

// Column names the dataset uses itself; metrics and parameters must differ.
var datasetColumns = []string{"point_id", "status", "error", "engine", "engine_version", "elapsed_s", "finished_at"}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// fileSpec is one file rendered into every point's work folder.
type fileSpec struct {
	dest string // relative to the work folder
	from string // template file it was read from, "" for inline text
	t    *tmpl
}

// envSpec is one environment variable set for the program.
type envSpec struct {
	name string
	t    *tmpl
}

// metricSpec is a metric declared in [metrics].
type metricSpec struct {
	field    engine.Field
	key      []string // json reader: path into the object
	optional bool     // missing in the output = null instead of a failure
}

// config is a validated [command] table.
type config struct {
	readOnly     bool     // Source.ReadOnly: touch no file
	dir          string   // study folder, absolute
	root         string   // template name "root"
	binary       string   // absolute path of the program
	head         []string // fixed arguments after the program (binary = [prog, args...])
	workdir      string   // absolute; "" = the point's work folder
	args         []*tmpl
	files        []fileSpec
	env          []envSpec
	inheritEnv   bool
	timeout      time.Duration
	exitCodes    []int
	readerName   string
	regex        []*regexp.Regexp
	versionFiles []string // absolute paths whose content is part of the version
	params       []engine.Param
	metrics      []metricSpec
}

var commandKeys = []string{"preset", "binary", "workdir", "args", "files", "env", "inherit_env", "timeout", "exit_codes", "reader", "regex", "version_files"}

// parseConfig validates the study's tables into a config.
func parseConfig(src Source) (*config, error) {
	dir, err := filepath.Abs(src.Dir)
	if err != nil {
		return nil, fmt.Errorf("study folder: %w", err)
	}
	order := src.Order
	if order == nil {
		order = func(_ []string, m map[string]any) []string { return sortedKeys(m) }
	}
	raw, ok := src.Tables["command"]
	if !ok {
		return nil, keyErr([]string{"command"}, "engine = \"command\" needs a [command] table with at least binary = \"...\" (or preset = \"neupims\")")
	}
	ct, ok := raw.(map[string]any)
	if !ok {
		return nil, keyErr([]string{"command"}, "must be a table")
	}
	c := &config{readOnly: src.ReadOnly, dir: dir, root: dir, inheritEnv: true, exitCodes: []int{0}}
	var pre *neupimsPreset
	if v, ok := ct["preset"]; ok {
		s, ok := v.(string)
		if !ok || s != "neupims" {
			return nil, keyErr([]string{"command", "preset"}, "unknown preset %v (known: \"neupims\")", v)
		}
		pre = &neupimsPreset{}
	}
	for _, k := range sortedKeys(ct) {
		if slices.Contains(commandKeys, k) {
			continue
		}
		if slices.Contains(presetKeys, k) {
			if pre == nil {
				return nil, keyErr([]string{"command", k}, "%s is a key of preset = \"neupims\"", k)
			}
			continue
		}
		known := commandKeys
		if pre != nil {
			known = append(slices.Clone(known), presetKeys...)
		}
		return nil, keyErr([]string{"command", k}, "unknown key (known: %s)", strings.Join(known, ", "))
	}
	at := func(k string) []string { return []string{"command", k} }

	// parameters first: templates are checked against them
	if pre != nil {
		if err := pre.parse(c, ct); err != nil {
			return nil, err
		}
	}
	if err := c.parseParams(src.Tables, order); err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, p := range c.params {
		names[p.Name] = true
	}
	for _, r := range reservedNames {
		names[r] = true
	}
	compile := func(path []string, text string) (*tmpl, error) {
		t, err := newTmpl(strings.Join(path, "."), text, c.dir)
		if err != nil {
			return nil, keyErr(path, "%v", err)
		}
		if err := t.check(names); err != nil {
			return nil, keyErr(path, "%v", err)
		}
		return t, nil
	}

	// program
	if v, ok := ct["binary"]; ok {
		var list []string
		switch x := v.(type) {
		case string:
			list = []string{x}
		case []any:
			for _, e := range x {
				s, ok := e.(string)
				if !ok {
					return nil, keyErr(at("binary"), "want a program path or a list [program, fixed arguments...] of strings, got %s", tomlx.Describe(e))
				}
				list = append(list, s)
			}
		default:
			return nil, keyErr(at("binary"), "want a program path or a list [program, fixed arguments...], got %s", tomlx.Describe(v))
		}
		if len(list) == 0 || list[0] == "" {
			return nil, keyErr(at("binary"), "empty program")
		}
		bin, err := lookBinary(list[0], c.dir)
		if err != nil && !src.ReadOnly {
			return nil, keyErr(at("binary"), "%v", err)
		}
		c.binary, c.head = bin, list[1:]
	} else if pre != nil {
		bin := filepath.Join(c.root, neupimsBinary)
		if err := checkExecutable(bin); err != nil && !src.ReadOnly {
			return nil, keyErr(at("root"), "%v (build NeuPIMs there first, or set binary = \"...\")", err)
		}
		c.binary = bin
	} else {
		return nil, keyErr([]string{"command"}, "missing binary = \"...\": the program to run per point")
	}
	if v, ok := ct["workdir"]; ok {
		s, ok := v.(string)
		if !ok {
			return nil, keyErr(at("workdir"), "want a folder path, got %s", tomlx.Describe(v))
		}
		wd := s
		if s != "" && !filepath.IsAbs(wd) {
			wd = filepath.Join(c.dir, s)
		}
		if s != "" {
			if st, err := os.Stat(wd); !c.readOnly && (err != nil || !st.IsDir()) {
				return nil, keyErr(at("workdir"), "%s is not a folder", wd)
			}
		}
		c.workdir = wd
	}

	// arguments
	if v, ok := ct["args"]; ok {
		if pre != nil {
			return nil, keyErr(at("args"), "the neupims preset builds the argument list from config, mem_config, cli_config, model_config, sys_config and log_level")
		}
		list, ok := v.([]any)
		if !ok {
			return nil, keyErr(at("args"), "want a list of argument templates, got %s", tomlx.Describe(v))
		}
		for i, e := range list {
			s, ok := e.(string)
			if !ok {
				return nil, keyErr(at("args"), "argument %d: want a string, got %s", i+1, tomlx.Describe(e))
			}
			t, err := compile([]string{"command", "args", fmt.Sprint(i)}, s)
			if err != nil {
				return nil, keyErr(at("args"), "argument %d: %s", i+1, err.(*KeyError).Msg)
			}
			c.args = append(c.args, t)
		}
	}
	if pre != nil {
		for _, a := range pre.args() {
			t, err := compile(a.key, a.text)
			if err != nil {
				return nil, err
			}
			c.args = append(c.args, t)
		}
		for _, f := range pre.files() {
			t, err := compile(at("model_config"), f.text)
			if err != nil {
				return nil, err
			}
			c.files = append(c.files, fileSpec{dest: f.dest, t: t})
		}
	}

	// files
	if v, ok := ct["files"]; ok {
		ft, ok := v.(map[string]any)
		if !ok {
			return nil, keyErr(at("files"), "want a table: \"dest/in/work/folder\" = { template = \"file\" } or { text = \"...\" }")
		}
		for _, dest := range order([]string{"command", "files"}, ft) {
			kp := []string{"command", "files", dest}
			clean := filepath.Clean(dest)
			if dest == "" || filepath.IsAbs(dest) || clean == "." || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
				return nil, keyErr(kp, "the destination must be a relative path inside the point's work folder")
			}
			spec, ok := ft[dest].(map[string]any)
			if !ok {
				return nil, keyErr(kp, "want { template = \"file\" } or { text = \"...\" }, got %s", tomlx.Describe(ft[dest]))
			}
			var text, from string
			for k, x := range spec {
				s, ok := x.(string)
				if !ok {
					return nil, keyErr(append(kp, k), "want a string, got %s", tomlx.Describe(x))
				}
				switch k {
				case "template":
					from = s
					if !filepath.IsAbs(from) {
						from = filepath.Join(c.dir, s)
					}
					if !c.readOnly {
						data, err := os.ReadFile(from)
						if err != nil {
							return nil, keyErr(append(kp, k), "cannot read template: %v", errors.Unwrap(err))
						}
						text = string(data)
					}
				case "text":
					text = s
				default:
					return nil, keyErr(append(kp, k), "unknown key (known: template, text)")
				}
			}
			if len(spec) != 1 {
				return nil, keyErr(kp, "give exactly one of template = \"file\" or text = \"...\"")
			}
			t, err := compile(kp, text)
			if err != nil {
				return nil, err
			}
			for i, f := range c.files {
				if filepath.Clean(f.dest) == clean {
					c.files = slices.Delete(c.files, i, i+1) // the study's file replaces the preset's
					break
				}
			}
			c.files = append(c.files, fileSpec{dest: clean, from: from, t: t})
		}
	}

	// environment
	if v, ok := ct["inherit_env"]; ok {
		b, ok := v.(bool)
		if !ok {
			return nil, keyErr(at("inherit_env"), "want true or false, got %s", tomlx.Describe(v))
		}
		c.inheritEnv = b
	}
	if v, ok := ct["env"]; ok {
		et, ok := v.(map[string]any)
		if !ok {
			return nil, keyErr(at("env"), "want a table NAME = \"value template\"")
		}
		for _, name := range order([]string{"command", "env"}, et) {
			kp := []string{"command", "env", name}
			if name == "" || strings.ContainsAny(name, "=\x00") {
				return nil, keyErr(kp, "not a valid environment variable name")
			}
			s, ok := et[name].(string)
			if !ok {
				return nil, keyErr(kp, "want a string, got %s", tomlx.Describe(et[name]))
			}
			t, err := compile(kp, s)
			if err != nil {
				return nil, err
			}
			c.env = append(c.env, envSpec{name: name, t: t})
		}
	}

	// limits and exit status
	if v, ok := ct["timeout"]; ok {
		d, err := parseDuration(v)
		if err != nil {
			return nil, keyErr(at("timeout"), "%v", err)
		}
		c.timeout = d
	}
	if pre != nil {
		c.exitCodes = []int{0, 255}
	}
	if v, ok := ct["exit_codes"]; ok {
		list, ok := v.([]any)
		if !ok {
			list = []any{v}
		}
		c.exitCodes = nil
		for _, e := range list {
			n, ok := e.(int64)
			if !ok || n < 0 || n > 255 {
				return nil, keyErr(at("exit_codes"), "want exit statuses 0..255, got %v", e)
			}
			c.exitCodes = append(c.exitCodes, int(n))
		}
		if len(c.exitCodes) == 0 {
			return nil, keyErr(at("exit_codes"), "give at least one accepted exit status")
		}
	}

	// version files
	if v, ok := ct["version_files"]; ok {
		list, ok := v.([]any)
		if !ok {
			return nil, keyErr(at("version_files"), "want a list of files whose content is part of the model version")
		}
		for _, e := range list {
			s, ok := e.(string)
			if !ok {
				return nil, keyErr(at("version_files"), "want file paths, got %s", tomlx.Describe(e))
			}
			if !filepath.IsAbs(s) {
				s = filepath.Join(c.dir, s)
			}
			if _, err := os.Stat(s); err != nil && !c.readOnly {
				return nil, keyErr(at("version_files"), "%v", err)
			}
			c.versionFiles = append(c.versionFiles, s)
		}
	}
	if pre != nil {
		c.versionFiles = append(c.versionFiles, pre.versionFiles...)
	}

	// reader and metrics
	c.readerName = "json"
	if pre != nil {
		c.readerName = "neupims"
	}
	if v, ok := ct["reader"]; ok {
		s, ok := v.(string)
		if !ok {
			return nil, keyErr(at("reader"), "want a string, got %s", tomlx.Describe(v))
		}
		if pre != nil && s != "neupims" {
			return nil, keyErr(at("reader"), "the neupims preset reads NeuPIMs' output files: reader = \"neupims\"")
		}
		c.readerName = s
	}
	_, hasMetrics := src.Tables["metrics"]
	switch c.readerName {
	case "neupims":
		if hasMetrics {
			return nil, keyErr([]string{"metrics"}, "the neupims reader's metrics are fixed (cycles per stage, latency, tokens/s); drop [metrics]")
		}
		if err := checkNeupimsArgs(c.args); err != nil {
			return nil, keyErr(at("args"), "%v", err)
		}
	case "json", "regex":
		if err := c.parseMetrics(src.Tables, order); err != nil {
			return nil, err
		}
	default:
		return nil, keyErr(at("reader"), "unknown reader %q (known: neupims, json, regex)", c.readerName)
	}
	if v, ok := ct["regex"]; ok {
		if c.readerName != "regex" {
			return nil, keyErr(at("regex"), "regex is for reader = \"regex\"")
		}
		list, ok := v.([]any)
		if !ok {
			list = []any{v}
		}
		for _, e := range list {
			s, ok := e.(string)
			if !ok {
				return nil, keyErr(at("regex"), "want a pattern string or a list of them, got %s", tomlx.Describe(e))
			}
			re, err := regexp.Compile(s)
			if err != nil {
				return nil, keyErr(at("regex"), "%v", err)
			}
			c.regex = append(c.regex, re)
		}
	}
	if c.readerName == "regex" {
		if len(c.regex) == 0 {
			return nil, keyErr(at("regex"), "reader = \"regex\" needs regex = ['(?P<metric>...)', ...]: named groups over stdout")
		}
		groups := map[string]bool{}
		for _, re := range c.regex {
			for _, g := range re.SubexpNames() {
				if g == "" {
					continue
				}
				if slices.IndexFunc(c.metrics, func(m metricSpec) bool { return m.field.Name == g }) < 0 {
					return nil, keyErr(at("regex"), "group %q is not a metric declared in [metrics]", g)
				}
				groups[g] = true
			}
		}
		for _, m := range c.metrics {
			if !groups[m.field.Name] {
				return nil, keyErr([]string{"metrics", m.field.Name}, "no regex group (?P<%s>...) captures this metric", m.field.Name)
			}
		}
	}
	return c, nil
}

// parseParams declares the parameters: the preset's (if any), then those in
// [params], then those the study sets in [base], [axes] and [[zip]] without
// declaring them, with their kind inferred from the values.
func (c *config) parseParams(tables map[string]any, order func([]string, map[string]any) []string) error {
	index := func(name string) int { return engine.ParamIndex(c.params, name) }
	checkName := func(path []string, name string) error {
		if !identRE.MatchString(name) {
			return keyErr(path, "parameter names must be identifiers (letters, digits, '_'), got %q", name)
		}
		if slices.Contains(reservedNames, name) {
			return keyErr(path, "%q is a reserved template name (%s); pick another parameter name", name, strings.Join(reservedNames, ", "))
		}
		if slices.Contains(datasetColumns, name) {
			return keyErr(path, "%q is a column of every dataset; pick another parameter name", name)
		}
		return nil
	}
	if v, ok := tables["params"]; ok {
		pt, ok := v.(map[string]any)
		if !ok {
			return keyErr([]string{"params"}, "must be a table: name = \"int\" or name = { type = \"float\", unit = \"s\", default = 1.5, doc = \"...\" }")
		}
		for _, name := range order([]string{"params"}, pt) {
			kp := []string{"params", name}
			if err := checkName(kp, name); err != nil {
				return err
			}
			p, err := declParam(kp, name, pt[name])
			if err != nil {
				return err
			}
			if i := index(name); i >= 0 {
				c.params[i] = p // the study's declaration replaces the preset's
			} else {
				c.params = append(c.params, p)
			}
		}
	}
	// inferred: every value set in [base], [axes], [[zip]]
	type use struct {
		path []string
		vals []any
	}
	var uses []use
	if b, ok := tables["base"].(map[string]any); ok {
		for _, k := range order([]string{"base"}, b) {
			uses = append(uses, use{[]string{"base", k}, []any{b[k]}})
		}
	}
	if a, ok := tables["axes"].(map[string]any); ok {
		for _, k := range order([]string{"axes"}, a) {
			uses = append(uses, use{[]string{"axes", k}, axisSample(a[k])})
		}
	}
	if z, ok := tables["zip"].([]map[string]any); ok {
		for gi, g := range z {
			for _, k := range order([]string{"zip", fmt.Sprint(gi)}, g) {
				uses = append(uses, use{[]string{"zip", fmt.Sprint(gi), k}, axisSample(g[k])})
			}
		}
	}
	inferred := map[string]int{}
	for _, u := range uses {
		name := u.path[len(u.path)-1]
		if i := index(name); i >= 0 {
			if j, ok := inferred[name]; ok && j == i {
				// seen before without a declaration: widen int to float
				k, err := inferKind(u.path, u.vals)
				if err != nil {
					return err
				}
				if k != c.params[i].Kind {
					if (k == engine.Float && c.params[i].Kind == engine.Int) || (k == engine.Int && c.params[i].Kind == engine.Float) {
						c.params[i].Kind = engine.Float
					} else {
						return keyErr(u.path, "%s is %s here but %s elsewhere; declare it in [params]", name, k, c.params[i].Kind)
					}
				}
			}
			continue // declared: the study loader checks the values
		}
		if err := checkName(u.path, name); err != nil {
			return err
		}
		k, err := inferKind(u.path, u.vals)
		if err != nil {
			return err
		}
		inferred[name] = len(c.params)
		c.params = append(c.params, engine.Param{Name: name, Kind: k, Doc: "set by the study"})
	}
	// the study's seed and repeats vary a parameter called seed
	if st, ok := tables["study"].(map[string]any); ok && index("seed") < 0 {
		_, seed := st["seed"]
		_, repeats := st["repeats"]
		if seed || repeats {
			c.params = append(c.params, engine.Param{Name: "seed", Kind: engine.Int, Doc: "random seed ([study] seed / repeats)", Default: engine.IntV(1)})
		}
	}
	return nil
}

// axisSample returns the values an axis takes, or a range's bounds.
func axisSample(v any) []any {
	switch x := v.(type) {
	case []any:
		return x
	case map[string]any:
		var out []any
		for _, k := range []string{"from", "to", "step", "mul"} {
			if e, ok := x[k]; ok {
				out = append(out, e)
			}
		}
		return out
	}
	return []any{v}
}

// inferKind is the kind of a parameter from the values a study gives it:
// integers → int, any float among numbers → float, strings, booleans.
func inferKind(path []string, vals []any) (engine.Kind, error) {
	k := engine.Unset
	for _, v := range vals {
		var vk engine.Kind
		switch v.(type) {
		case int64:
			vk = engine.Int
		case float64:
			vk = engine.Float
		case string:
			vk = engine.String
		case bool:
			vk = engine.Bool
		default:
			return 0, keyErr(path, "want numbers, strings or booleans, got %s", tomlx.Describe(v))
		}
		switch {
		case k == engine.Unset || k == vk:
			k = vk
		case (k == engine.Int && vk == engine.Float) || (k == engine.Float && vk == engine.Int):
			k = engine.Float
		default:
			return 0, keyErr(path, "mixes %s and %s values; declare the parameter's type in [params]", k, vk)
		}
	}
	if k == engine.Unset {
		return 0, keyErr(path, "no values")
	}
	return k, nil
}

var kindNames = map[string]engine.Kind{"int": engine.Int, "float": engine.Float, "string": engine.String, "bool": engine.Bool}

func kindOf(path []string, v any) (engine.Kind, error) {
	s, ok := v.(string)
	if !ok {
		return 0, keyErr(path, "want a type name (int, float, string, bool), got %s", tomlx.Describe(v))
	}
	k, ok := kindNames[s]
	if !ok {
		return 0, keyErr(path, "unknown type %q (known: int, float, string, bool)", s)
	}
	return k, nil
}

// declParam reads one [params] entry.
func declParam(path []string, name string, v any) (engine.Param, error) {
	p := engine.Param{Name: name}
	switch x := v.(type) {
	case string:
		k, err := kindOf(path, x)
		if err != nil {
			return p, err
		}
		p.Kind = k
		return p, nil
	case map[string]any:
		t, ok := x["type"]
		if !ok {
			return p, keyErr(path, "missing type = \"int\" | \"float\" | \"string\" | \"bool\"")
		}
		k, err := kindOf(append(path, "type"), t)
		if err != nil {
			return p, err
		}
		p.Kind = k
		for _, key := range sortedKeys(x) {
			kp := append(slices.Clone(path), key)
			val := x[key]
			switch key {
			case "type":
			case "unit", "doc":
				s, ok := val.(string)
				if !ok {
					return p, keyErr(kp, "want a string, got %s", tomlx.Describe(val))
				}
				if key == "unit" {
					p.Unit = s
				} else {
					p.Doc = s
				}
			case "enum":
				list, ok := val.([]any)
				if !ok || k != engine.String {
					return p, keyErr(kp, "enum is a list of the allowed values of a string parameter")
				}
				for _, e := range list {
					s, ok := e.(string)
					if !ok {
						return p, keyErr(kp, "want strings, got %s", tomlx.Describe(e))
					}
					p.Enum = append(p.Enum, s)
				}
			case "default":
			default:
				return p, keyErr(kp, "unknown key (known: type, unit, doc, default, enum)")
			}
		}
		if d, ok := x["default"]; ok {
			dv, err := tomlValue(k, d)
			if err != nil {
				return p, keyErr(append(slices.Clone(path), "default"), "%v", err)
			}
			if len(p.Enum) > 0 && !slices.Contains(p.Enum, dv.S) {
				return p, keyErr(append(slices.Clone(path), "default"), "%q is not one of %s", dv.S, strings.Join(p.Enum, ", "))
			}
			p.Default = dv
		}
		return p, nil
	}
	return p, keyErr(path, "want a type name or a table { type = ..., unit = ..., default = ..., doc = ... }, got %s", tomlx.Describe(v))
}

// tomlValue converts a TOML value to a value of kind k.
func tomlValue(k engine.Kind, v any) (engine.Value, error) { return tomlx.Value(k, v) }

// parseMetrics reads [metrics]: name = "float" or name = { type = "float",
// unit = "s", doc = "...", key = "path.in.json", optional = true }.
func (c *config) parseMetrics(tables map[string]any, order func([]string, map[string]any) []string) error {
	v, ok := tables["metrics"]
	if !ok {
		return keyErr([]string{"metrics"}, "reader %q needs a [metrics] table declaring each metric: name = { type = \"float\", unit = \"s\" }", c.readerName)
	}
	mt, ok := v.(map[string]any)
	if !ok || len(mt) == 0 {
		return keyErr([]string{"metrics"}, "must be a table with at least one metric: name = { type = \"float\", unit = \"s\" }")
	}
	for _, name := range order([]string{"metrics"}, mt) {
		kp := []string{"metrics", name}
		if !identRE.MatchString(name) {
			return keyErr(kp, "metric names must be identifiers (letters, digits, '_'), got %q", name)
		}
		if slices.Contains(datasetColumns, name) {
			return keyErr(kp, "%q is a column of every dataset; pick another metric name", name)
		}
		if engine.ParamIndex(c.params, name) >= 0 {
			return keyErr(kp, "%q is also a parameter; metric and parameter names must differ", name)
		}
		m := metricSpec{field: engine.Field{Name: name}, key: []string{name}}
		switch x := mt[name].(type) {
		case string:
			k, err := kindOf(kp, x)
			if err != nil {
				return err
			}
			m.field.Kind = k
		case map[string]any:
			t, ok := x["type"]
			if !ok {
				return keyErr(kp, "missing type = \"int\" | \"float\" | \"string\" | \"bool\"")
			}
			k, err := kindOf(append(kp, "type"), t)
			if err != nil {
				return err
			}
			m.field.Kind = k
			for _, key := range sortedKeys(x) {
				kk := append(slices.Clone(kp), key)
				val := x[key]
				switch key {
				case "type":
				case "unit", "doc", "key":
					s, ok := val.(string)
					if !ok || (key == "key" && s == "") {
						return keyErr(kk, "want a non-empty string, got %s", tomlx.Describe(val))
					}
					switch key {
					case "unit":
						m.field.Unit = s
					case "doc":
						m.field.Doc = s
					case "key":
						if c.readerName != "json" {
							return keyErr(kk, "key (a path into the JSON object) is for reader = \"json\"")
						}
						m.key = strings.Split(s, ".")
					}
				case "optional":
					b, ok := val.(bool)
					if !ok {
						return keyErr(kk, "want true or false, got %s", tomlx.Describe(val))
					}
					m.optional = b
				default:
					return keyErr(kk, "unknown key (known: type, unit, doc, key, optional)")
				}
			}
		default:
			return keyErr(kp, "want a type name or a table { type = ..., unit = ..., doc = ... }, got %s", tomlx.Describe(x))
		}
		c.metrics = append(c.metrics, m)
	}
	return nil
}

// lookBinary resolves the program: a path with a separator is relative to
// the study folder, a bare name is looked up in PATH.
func lookBinary(name, dir string) (string, error) {
	if !strings.ContainsRune(name, filepath.Separator) {
		p, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("%q not found in PATH", name)
		}
		name = p
	} else if !filepath.IsAbs(name) {
		name = filepath.Join(dir, name)
	}
	abs, err := filepath.Abs(name)
	if err != nil {
		return "", err
	}
	return abs, checkExecutable(abs)
}

func checkExecutable(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("program %s: %v", path, errors.Unwrap(err))
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("program %s is not an executable file", path)
	}
	return nil
}

// parseDuration reads "90s", "2h30m" or a number of seconds.
func parseDuration(v any) (time.Duration, error) {
	var d time.Duration
	switch x := v.(type) {
	case string:
		var err error
		d, err = time.ParseDuration(x)
		if err != nil {
			return 0, fmt.Errorf("want a duration such as \"90s\" or \"2h\", got %q", x)
		}
	case int64:
		d = time.Duration(x) * time.Second
	case float64:
		d = time.Duration(x * float64(time.Second))
	default:
		return 0, fmt.Errorf("want a duration such as \"90s\" or a number of seconds, got %s", tomlx.Describe(v))
	}
	if d <= 0 {
		return 0, fmt.Errorf("must be positive, got %v", v)
	}
	return d, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
