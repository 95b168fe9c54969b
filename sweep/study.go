package sweep

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"
	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/sweep-dse/sweep/engine"
	"github.com/sweep-dse/sweep/engine/command"
	"github.com/sweep-dse/sweep/engine/moe"
	"github.com/sweep-dse/sweep/internal/tomlx"
)

// DefaultMaxPoints is the largest study that runs without --force.
const DefaultMaxPoints = 50_000_000

// maxAxisValues bounds the values one range may produce.
const maxAxisValues = 10_000_000

// Study is a loaded, validated study file.
type Study struct {
	Path        string // as given
	Dir         string // folder of the study file: relative paths start here
	Text        string // the file's text, stored in every part's metadata
	Name        string
	Description string
	Engine      engine.Engine
	MaxPoints   int64

	Base  []engine.Value // per engine parameter; Unset where not given
	Dims  []Dim          // axes and zip groups, outermost first
	Where []Constraint

	keys     map[int]string // parameter index -> dotted key that sets it (for errors)
	readOnly bool           // ParseForReading

	tableOnce sync.Once
	keepTab   *keepTable // constraints tabulated over the axes they read

	digests fileDigests // of the files its points name, part of their IDs
}

// Dim is one dimension of the study's grid: one axis, or a [[zip]] group of
// axes that vary together.
type Dim struct {
	Key    string           // "axes.top_k" or "zip[0]"
	Params []int            // parameter indexes
	Names  []string         // parameter names
	Values [][]engine.Value // Values[j][i]: parameter j at step i
}

// Len is the number of steps of the dimension.
func (d *Dim) Len() int { return len(d.Values[0]) }

// Constraint is one compiled `where` expression.
type Constraint struct {
	Source string
	prog   *vm.Program
	names  []string // parameters it reads
	params []int
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// Engines maps an engine name to its constructor. A constructor may read
// engine-specific tables of the study file from raw.
var Engines = map[string]func(s *Study, raw map[string]any) (engine.Engine, error){
	moe.Name:     func(*Study, map[string]any) (engine.Engine, error) { return moe.New(), nil },
	command.Name: commandEngine,
}

// commandEngine builds the external-program engine from the study's
// [command], [params] and [metrics] tables; its key errors become
// InputErrors at the key's line.
func commandEngine(s *Study, raw map[string]any) (engine.Engine, error) {
	eng, err := command.New(command.Source{
		Tables:   raw,
		Dir:      s.Dir,
		ReadOnly: s.readOnly,
		Order: func(path []string, m map[string]any) []string {
			return orderedKeys(s.Text, strings.Join(path, "."), m)
		},
	})
	var ke *command.KeyError
	if errors.As(err, &ke) {
		line := 0
		if ke.Path[0] == "zip" {
			line = locate(s.Text, ke.Path)
		}
		for i := len(ke.Path) - 1; i >= 1 && line == 0; i-- {
			line = locate(s.Text, []string{strings.Join(ke.Path[:i], "."), ke.Path[i]})
		}
		if line == 0 {
			line = locate(s.Text, ke.Path[:1])
		}
		return nil, &InputError{File: s.Path, Line: line, Key: strings.Join(ke.Path, "."), Msg: ke.Msg}
	}
	return eng, err
}

// Load reads and validates a study file. Every problem is an *InputError
// naming the file, line and key.
func Load(path string) (*Study, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &InputError{File: path, Msg: fmt.Sprintf("cannot read study: %v", errors.Unwrap(err))}
	}
	return Parse(path, string(data))
}

// Parse validates a study given its text; path names it in errors and
// anchors relative paths.
func Parse(path, text string) (*Study, error) { return parse(path, text, false) }

// ParseForReading parses a study stored in a dataset to read its axes,
// parameters and metrics, not to run it: an external engine's program need
// not exist here (the dataset may have come from another machine, or name
// it relative to where it ran), and its engine reports no version.
func ParseForReading(path, text string) (*Study, error) { return parse(path, text, true) }

