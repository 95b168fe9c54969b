// Package engine defines the contract between the study runner and the
// simulators that evaluate design points.
//
// An Engine declares, before any point runs, the parameters it accepts and the
// metrics it returns (each with a name, a kind and a unit). A point is a vector
// of parameter values in the order of Params; Evaluate fills a vector of metric
// values in the order of Metrics. The runner knows engines only through this
// interface, and engines know nothing of study files, Parquet or the CLI.
package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Kind is the type of a parameter or metric value.
type Kind uint8

// Value kinds. Unset marks a parameter the user did not give; Resolve replaces
// it with a default or a derived value.
const (
	Unset Kind = iota
	Int
	Float
	String
	Bool
)

// String returns the kind's name as used in study files and help texts.
func (k Kind) String() string {
	switch k {
	case Int:
		return "int"
	case Float:
		return "float"
	case String:
		return "string"
	case Bool:
		return "bool"
	}
	return "unset"
}

// Value is one parameter or metric value. Only the field matching Kind is
// meaningful; a Bool is stored in I as 0 or 1.
type Value struct {
	Kind Kind
	I    int64
	F    float64
	S    string
}

// IntV returns an Int value.
func IntV(i int64) Value { return Value{Kind: Int, I: i} }

// FloatV returns a Float value.
func FloatV(f float64) Value { return Value{Kind: Float, F: f} }

// StringV returns a String value.
func StringV(s string) Value { return Value{Kind: String, S: s} }

// BoolV returns a Bool value.
func BoolV(b bool) Value {
	if b {
		return Value{Kind: Bool, I: 1}
	}
	return Value{Kind: Bool}
}

// Identical reports whether v and o are the same value, bit for bit: NaN is
// identical to the same NaN, -0 is not 0 (== on Values treats floats by
// value).
func (v Value) Identical(o Value) bool {
	return v.Kind == o.Kind && v.I == o.I && math.Float64bits(v.F) == math.Float64bits(o.F) && v.S == o.S
}

// IsSet reports whether the value was given.
func (v Value) IsSet() bool { return v.Kind != Unset }

// Bool returns a Bool value's truth.
func (v Value) Bool() bool { return v.I != 0 }

// String formats the value as it would be written in a study file
// (strings unquoted).
func (v Value) String() string {
	switch v.Kind {
	case Int:
		return strconv.FormatInt(v.I, 10)
	case Float:
		return strconv.FormatFloat(v.F, 'g', -1, 64)
	case String:
		return v.S
	case Bool:
		return strconv.FormatBool(v.I != 0)
	}
	return ""
}

// Param describes one input parameter of an engine.
type Param struct {
	Name    string   // canonical snake_case name
	Kind    Kind     // value kind
	Unit    string   // unit, empty if dimensionless
	Doc     string   // one-line description, including what "unset" means
	Default Value    // default when unset; Unset if derived from other parameters
	Enum    []string // allowed values of a String parameter; empty = any
	File    bool     // the value is a path, relative to the study file
}

// Field describes one metric of an engine.
type Field struct {
	Name string // canonical snake_case name
	Kind Kind   // Int, Float, String or Bool
	Unit string // unit, empty if dimensionless
	Doc  string // one-line description with the formula's meaning
}

// ErrStopped marks an evaluation that was stopped from outside (an external
// program killed by SIGTERM, SIGINT or SIGHUP): not a result of the point.
// The runner records no row for it, so the point runs again on resume.
var ErrStopped = errors.New("stopped from outside; the point is not recorded and runs again on resume")

// Engine evaluates design points.
//
// Implementations must be safe for concurrent use by many goroutines: the
// runner calls Evaluate from a bounded pool.
type Engine interface {
	// Name identifies the engine in study files and datasets.
	Name() string
	// Version is the engine's model version. It changes whenever the same
	// parameters would give different metrics, so datasets never mix results
	// of two models silently.
	Version() string
	// Params lists the accepted parameters; a point is a vector in this order.
	Params() []Param
	// Metrics lists the metrics; Evaluate fills a vector in this order.
	Metrics() []Field
	// Resolve completes and validates a point in place: it applies presets,
	// fills defaults and derived values, and loads referenced files (paths
	// relative to dir). After Resolve every parameter is set. It may do I/O
	// (cached per file); Evaluate does none.
	Resolve(dir string, p []Value) error
	// Evaluate computes the metrics of a resolved point into out, which has
	// len(Metrics()) entries.
	Evaluate(ctx context.Context, p []Value, out []Value) error
}

