package command

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"

	"github.com/sweep-dse/sweep/engine"
)

// reader turns what a finished program left behind into metrics.
type reader interface {
	// fields lists the metrics, in the order read fills them.
	fields() []engine.Field
	// stdoutCap is how many bytes of stdout (the last ones) read needs.
	stdoutCap() int
	// prepare readies the work folder before the program starts.
	prepare(inv *Invocation) error
	// read fills out (len(fields())) from the program's outputs.
	read(res *result, out []engine.Value) error
}

// maxOutput bounds how much of stdout the json and regex readers read: the
// last maxOutput bytes (a running point holds at most twice that).
const maxOutput = 16 << 20

func specFields(ms []metricSpec) []engine.Field {
	out := make([]engine.Field, len(ms))
	for i, m := range ms {
		out[i] = m.field
	}
	return out
}

// jsonReader reads the last JSON object printed on stdout. Each declared
// metric is the value at its key (a dotted path, default its name).
type jsonReader struct {
	metrics []metricSpec
}

func (r *jsonReader) fields() []engine.Field    { return specFields(r.metrics) }
func (r *jsonReader) prepare(*Invocation) error { return nil }
func (r *jsonReader) stdoutCap() int            { return maxOutput }

func (r *jsonReader) read(res *result, out []engine.Value) error {
	data := res.stdout
	obj, ok := lastObject(data)
	if !ok {
		return fmt.Errorf("no JSON object on stdout (%d bytes, starting %q)", len(data), excerpt(data))
	}
	for i, m := range r.metrics {
		var v any = obj
		for _, k := range m.key {
			o, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = o[k]
		}
		if v == nil {
			if m.optional {
				out[i] = engine.Value{}
				continue
			}
			return fmt.Errorf("the last JSON object on stdout has no %s", strings.Join(m.key, "."))
		}
		val, err := jsonValue(m.field.Kind, v)
		if err != nil {
			return fmt.Errorf("metric %s (%s): %v", m.field.Name, strings.Join(m.key, "."), err)
		}
		out[i] = val
	}
	return nil
}

// lastObject finds the last top-level JSON object in b, skipping any other
// text around it.
//
// An object that does not decode is skipped whole (to its matching brace),
// so an object nested in it is never taken for the program's answer. The
// bare NaN, Infinity and -Infinity that Python's json module writes are
// read as those numbers.
func lastObject(b []byte) (map[string]any, bool) {
	var last map[string]any
	found := false
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '{')
		if j < 0 {
			break
		}
		i += j
		// an object starts with a key or closes at once; other braces
		// ("{not json") are text
		k := i + 1
		for k < len(b) && (b[k] == ' ' || b[k] == '\t' || b[k] == '\n' || b[k] == '\r') {
			k++
		}
		if k >= len(b) || (b[k] != '"' && b[k] != '}') {
			i++
			continue
		}
		end := matchBrace(b, i)
		dec := json.NewDecoder(bytes.NewReader(pythonNumbers(b[i:end])))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err == nil {
			last, found = m, true
		}
		i = end
	}
	return last, found
}

// jsonStrings follows JSON text byte by byte to tell which bytes are inside
// a string (escapes taken into account).
type jsonStrings struct{ in, esc bool }

// step takes the next byte and reports whether it belongs to a string,
// its quotes included.
func (s *jsonStrings) step(c byte) bool {
	switch {
	case s.esc:
		s.esc = false
	case s.in:
		s.esc = c == '\\'
		s.in = c != '"'
	case c == '"':
		s.in = true
	default:
		return false
	}
	return true
}

// matchBrace returns the index just past the brace that closes the one at
// b[i] (strings and their escapes taken into account), or len(b).
func matchBrace(b []byte, i int) int {
	depth := 0
	var str jsonStrings
	for k := i; k < len(b); k++ {
		switch c := b[k]; {
		case str.step(c):
		case c == '{':
			depth++
		case c == '}':
			depth--
			if depth == 0 {
				return k + 1
			}
		}
	}
	return len(b)
}