func parse(path, text string, readOnly bool) (*Study, error) {
	s := &Study{Path: path, Dir: filepath.Dir(path), Text: text, MaxPoints: DefaultMaxPoints, keys: map[int]string{}, readOnly: readOnly}
	fail := func(keyPath []string, format string, args ...any) error {
		return &InputError{File: path, Line: locate(text, keyPath), Key: strings.Join(keyPath, "."), Msg: fmt.Sprintf(format, args...)}
	}
	var raw map[string]any
	if _, err := toml.Decode(text, &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &InputError{File: path, Line: pe.Position.Line, Key: pe.LastKey, Msg: "TOML syntax: " + pe.Message}
		}
		return nil, &InputError{File: path, Msg: "TOML: " + err.Error()}
	}
	for k := range raw {
		switch k {
		case "study", "base", "axes", "zip", "command", "metrics", "params":
		default:
			return nil, fail([]string{k}, "unknown table or key (known: study, base, axes, zip, command, metrics, params)")
		}
	}
	st, ok := raw["study"].(map[string]any)
	if !ok {
		if raw["study"] != nil {
			return nil, fail([]string{"study"}, "must be a table")
		}
		return nil, &InputError{File: path, Line: 1, Key: "study", Msg: "missing [study] table with at least name = \"...\""}
	}
	engineName := moe.Name
	var whereSrc []string
	var repeats int64 = 1
	var studySeed *int64
	for k, v := range st {
		kp := []string{"study", k}
		switch k {
		case "name", "description", "engine":
			str, ok := v.(string)
			if !ok {
				return nil, fail(kp, "want a string, got %s", tomlx.Describe(v))
			}
			switch k {
			case "name":
				if !nameRE.MatchString(str) || strings.Contains(str, "..") {
					return nil, fail(kp, "%q is not a valid study name: use letters, digits, '.', '_' and '-' (no path separators, no '..', at most 100 characters)", str)
				}
				s.Name = str
			case "description":
				s.Description = str
			case "engine":
				engineName = str
			}
		case "seed", "repeats", "max_points":
			n, ok := v.(int64)
			if !ok {
				return nil, fail(kp, "want an integer, got %s", tomlx.Describe(v))
			}
			switch k {
			case "seed":
				studySeed = &n
			case "repeats":
				if n < 1 || n > 1_000_000 {
					return nil, fail(kp, "must be between 1 and 1000000, got %d", n)
				}
				repeats = n
			case "max_points":
				if n < 1 {
					return nil, fail(kp, "must be positive, got %d", n)
				}
				s.MaxPoints = n
			}
		case "where":
			list, ok := v.([]any)
			if !ok {
				if str, ok := v.(string); ok {
					list = []any{str}
				} else {
					return nil, fail(kp, "want a list of expressions, got %s", tomlx.Describe(v))
				}
			}
			for _, x := range list {
				str, ok := x.(string)
				if !ok {
					return nil, fail(kp, "want expressions as strings, got %s", tomlx.Describe(x))
				}
				whereSrc = append(whereSrc, str)
			}
		default:
			return nil, fail(kp, "unknown key (known: name, description, engine, seed, repeats, where, max_points)")
		}
	}
	if s.Name == "" {
		return nil, fail([]string{"study"}, "missing name = \"...\"")
	}
	mk, ok := Engines[engineName]
	if !ok {
		names := make([]string, 0, len(Engines))
		for n := range Engines {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fail([]string{"study", "engine"}, "unknown engine %q (known: %s)", engineName, strings.Join(names, ", "))
	}
	eng, err := mk(s, raw)
	if err != nil {
		var ie *InputError
		if errors.As(err, &ie) {
			return nil, err
		}
		return nil, fail([]string{"study", "engine"}, "%v", err)
	}
	if _, ok := raw["command"]; ok && engineName == moe.Name {
		return nil, fail([]string{"command"}, "[command] is for engine = \"command\"")
	}
	if _, ok := raw["metrics"]; ok && engineName == moe.Name {
		return nil, fail([]string{"metrics"}, "[metrics] is for engine = \"command\"; the embedded engine's metrics are fixed")
	}
	if _, ok := raw["params"]; ok && engineName == moe.Name {
		return nil, fail([]string{"params"}, "[params] is for engine = \"command\"; see `sweep params` for the embedded engine's")
	}
	s.Engine = eng
	params := eng.Params()
	s.Base = make([]engine.Value, len(params))

	// [base]
	if b, ok := raw["base"]; ok {
		bt, ok := b.(map[string]any)
		if !ok {
			return nil, fail([]string{"base"}, "must be a table")
		}
		for _, k := range sortedKeys(bt) {
			kp := []string{"base", k}
			i := engine.ParamIndex(params, k)
			if i < 0 {
				return nil, fail(kp, "unknown parameter%s", suggest(k, params))
			}
			v, err := toValue(params[i], bt[k])
			if err != nil {
				return nil, fail(kp, "%v", err)
			}
			s.Base[i] = v
			s.keys[i] = "base." + k
		}
	}
	if studySeed != nil {
		i := engine.ParamIndex(params, "seed")
		if i < 0 {
			return nil, fail([]string{"study", "seed"}, "engine %s has no seed parameter", engineName)
		}
		if s.Base[i].IsSet() {
			return nil, fail([]string{"base", "seed"}, "seed is set in both [study] and [base]")
		}
		s.Base[i] = engine.IntV(*studySeed)
		s.keys[i] = "study.seed"
	}

	// [axes]
	inAxes := map[int]string{}
	if a, ok := raw["axes"]; ok {
		at, ok := a.(map[string]any)
		if !ok {
			return nil, fail([]string{"axes"}, "must be a table")
		}
		for _, k := range orderedKeys(text, "axes", at) {
			kp := []string{"axes", k}
			i := engine.ParamIndex(params, k)
			if i < 0 {
				return nil, fail(kp, "unknown parameter%s", suggest(k, params))
			}
			if s.Base[i].IsSet() {
				return nil, fail(kp, "%s is set in both %s and [axes]", k, s.keys[i])
			}
			vals, err := axisValues(params[i], at[k])
			if err != nil {
				return nil, fail(kp, "%v", err)
			}
			inAxes[i] = "axes." + k
			s.keys[i] = "axes." + k
			s.Dims = append(s.Dims, Dim{Key: "axes." + k, Params: []int{i}, Names: []string{k}, Values: [][]engine.Value{vals}})
		}
	}
	// [[zip]]
	if z, ok := raw["zip"]; ok {
		groups, ok := z.([]map[string]any)
		if !ok {
			return nil, fail([]string{"zip"}, "must be an array of tables: [[zip]]")
		}
		for gi, g := range groups {
			gkey := fmt.Sprintf("zip[%d]", gi)
			if len(g) == 0 {
				return nil, fail([]string{"zip", fmt.Sprint(gi)}, "empty [[zip]] group")
			}
			d := Dim{Key: gkey}
			for _, k := range orderedKeys(text, "zip", g) {
				kp := []string{"zip", fmt.Sprint(gi), k}
				i := engine.ParamIndex(params, k)
				if i < 0 {
					return nil, fail(kp, "unknown parameter%s", suggest(k, params))
				}
				if s.Base[i].IsSet() {
					return nil, fail(kp, "%s is set in both %s and [[zip]]", k, s.keys[i])
				}
				if prev, ok := inAxes[i]; ok {
					return nil, fail(kp, "%s is set in both %s and [[zip]]", k, prev)
				}
				vals, err := axisValues(params[i], g[k])
				if err != nil {
					return nil, fail(kp, "%v", err)
				}
				if len(d.Values) > 0 && len(vals) != d.Len() {
					return nil, fail(kp, "has %d values but %s has %d: axes of one [[zip]] group must be equally long", len(vals), d.Names[0], d.Len())
				}
				inAxes[i] = gkey + "." + k
				s.keys[i] = gkey + "." + k
				d.Params = append(d.Params, i)
				d.Names = append(d.Names, k)
				d.Values = append(d.Values, vals)
			}
			s.Dims = append(s.Dims, d)
		}
	}
	if repeats > 1 {
		i := engine.ParamIndex(params, "seed")
		if i < 0 {
			return nil, fail([]string{"study", "repeats"}, "engine %s has no seed parameter", engineName)
		}
		if k, ok := inAxes[i]; ok {
			return nil, fail([]string{"study", "repeats"}, "repeats varies the seed, which %s already varies", k)
		}
		first := int64(1)
		if s.Base[i].IsSet() {
			first = s.Base[i].I
		} else if d := params[i].Default; d.IsSet() {
			first = d.I
		}
		s.Base[i] = engine.Value{}
		vals := make([]engine.Value, repeats)
		for r := range vals {
			vals[r] = engine.IntV(first + int64(r))
		}
		s.keys[i] = "study.repeats"
		s.Dims = append(s.Dims, Dim{Key: "study.repeats", Params: []int{i}, Names: []string{"seed"}, Values: [][]engine.Value{vals}})
	}
	// where
	for wi, src := range whereSrc {
		c, err := compileWhere(src, params, s)
		if err != nil {
			return nil, &InputError{File: path, Line: locate(text, []string{"study", "where"}), Key: fmt.Sprintf("study.where[%d]", wi), Msg: err.Error()}
		}
		s.Where = append(s.Where, c)
	}
	return s, nil
}

