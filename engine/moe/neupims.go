package moe

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/sweep-dse/sweep/engine"
)

// This file reads NeuPIMs' input files: model, NPU and memory JSON configs
// and request traces, plus routing traces. Reading happens in Resolve, never
// in Evaluate; results are cached per path by the engine.

// jsonLine returns the 1-based line of byte offset off in data.
func jsonLine(data []byte, off int64) int {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	return bytes.Count(data[:off], []byte("\n")) + 1
}

// decodeJSON decodes a JSON object into a map, turning syntax and type errors
// into FileErrors with a line.
func decodeJSON(path string, data []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, &engine.FileError{Path: path, Line: jsonLine(data, se.Offset), Msg: "malformed JSON", Err: err}
		}
		return nil, &engine.FileError{Path: path, Msg: "not a JSON object", Err: err}
	}
	return m, nil
}

// fieldFinder returns the line of a key in data (best effort) for errors.
func fieldLine(data []byte, key string) int {
	i := bytes.Index(data, []byte(`"`+key+`"`))
	if i < 0 {
		return 0
	}
	return jsonLine(data, int64(i))
}

type jsonReader struct {
	path string
	data []byte
	m    map[string]json.RawMessage
	err  error
}

func (r *jsonReader) fail(key, msg string) {
	if r.err == nil {
		r.err = &engine.FileError{Path: r.path, Line: fieldLine(r.data, key), Msg: fmt.Sprintf("key %q: %s", key, msg)}
	}
}

// num reads a numeric key; ok is false when the key is absent.
func (r *jsonReader) num(key string) (float64, bool) {
	raw, ok := r.m[key]
	if !ok {
		return 0, false
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		r.fail(key, "want a number, got "+string(raw))
		return 0, false
	}
	return f, true
}

func (r *jsonReader) integer(key string) (int64, bool) {
	f, ok := r.num(key)
	if !ok {
		return 0, false
	}
	if f != float64(int64(f)) {
		r.fail(key, "want an integer, got "+strconv.FormatFloat(f, 'g', -1, 64))
		return 0, false
	}
	return int64(f), true
}

func (r *jsonReader) str(key string) (string, bool) {
	raw, ok := r.m[key]
	if !ok {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		r.fail(key, "want a string, got "+string(raw))
		return "", false
	}
	return s, true
}

func (r *jsonReader) boolean(key string) (bool, bool) {
	raw, ok := r.m[key]
	if !ok {
		return false, false
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		r.fail(key, "want true or false, got "+string(raw))
		return false, false
	}
	return b, true
}

func newJSONReader(path string) (*jsonReader, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &engine.FileError{Path: path, Msg: "cannot read", Err: err}
	}
	m, err := decodeJSON(path, data)
	if err != nil {
		return nil, err
	}
	return &jsonReader{path: path, data: data, m: m}, nil
}

