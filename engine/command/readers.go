package command

import (
	"bytes"
	"encoding/json"
	"fmt"
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
func lastObject(b []byte) (map[string]any, bool) {
	var last map[string]any
	found := false
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '{')
		if j < 0 {
			break
		}
		i += j
		dec := json.NewDecoder(bytes.NewReader(b[i:]))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err == nil {
			last, found = m, true
			i += int(dec.InputOffset())
		} else {
			i++
		}
	}
	return last, found
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
		v, err := engine.ParseValue(m.field.Kind, strings.TrimSpace(text))
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