// KeyOf returns the dotted study key that sets parameter i, or "".
func (s *Study) KeyOf(i int) string { return s.keys[i] }

// ErrorAt turns an engine error about a parameter into an InputError at the
// key that set it.
func (s *Study) ErrorAt(err error, point string) error {
	var pe *engine.ParamError
	if errors.As(err, &pe) {
		i := engine.ParamIndex(s.Engine.Params(), pe.Name)
		key := s.keys[i]
		if key == "" {
			// a parameter the study does not set (a preset's or a derived
			// value): point at a parameter the message names that it sets
			// ("n_heads = 32: does not divide d_model = 4100")
			key = s.givenKeyIn(pe.Msg)
		}
		if key == "" {
			key = pe.Name
		}
		kp := strings.Split(strings.ReplaceAll(strings.ReplaceAll(key, "[", "."), "]", ""), ".")
		msg := pe.Error()
		if point != "" {
			msg += " (at point " + point + ")"
		}
		return &InputError{File: s.Path, Line: locate(s.Text, kp), Key: key, Msg: msg}
	}
	var fe *engine.FileError
	if errors.As(err, &fe) {
		if key := s.fileKey(fe.Path); key != "" {
			kp := strings.Split(strings.ReplaceAll(strings.ReplaceAll(key, "[", "."), "]", ""), ".")
			return &InputError{File: s.Path, Line: locate(s.Text, kp), Key: key, Msg: err.Error()}
		}
		return &InputError{File: s.Path, Msg: err.Error()}
	}
	return err
}