// LoadModelConfig reads a model config JSON and returns the parameter values
// it sets. A file with a model_type key is a Hugging Face config.json (see
// HFModelTypes for the supported types); any other file is a NeuPIMs model
// config (model_n_embd, model_n_head, model_n_layer, model_vocab_size, n_tp,
// and the MoE fork's num_experts, experts_per_token, moe_ffn_scaling,
// expert_capacity_factor, expert_cache_size, expert_load_latency,
// moe_enable_double_buffering).
func LoadModelConfig(path string) (map[string]engine.Value, error) {
	r, err := newJSONReader(path)
	if err != nil {
		return nil, err
	}
	if _, ok := r.m["model_type"]; ok {
		return loadHFConfig(r)
	}
	if _, ok := r.m["model_n_embd"]; !ok {
		if _, hf := r.m["hidden_size"]; hf {
			return nil, &engine.FileError{Path: path, Msg: "looks like a Hugging Face config.json but has no model_type; supported model_type values: " + strings.Join(HFModelTypes(), ", ")}
		}
	}
	out := map[string]engine.Value{}
	var missing []string
	setInt := func(key, param string, required bool) {
		if v, ok := r.integer(key); ok {
			if v < 0 || (v == 0 && required) {
				r.fail(key, fmt.Sprintf("must be positive, got %d", v))
				return
			}
			out[param] = engine.IntV(v)
		} else if required && r.err == nil {
			missing = append(missing, key)
		}
	}
	setInt("model_n_embd", "d_model", true)
	setInt("model_n_head", "n_heads", true)
	setInt("model_n_layer", "n_layers", false)
	setInt("model_vocab_size", "vocab_size", false)
	setInt("n_tp", "tp", false)
	moe := true
	if b, ok := r.boolean("moe_enabled"); ok {
		moe = b
	}
	if moe {
		setInt("num_experts", "num_experts", false)
		setInt("experts_per_token", "top_k", false)
		setInt("expert_cache_size", "resident_experts", false)
		setInt("expert_load_latency", "link_latency_cycles", false)
		if s, ok := r.str("moe_ffn_scaling"); ok {
			if !contains(scalingModes, s) {
				r.fail("moe_ffn_scaling", fmt.Sprintf("%q is not one of %s", s, strings.Join(scalingModes, ", ")))
			}
			out["moe_ffn_scaling"] = engine.StringV(s)
		}
		if f, ok := r.num("expert_capacity_factor"); ok {
			out["capacity_factor"] = engine.FloatV(f)
		}
		if b, ok := r.boolean("moe_enable_double_buffering"); ok {
			out["overlap_loads"] = engine.BoolV(b)
		}
	} else if _, ok := r.m["num_experts"]; ok {
		out["num_experts"] = engine.IntV(0)
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(missing) > 0 {
		return nil, &engine.FileError{Path: path, Msg: "missing keys " + strings.Join(missing, ", ")}
	}
	return out, nil
}

// LoadNPUConfig reads a NeuPIMs NPU JSON (core_freq MHz, core_height,
// core_width, systolic_array_count, sram_size KB, vector_core_count,
// vector_core_width).
func LoadNPUConfig(path string) (map[string]engine.Value, error) {
	r, err := newJSONReader(path)
	if err != nil {
		return nil, err
	}
	out := map[string]engine.Value{}
	if f, ok := r.num("core_freq"); ok {
		if f <= 0 {
			r.fail("core_freq", "must be positive")
		}
		out["clock_mhz"] = engine.FloatV(f)
	}
	for _, kv := range [][2]string{{"core_height", "array_height"}, {"core_width", "array_width"},
		{"systolic_array_count", "arrays"}, {"sram_size", "sram_kb"},
		{"vector_core_count", "vector_units"}, {"vector_core_width", "vector_width"}} {
		if v, ok := r.integer(kv[0]); ok {
			if v <= 0 {
				r.fail(kv[0], fmt.Sprintf("must be positive, got %d", v))
			}
			out[kv[1]] = engine.IntV(v)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return out, nil
}

// LoadMemConfig reads a NeuPIMs memory JSON (dram_type, dram_channels,
// dram_req_size). One request of dram_req_size bytes takes two DRAM cycles
// (BL4 on a 128-bit bus), so a channel moves dram_req_size/2 B per cycle;
// dram_freq (MHz) is dram_mhz.
func LoadMemConfig(path string) (map[string]engine.Value, error) {
	r, err := newJSONReader(path)
	if err != nil {
		return nil, err
	}
	out := map[string]engine.Value{}
	if s, ok := r.str("dram_type"); ok {
		switch s {
		case "neupims", "newton":
			out["pim"] = engine.BoolV(true)
		case "dram":
			out["pim"] = engine.BoolV(false)
		default:
			r.fail("dram_type", fmt.Sprintf("%q is not one of neupims, newton, dram", s))
		}
	}
	if v, ok := r.integer("dram_channels"); ok {
		if v <= 0 {
			r.fail("dram_channels", "must be positive")
		}
		out["hbm_channels"] = engine.IntV(v)
	}
	if v, ok := r.integer("dram_req_size"); ok {
		if v <= 0 {
			r.fail("dram_req_size", "must be positive")
		}
		out["hbm_bytes_per_cycle"] = engine.FloatV(float64(v) / 2)
	}
	if f, ok := r.num("dram_freq"); ok {
		if !(f > 0) {
			r.fail("dram_freq", "must be positive")
		}
		out["dram_mhz"] = engine.FloatV(f)
	}
	if r.err != nil {
		return nil, r.err
	}
	return out, nil
}

// Request is one decode request of a trace: its KV-cache length and the PIM
// channel that holds its KV cache.
type Request struct {
	SeqLen  int32
	Channel int32
}

// LoadSeqTrace reads a NeuPIMs request trace CSV with header seq_len,ch_idx.
func LoadSeqTrace(path string) ([]Request, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &engine.FileError{Path: path, Msg: "cannot read", Err: err}
	}
	defer f.Close()
	cr := csv.NewReader(bufio.NewReader(f))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, &engine.FileError{Path: path, Line: 1, Msg: "missing header seq_len,ch_idx", Err: err}
	}
	if len(head) < 2 || strings.TrimSpace(head[0]) != "seq_len" || strings.TrimSpace(head[1]) != "ch_idx" {
		return nil, &engine.FileError{Path: path, Line: 1, Msg: fmt.Sprintf("header is %q, want seq_len,ch_idx", strings.Join(head, ","))}
	}
	var reqs []Request
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, &engine.FileError{Path: path, Line: csvErrLine(err), Msg: "malformed CSV", Err: err}
		}
		line, _ := cr.FieldPos(0)
		if len(rec) < 2 {
			return nil, &engine.FileError{Path: path, Line: line, Msg: fmt.Sprintf("want 2 fields seq_len,ch_idx, got %d", len(rec))}
		}
		s, err1 := strconv.ParseInt(strings.TrimSpace(rec[0]), 10, 32)
		c, err2 := strconv.ParseInt(strings.TrimSpace(rec[1]), 10, 32)
		switch {
		case err1 != nil || s < 1:
			return nil, &engine.FileError{Path: path, Line: line, Msg: fmt.Sprintf("seq_len %q is not a positive integer", rec[0])}
		case err2 != nil || c < 0:
			return nil, &engine.FileError{Path: path, Line: line, Msg: fmt.Sprintf("ch_idx %q is not a non-negative integer", rec[1])}
		}
		reqs = append(reqs, Request{SeqLen: int32(s), Channel: int32(c)})
	}
	if len(reqs) == 0 {
		return nil, &engine.FileError{Path: path, Msg: "no requests"}
	}
	return reqs, nil
}