// pythonNumbers rewrites the bare NaN, Infinity and -Infinity tokens of b
// (outside strings) as JSON strings, which jsonValue reads as floats.
func pythonNumbers(b []byte) []byte {
	if !bytes.Contains(b, []byte("NaN")) && !bytes.Contains(b, []byte("Infinity")) {
		return b
	}
	var out []byte
	var str jsonStrings
	for k := 0; k < len(b); k++ {
		c := b[k]
		if str.step(c) {
			out = append(out, c)
			continue
		}
		replaced := false
		for _, tok := range []string{"-Infinity", "Infinity", "NaN"} {
			if bytes.HasPrefix(b[k:], []byte(tok)) {
				out = append(out, '"')
				out = append(out, tok...)
				out = append(out, '"')
				k += len(tok) - 1
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, c)
		}
	}
	return out
}

// jsonValue converts a decoded JSON value to a metric of kind k.
func jsonValue(k engine.Kind, v any) (engine.Value, error) {
	switch k {
	case engine.Int:
		if n, ok := v.(json.Number); ok {
			if i, err := n.Int64(); err == nil {
				return engine.IntV(i), nil
			}
			if f, err := n.Float64(); err == nil && f == float64(int64(f)) {
				return engine.IntV(int64(f)), nil
			}
			return engine.Value{}, fmt.Errorf("want an integer, got %s", n)
		}
	case engine.Float:
		if n, ok := v.(json.Number); ok {
			f, err := n.Float64()
			if err != nil {
				return engine.Value{}, fmt.Errorf("want a number, got %s", n)
			}
			return engine.FloatV(f), nil
		}
		switch v {
		case "NaN":
			return engine.FloatV(math.NaN()), nil
		case "Infinity":
			return engine.FloatV(math.Inf(1)), nil
		case "-Infinity":
			return engine.FloatV(math.Inf(-1)), nil
		}
	case engine.String:
		if s, ok := v.(string); ok {
			return engine.StringV(s), nil
		}
	case engine.Bool:
		if b, ok := v.(bool); ok {
			return engine.BoolV(b), nil
		}
	}
	return engine.Value{}, fmt.Errorf("want %s, got %s", k, jsonType(v))
}

func jsonType(v any) string {
	switch x := v.(type) {
	case json.Number:
		return "the number " + x.String()
	case string:
		return fmt.Sprintf("the string %q", x)
	case bool:
		return fmt.Sprintf("the boolean %v", x)
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%T", v)
}

// regexReader applies named-group patterns to stdout. A metric is the text
// of the last match of its group, parsed as the metric's kind.
type regexReader struct {
	metrics []metricSpec
	res     []*regexp.Regexp
}

func (r *regexReader) fields() []engine.Field    { return specFields(r.metrics) }
func (r *regexReader) prepare(*Invocation) error { return nil }
func (r *regexReader) stdoutCap() int            { return maxOutput }

func (r *regexReader) read(res *result, out []engine.Value) error {
	data := res.stdout
	found := map[string]string{}
	for _, re := range r.res {
		names := re.SubexpNames()
		for _, m := range re.FindAllSubmatchIndex(data, -1) {
			for g, name := range names {
				if name != "" && m[2*g] >= 0 {
					found[name] = string(data[m[2*g]:m[2*g+1]])
				}
			}
		}
	}
	for i, m := range r.metrics {
		text, ok := found[m.field.Name]
		if !ok {
			if m.optional {
				out[i] = engine.Value{}
				continue
			}
			return fmt.Errorf("no match for metric %s on stdout (%d bytes, starting %q)", m.field.Name, len(data), excerpt(data))
		}
		// Parquet strings are UTF-8: a program's other bytes become U+FFFD
		v, err := engine.ParseValue(m.field.Kind, strings.ToValidUTF8(strings.TrimSpace(text), "\uFFFD"))
		if err != nil {
			return fmt.Errorf("metric %s: %v", m.field.Name, err)
		}
		out[i] = v
	}
	return nil
}

// excerpt is the start of an output, for error messages.
func excerpt(b []byte) string {
	const n = 80
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