// givenKeyIn returns the study key of the first parameter named in msg
// that the study sets ("" if none).
func (s *Study) givenKeyIn(msg string) string {
	best, at := "", len(msg)+1
	for i, key := range s.keys {
		name := s.Engine.Params()[i].Name
		for j := 0; j+len(name) <= len(msg); {
			k := strings.Index(msg[j:], name)
			if k < 0 {
				break
			}
			k += j
			before := k == 0 || !isIdent(msg[k-1])
			after := k+len(name) == len(msg) || !isIdent(msg[k+len(name)])
			if before && after && k < at {
				best, at = key, k
			}
			j = k + 1
		}
	}
	return best
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// fileKey returns the study key of the file parameter whose value names
// path (relative to the study's folder), "" if none.
func (s *Study) fileKey(path string) string {
	want := filepath.Clean(path)
	names := func(v engine.Value) bool {
		return v.Kind == engine.String && v.S != "" &&
			(filepath.Clean(v.S) == want || filepath.Clean(filepath.Join(s.Dir, v.S)) == want)
	}
	params := s.Engine.Params()
	for i, key := range s.keys {
		if !params[i].File {
			continue
		}
		if i < len(s.Base) && names(s.Base[i]) {
			return key
		}
		for _, d := range s.Dims {
			for j, pi := range d.Params {
				if pi != i {
					continue
				}
				for _, v := range d.Values[j] {
					if names(v) {
						return key
					}
				}
			}
		}
	}
	return ""
}

// toValue converts a TOML value to a parameter value of the parameter's
// kind, checking enumerated strings.
func toValue(p engine.Param, v any) (engine.Value, error) {
	val, err := tomlx.Value(p.Kind, v)
	if err != nil {
		return val, err
	}
	if p.Kind == engine.String && len(p.Enum) > 0 && !contains(p.Enum, val.S) {
		return engine.Value{}, fmt.Errorf("%q is not one of %s", val.S, strings.Join(p.Enum, ", "))
	}
	return val, nil
}

// axisValues expands a list or a range table into values.
func axisValues(p engine.Param, v any) ([]engine.Value, error) {
	var out []engine.Value
	switch x := v.(type) {
	case []any:
		if len(x) == 0 {
			return nil, fmt.Errorf("empty axis: give at least one value")
		}
		for i, e := range x {
			val, err := toValue(p, e)
			if err != nil {
				return nil, fmt.Errorf("value %d: %v", i+1, err)
			}
			out = append(out, val)
		}
	case map[string]any:
		r, err := rangeValues(p, x)
		if err != nil {
			return nil, err
		}
		out = r
	default:
		return nil, fmt.Errorf("want a list [a, b, ...] or a range {from, to, step} / {from, to, mul}, got %s", tomlx.Describe(v))
	}
	seen := map[engine.Value]bool{}
	for _, val := range out {
		if seen[val] {
			return nil, fmt.Errorf("duplicate value %s", val)
		}
		seen[val] = true
	}
	return out, nil
}

func rangeValues(p engine.Param, t map[string]any) ([]engine.Value, error) {
	if p.Kind != engine.Int && p.Kind != engine.Float {
		return nil, fmt.Errorf("a range needs a numeric parameter; %s is %s", p.Name, p.Kind)
	}
	for k := range t {
		switch k {
		case "from", "to", "step", "mul":
		default:
			return nil, fmt.Errorf("unknown range key %q (known: from, to, step, mul)", k)
		}
	}
	num := func(k string) (float64, bool, error) {
		v, ok := t[k]
		if !ok {
			return 0, false, nil
		}
		switch x := v.(type) {
		case int64:
			return float64(x), true, nil
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return 0, true, fmt.Errorf("range %s must be finite", k)
			}
			return x, true, nil
		}
		return 0, true, fmt.Errorf("range %s: want a number, got %s", k, tomlx.Describe(v))
	}
	from, okF, err := num("from")
	if err != nil {
		return nil, err
	}
	to, okT, err := num("to")
	if err != nil {
		return nil, err
	}
	step, okS, err := num("step")
	if err != nil {
		return nil, err
	}
	mul, okM, err := num("mul")
	if err != nil {
		return nil, err
	}
	if !okF || !okT {
		return nil, fmt.Errorf("a range needs from and to")
	}
	if okS == okM {
		return nil, fmt.Errorf("a range needs exactly one of step (linear) or mul (geometric)")
	}
	if from > to {
		return nil, fmt.Errorf("range from %g is greater than to %g", from, to)
	}
	var vals []float64
	const eps = 1e-9
	if okS {
		if step <= 0 {
			return nil, fmt.Errorf("range step must be positive, got %g", step)
		}
		n := math.Floor((to-from)/step+eps) + 1
		if n > maxAxisValues {
			return nil, fmt.Errorf("range has %.0f values, more than %d", n, maxAxisValues)
		}
		// from + i·step carries binary noise (1.0 + 7·0.1 is
		// 1.7000000000000002): round to the decimals of from and step, so a
		// value equals the literal a user would write for it
		scale := math.Pow(10, float64(max(decimals(from), decimals(step))))
		for i := 0; i < int(n); i++ {
			v := from + float64(i)*step
			if scale <= 1e15 {
				v = math.Round(v*scale) / scale
			}
			vals = append(vals, v)
		}
	} else {
		if mul <= 1 {
			return nil, fmt.Errorf("range mul must be greater than 1, got %g", mul)
		}
		if from <= 0 {
			return nil, fmt.Errorf("a geometric range needs from > 0, got %g", from)
		}
		for x := from; x <= to*(1+eps); x *= mul {
			// 12 significant digits drop the noise of repeated products
			// (1.1·1.1 is 1.2100000000000002)
			r, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'g', 12, 64), 64)
			vals = append(vals, r)
			if len(vals) > maxAxisValues {
				return nil, fmt.Errorf("range has more than %d values", maxAxisValues)
			}
		}
	}
	out := make([]engine.Value, len(vals))
	for i, x := range vals {
		if p.Kind == engine.Int {
			r := math.Round(x)
			if math.Abs(r-x) > 1e-6 {
				return nil, fmt.Errorf("range value %g of integer parameter %s is not an integer", x, p.Name)
			}
			out[i] = engine.IntV(int64(r))
		} else {
			out[i] = engine.FloatV(x)
		}
	}
	return out, nil
}