// csvErrLine is the line of a CSV parse error (0 if unknown).
func csvErrLine(err error) int {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe.Line
	}
	return 0
}

// maxTraceK is how many top experts per token a routing trace keeps.
const maxTraceK = 16

// RoutingTrace holds, per layer and token of a routing trace, its
// experts ranked by probability (highest first, ties by lower index).
type RoutingTrace struct {
	Experts int
	Layers  [][][maxTraceK]uint16 // per layer of the trace (in order of first appearance), per token
	K       int                   // how many ranks are valid per token

	mu       sync.Mutex
	resident map[[4]int64][]bool // popular's answers
}

// LoadRoutingTrace reads a routing trace CSV: header
// layer_id,token_id,expert_0..expert_{E-1}, one row per (layer, token) with
// routing probabilities. A layer's rows keep their order in the file; the
// layers are numbered by first appearance.
func LoadRoutingTrace(path string) (*RoutingTrace, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &engine.FileError{Path: path, Msg: "cannot read", Err: err}
	}
	defer f.Close()
	cr := csv.NewReader(bufio.NewReader(f))
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, &engine.FileError{Path: path, Line: 1, Msg: "missing header layer_id,token_id,expert_0,...", Err: err}
	}
	if len(head) < 3 || head[0] != "layer_id" || head[1] != "token_id" {
		return nil, &engine.FileError{Path: path, Line: 1, Msg: "header must start layer_id,token_id,expert_0"}
	}
	e := len(head) - 2
	if e > 65535 {
		return nil, &engine.FileError{Path: path, Line: 1, Msg: "too many experts"}
	}
	rt := &RoutingTrace{Experts: e, K: min(e, maxTraceK)}
	probs := make([]float64, e)
	layerOf := map[string]int{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, &engine.FileError{Path: path, Line: csvErrLine(err), Msg: "malformed CSV", Err: err}
		}
		line, _ := cr.FieldPos(0)
		l, ok := layerOf[rec[0]]
		if !ok {
			l = len(rt.Layers)
			layerOf[rec[0]] = l
			rt.Layers = append(rt.Layers, nil)
		}
		for i := range e {
			p, err := strconv.ParseFloat(rec[i+2], 64)
			if err != nil || p < 0 || p != p {
				return nil, &engine.FileError{Path: path, Line: line, Msg: fmt.Sprintf("%s = %q is not a probability", head[i+2], rec[i+2])}
			}
			probs[i] = p
		}
		var ranked [maxTraceK]uint16
		rankTop(probs, ranked[:rt.K])
		rt.Layers[l] = append(rt.Layers[l], ranked)
	}
	if len(rt.Layers) == 0 {
		return nil, &engine.FileError{Path: path, Msg: "no token rows"}
	}
	return rt, nil
}

// rankTop writes the indices of the len(dst) largest values of p, largest
// first (ties: lower index first).
func rankTop(p []float64, dst []uint16) {
	for r := range dst {
		best := -1
		for i, v := range p {
			taken := false
			for _, d := range dst[:r] {
				if int(d) == i {
					taken = true
					break
				}
			}
			if !taken && (best < 0 || v > p[best]) {
				best = i
			}
		}
		dst[r] = uint16(best)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