// ParamError is an invalid parameter value. Study loaders map Name back to the
// position of the key that set it.
type ParamError struct {
	Name  string // canonical parameter name
	Value string // the offending value, formatted
	Msg   string // what is wrong
}

func (e *ParamError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("%s: %s", e.Name, e.Msg)
	}
	return fmt.Sprintf("%s = %s: %s", e.Name, e.Value, e.Msg)
}

// FileError is a malformed input file, with the line where it went wrong
// (0 when the whole file is at fault).
type FileError struct {
	Path string
	Line int
	Msg  string
	Err  error
}

func (e *FileError) Error() string {
	s := e.Path
	if e.Line > 0 {
		s += ":" + strconv.Itoa(e.Line)
	}
	s += ": " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *FileError) Unwrap() error { return e.Err }

// ParamIndex returns the position of the parameter called name, or -1.
func ParamIndex(list []Param, name string) int {
	for i := range list {
		if list[i].Name == name {
			return i
		}
	}
	return -1
}

// FieldIndex returns the position of the metric called name, or -1.
func FieldIndex(list []Field, name string) int {
	for i := range list {
		if list[i].Name == name {
			return i
		}
	}
	return -1
}

// ParseValue parses text as a value of kind k (used for --set name=value).
func ParseValue(k Kind, text string) (Value, error) {
	switch k {
	case Int:
		i, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			// accept 1e3-style and 512.0 if integral
			f, ferr := strconv.ParseFloat(text, 64)
			if ferr != nil || f != float64(int64(f)) {
				return Value{}, fmt.Errorf("%q is not an integer", text)
			}
			i = int64(f)
		}
		return IntV(i), nil
	case Float:
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return Value{}, fmt.Errorf("%q is not a number", text)
		}
		return FloatV(f), nil
	case Bool:
		b, err := strconv.ParseBool(text)
		if err != nil {
			return Value{}, fmt.Errorf("%q is not true or false", text)
		}
		return BoolV(b), nil
	case String:
		return StringV(text), nil
	}
	return Value{}, fmt.Errorf("unknown kind %v", k)
}

// Costly is implemented by engines whose points take long to evaluate (an
// external simulator: seconds to hours). The runner then hands out one point
// at a time, so the last points spread over all workers; for fast engines it
// batches thousands of points per task.
type Costly interface {
	Costly() bool
}

// Preparer is implemented by engines that resolve the points of one study
// faster than Resolve does point by point. A study's points give the same
// values everywhere but in the parameters its axes vary: Prepare takes
// those fixed values (base, Unset where not given) and the indices of the
// varying parameters, and returns a function that resolves such a point in
// place, exactly as Resolve(dir, p) would, error for error. The function
// reads only p's values at vary (the base values are its own) and writes
// all of p. ok is false when the engine has no faster way for this study;
// callers then use Resolve.
type Preparer interface {
	Prepare(dir string, base []Value, vary []int) (resolve func(p []Value) error, ok bool)
}

// Ignorer is implemented by engines that know when a parameter's value has
// no effect on a resolved point's metrics (the embedded engine's
// routing_skew under uniform routing). A study that varies such a
// parameter gets points that repeat each other's results; one that sets
// it where no point uses it has a mistake. Points keep the values they
// were given all the same (resolution never maps two inputs to one point).
type Ignorer interface {
	// Ignoring takes a study as Preparer.Prepare does (its fixed values
	// base, Unset where not given, and the indices vary of the parameters
	// its axes vary) and returns a function that appends to dst the
	// parameters the study gives (set in base or varied) whose values have
	// no effect on the metrics of the resolved point p, with the reason,
	// at most once each; nil when no given parameter can be without
	// effect. The function is called for every point of a study: it is
	// cheap, allocates nothing but dst's growth, and is safe for
	// concurrent use.
	Ignoring(base []Value, vary []int) func(p []Value, dst []Ignored) []Ignored
}

// Ignored is a parameter that has no effect on a point.
type Ignored struct {
	Param int    // its index in Params
	Why   string // the rule, naming the parameter: `routing_skew applies only to routing = "zipf"`
	By    int    // the parameter whose value at the point makes it so, or -1
}