// compileWhere compiles a constraint. It may read any parameter that the
// study sets or that has a fixed default.
func compileWhere(src string, params []engine.Param, s *Study) (Constraint, error) {
	env := map[string]any{}
	for _, p := range params {
		env[p.Name] = ExprZero(p.Kind)
	}
	names, err := ExprIdents(src)
	if err != nil {
		return Constraint{}, err
	}
	c := Constraint{Source: src}
	for _, n := range names {
		i := engine.ParamIndex(params, n)
		if i < 0 {
			return Constraint{}, fmt.Errorf("%q: unknown name%s", src, suggest(n, params))
		}
		if !s.Base[i].IsSet() && s.keys[i] == "" && !params[i].Default.IsSet() {
			return Constraint{}, fmt.Errorf("%q: %s is derived from other parameters; set it in [base] or [axes] to constrain it", src, n)
		}
		c.names = append(c.names, n)
		c.params = append(c.params, i)
	}
	prog, err := expr.Compile(src, ExprOptions(env, true)...)
	if err != nil {
		return Constraint{}, fmt.Errorf("bad expression %q: %v", src, FirstLine(err.Error()))
	}
	if err := CheckEnumLiterals(src, EnumsOf(params)); err != nil {
		return Constraint{}, err
	}
	c.prog = prog
	return c, nil
}

// EnumsOf returns the allowed values of the string parameter called name
// among params, nil when it has no fixed set (or is no such parameter).
func EnumsOf(params []engine.Param) func(name string) []string {
	return func(name string) []string {
		if i := engine.ParamIndex(params, name); i >= 0 && params[i].Kind == engine.String {
			return params[i].Enum
		}
		return nil
	}
}

// CheckEnumLiterals rejects a comparison in the expression src that can
// never hold, or always holds, because it compares a name with a fixed set
// of values (enum returns it, nil for other names) to a string literal
// outside the set: name == "x" and name != "x" (the literal on either
// side), name in ["x", ...] and name not in [...], and "x" in [name, ...]
// when the literal is outside the set of every name listed. The error
// names the literal and lists the allowed values. An expression that does
// not parse gives no error here (compiling it reports that).
func CheckEnumLiterals(src string, enum func(name string) []string) error {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil
	}
	// names a `let` declares are no parameters
	local := map[string]bool{}
	ast.Walk(&tree.Node, nodeVisitor(func(n ast.Node) {
		if v, ok := n.(*ast.VariableDeclaratorNode); ok {
			local[v.Name] = true
		}
	}))
	// enumOf is the set of values of n when it is a name with one
	enumOf := func(n ast.Node) (string, []string) {
		id, ok := n.(*ast.IdentifierNode)
		if !ok || local[id.Value] {
			return "", nil
		}
		return id.Value, enum(id.Value)
	}
	literal := func(n ast.Node) (string, bool) {
		s, ok := n.(*ast.StringNode)
		if !ok {
			return "", false
		}
		return s.Value, true
	}
	var first error
	// bad reports lit as a value the names of subject ("routing is
	// never") do not take
	bad := func(subject string, values []string, lit string) {
		if first != nil {
			return
		}
		hint := ""
		best, bestD := "", 4
		for _, v := range values {
			if d := EditDistance(lit, v); d < bestD {
				best, bestD = v, d
			}
		}
		if best != "" {
			hint = fmt.Sprintf(" (did you mean %q?)", best)
		}
		first = fmt.Errorf("%q: %s %q: the values are %s%s", src, subject, lit, strings.Join(values, ", "), hint)
	}
	ast.Walk(&tree.Node, nodeVisitor(func(n ast.Node) {
		b, ok := n.(*ast.BinaryNode)
		if !ok {
			return
		}
		switch b.Operator {
		case "==", "!=":
			for _, pair := range [2][2]ast.Node{{b.Left, b.Right}, {b.Right, b.Left}} {
				name, values := enumOf(pair[0])
				lit, ok := literal(pair[1])
				if len(values) > 0 && ok && !contains(values, lit) {
					bad(name+" is never", values, lit)
				}
			}
		case "in":
			list, ok := b.Right.(*ast.ArrayNode)
			if !ok {
				return
			}
			if name, values := enumOf(b.Left); len(values) > 0 {
				for _, e := range list.Nodes {
					if lit, ok := literal(e); ok && !contains(values, lit) {
						bad(name+" is never", values, lit)
					}
				}
				return
			}
			lit, ok := literal(b.Left)
			if !ok || len(list.Nodes) == 0 {
				return
			}
			var names []string
			var union []string
			for _, e := range list.Nodes {
				name, values := enumOf(e)
				if len(values) == 0 {
					return // an element of any value may equal the literal
				}
				if contains(values, lit) {
					return
				}
				names = append(names, name)
				for _, v := range values {
					if !contains(union, v) {
						union = append(union, v)
					}
				}
			}
			if len(names) == 1 {
				bad(names[0]+" is never", union, lit)
			} else {
				bad("none of "+strings.Join(names, ", ")+" is ever", union, lit)
			}
		}
	}))
	return first
}

type nodeVisitor func(ast.Node)

func (f nodeVisitor) Visit(n *ast.Node) { f(*n) }

// ExprOptions are the options of every expression sweep compiles (study
// constraints, analysis filters): the given variables, a bounded size, and
// only side-effect-free arithmetic builtins (abs, ceil, floor, round, min, max,
// int, float); no other functions (no clock, no len over ranges). Predicates
// over literal collections (filter, all, ...) stay available, bounded by the
// node limit and expr's memory budget.
func ExprOptions(env map[string]any, asBool bool) []expr.Option {
	opts := []expr.Option{expr.Env(env), expr.MaxNodes(500), expr.DisableAllBuiltins()}
	for _, b := range []string{"abs", "ceil", "floor", "round", "min", "max", "int", "float"} {
		opts = append(opts, expr.EnableBuiltin(b))
	}
	if asBool {
		opts = append(opts, expr.AsBool())
	}
	return opts
}

// ExprIdents parses an expression and returns the names it reads, each once,
// in order of appearance.
func ExprIdents(src string) ([]string, error) {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("bad expression %q: %v", src, FirstLine(err.Error()))
	}
	var names []string
	seen := map[string]bool{}
	ast.Walk(&tree.Node, identVisitor(func(n string) {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}))
	return names, nil
}

type identVisitor func(string)

func (f identVisitor) Visit(n *ast.Node) {
	if id, ok := (*n).(*ast.IdentifierNode); ok {
		f(id.Value)
	}
}

// ExprZero is the zero value of a kind in an expression environment (it
// gives the type checker each name's type).
func ExprZero(k engine.Kind) any {
	switch k {
	case engine.Int:
		return 0
	case engine.Float:
		return 0.0
	case engine.Bool:
		return false
	}
	return ""
}

// FirstLine is the first line of s (expr errors span several).
func FirstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// orderedKeys returns a table's keys in the order they appear in the text
// (file order defines axis nesting), falling back to sorted order.
func orderedKeys(text, table string, m map[string]any) []string {
	keys := sortedKeys(m)
	pos := map[string]int{}
	for _, k := range keys {
		pos[k] = locate(text, []string{table, k})
	}
	sort.SliceStable(keys, func(a, b int) bool { return pos[keys[a]] < pos[keys[b]] })
	return keys
}

// suggest names a parameter close to an unknown one.
func suggest(name string, params []engine.Param) string {
	best, bestD := "", 4
	for _, p := range params {
		if d := EditDistance(name, p.Name); d < bestD {
			best, bestD = p.Name, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" %q (did you mean %s?)", name, best)
	}
	return fmt.Sprintf(" %q (see `sweep params`)", name)
}

// EditDistance is the Levenshtein distance of a and b, for "did you mean".
func EditDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// decimals is the number of digits after the decimal point in the shortest
// decimal form of x (0 for whole numbers).
func decimals(x float64) int {
	f := strconv.FormatFloat(math.Abs(x), 'f', -1, 64)
	if i := strings.IndexByte(f, '.'); i >= 0 {
		return len(f) - i - 1
	}
	return 0
}
