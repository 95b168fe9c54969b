// Package neupimsio is the NeuPIMs-compatible front end of the embedded
// simulator: it reads NeuPIMs' own input files (NPU, memory, model and
// system JSON, the DRAMsim3-style .ini the memory config names, and a
// request trace), runs one decode iteration of one layer through the cycle
// mechanisms of package moe (hbm.go) stage by stage as NeuPIMs schedules it,
// and writes NeuPIMs' output files: _summary.tsv and the per-stage
// SA_stage_<X>.tsv / PIM_stage_<X>.tsv.
package neupimsio

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sweep-dse/sweep/engine"
	"github.com/sweep-dse/sweep/engine/moe"
)

// Files names NeuPIMs' input files, as its flags do.
type Files struct {
	Config      string // --config: NPU JSON
	MemConfig   string // --mem_config: memory JSON (names the .ini in pim_config_path)
	CliConfig   string // --cli_config: request trace CSV (seq_len,ch_idx)
	ModelConfig string // --model_config: model JSON
	SysConfig   string // --sys_config: system JSON
}

// Run is a loaded NeuPIMs configuration.
type Run struct {
	ModelName string
	DModel    int64 // model_n_embd
	Heads     int64 // model_n_head
	TP        int64 // n_tp
	Dtype     int64 // precision [B]
	ClockMHz  float64
	Array     moe.Systolic
	HBM       moe.HBM
	SubBatch  bool
	Requests  []moe.Request
}

type jsonFile struct {
	path string
	data []byte
	m    map[string]json.RawMessage
}

func readJSON(path string) (*jsonFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &engine.FileError{Path: path, Msg: "cannot read", Err: err}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line := bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n")) + 1
			return nil, &engine.FileError{Path: path, Line: line, Msg: "malformed JSON", Err: err}
		}
		return nil, &engine.FileError{Path: path, Msg: "not a JSON object", Err: err}
	}
	return &jsonFile{path: path, data: data, m: m}, nil
}

func (f *jsonFile) line(key string) int {
	i := bytes.Index(f.data, []byte(`"`+key+`"`))
	if i < 0 {
		return 0
	}
	return bytes.Count(f.data[:i], []byte("\n")) + 1
}

func (f *jsonFile) fail(key, msg string) error {
	return &engine.FileError{Path: f.path, Line: f.line(key), Msg: fmt.Sprintf("key %q: %s", key, msg)}
}

// num reads a number; def is used when the key is absent and def >= 0,
// else the key is required.
func (f *jsonFile) num(key string, def float64) (float64, error) {
	raw, ok := f.m[key]
	if !ok {
		if def >= 0 {
			return def, nil
		}
		return 0, &engine.FileError{Path: f.path, Msg: fmt.Sprintf("missing key %q", key)}
	}
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, f.fail(key, "want a number, got "+string(raw))
	}
	return v, nil
}

// posInt reads a positive integer (see num for def).
func (f *jsonFile) posInt(key string, def int64) (int64, error) {
	v, err := f.num(key, float64(def))
	if err != nil {
		return 0, err
	}
	if v != float64(int64(v)) || v <= 0 {
		return 0, f.fail(key, "want a positive integer, got "+strconv.FormatFloat(v, 'g', -1, 64))
	}
	return int64(v), nil
}

func (f *jsonFile) str(key, def string) (string, error) {
	raw, ok := f.m[key]
	if !ok {
		if def != "" {
			return def, nil
		}
		return "", &engine.FileError{Path: f.path, Msg: fmt.Sprintf("missing key %q", key)}
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", f.fail(key, "want a string, got "+string(raw))
	}
	return s, nil
}

// boolOr reads a boolean, def when the key is absent.
func (f *jsonFile) boolOr(key string, def bool) (bool, error) {
	if _, ok := f.m[key]; !ok {
		return def, nil
	}
	return f.boolean(key)
}

func (f *jsonFile) boolean(key string) (bool, error) {
	raw, ok := f.m[key]
	if !ok {
		return false, &engine.FileError{Path: f.path, Msg: fmt.Sprintf("missing key %q", key)}
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		return false, f.fail(key, "want true or false, got "+string(raw))
	}
	return b, nil
}

// Load reads and checks every input file. Errors are *engine.FileError
// naming the file, the line where known, and the key.
func Load(fs Files) (*Run, error) {
	r := &Run{}
	npu, err := readJSON(fs.Config)
	if err != nil {
		return nil, err
	}
	if r.ClockMHz, err = npu.num("core_freq", -1); err != nil {
		return nil, err
	}
	if r.ClockMHz <= 0 {
		return nil, npu.fail("core_freq", "must be positive")
	}
	if r.Array.H, err = npu.posInt("core_height", -1); err != nil {
		return nil, err
	}
	if r.Array.W, err = npu.posInt("core_width", -1); err != nil {
		return nil, err
	}
	if r.Dtype, err = npu.posInt("precision", 2); err != nil {
		return nil, err
	}
	// NeuPIMs issues GEMM tiles core_width/8 cycles apart ("fixed to
	// systolic array size 8" in its MatMul), whatever systolic_array_count.
	r.Array.Issue = max(1, r.Array.W/8)

	mem, err := readJSON(fs.MemConfig)
	if err != nil {
		return nil, err
	}
	kind, err := mem.str("dram_type", "")
	if err != nil {
		return nil, err
	}
	if kind != "neupims" && kind != "newton" {
		return nil, mem.fail("dram_type", fmt.Sprintf("%q: only the PIM memories neupims and newton run decode attention", kind))
	}
	h := moe.DefaultHBM()
	for _, kv := range []struct {
		key string
		dst *int64
	}{{"dram_channels", &h.Channels}, {"dram_req_size", &h.ReqBytes}, {"dram_page_size", &h.PageBytes},
		{"dram_banks_per_ch", &h.BanksPerCh}, {"pim_comp_coverage", &h.CompCoverage}} {
		if *kv.dst, err = mem.posInt(kv.key, -1); err != nil {
			return nil, err
		}
	}
	ini, err := mem.str("pim_config_path", "")
	if err != nil {
		return nil, err
	}
	if !filepath.IsAbs(ini) {
		ini = filepath.Join(filepath.Dir(fs.MemConfig), ini)
	}
	if err := loadIni(ini, &h); err != nil {
		return nil, err
	}
	// the .ini counts DRAM cycles of dram_freq (absent: core_freq, as in
	// NeuPIMs' shipped configs, where both are 1000)
	dramMHz, err := mem.num("dram_freq", r.ClockMHz)
	if err != nil {
		return nil, err
	}
	if !(dramMHz > 0) {
		return nil, mem.fail("dram_freq", "must be positive")
	}
	h.Scale = r.ClockMHz / dramMHz
	r.HBM = h

	model, err := readJSON(fs.ModelConfig)
	if err != nil {
		return nil, err
	}
	if r.ModelName, err = model.str("model_name", "model"); err != nil {
		return nil, err
	}
	if r.DModel, err = model.posInt("model_n_embd", -1); err != nil {
		return nil, err
	}
	if r.Heads, err = model.posInt("model_n_head", -1); err != nil {
		return nil, err
	}
	if r.TP, err = model.posInt("n_tp", -1); err != nil {
		return nil, err
	}
	// NeuPIMs' own model configs are dense; a MoE extension's fields would
	// be ignored here, silently giving the dense layer's cycles
	moeOn, err := model.boolOr("moe_enabled", false)
	if err != nil {
		return nil, err
	}
	nExperts, err := model.num("num_experts", 0)
	if err != nil {
		return nil, err
	}
	if moeOn {
		return nil, model.fail("moe_enabled", "true: sweep neupims models NeuPIMs' dense GPT-3 decoder and has no MoE layer; evaluate MoE points with the embedded engine (engine = \"moe\"), or run the MoE build of NeuPIMs")
	}
	if n := nExperts; n > 0 {
		return nil, model.fail("num_experts", fmt.Sprintf("%g: sweep neupims models NeuPIMs' dense GPT-3 decoder and has no MoE layer; evaluate MoE points with the embedded engine (engine = \"moe\"), or run the MoE build of NeuPIMs", n))
	}
	if r.DModel%r.Heads != 0 {
		return nil, model.fail("model_n_head", fmt.Sprintf("%d does not divide model_n_embd %d", r.Heads, r.DModel))
	}
	if r.Heads%r.TP != 0 {
		return nil, model.fail("n_tp", fmt.Sprintf("%d does not divide model_n_head %d", r.TP, r.Heads))
	}

	sys, err := readJSON(fs.SysConfig)
	if err != nil {
		return nil, err
	}
	if r.SubBatch, err = sys.boolean("sub_batch_mode"); err != nil {
		return nil, err
	}
	if mode, err := sys.str("run_mode", "npu+pim"); err != nil {
		return nil, err
	} else if mode != "npu+pim" {
		return nil, sys.fail("run_mode", fmt.Sprintf("%q: only npu+pim is modelled", mode))
	}

	reqs, err := moe.LoadSeqTrace(fs.CliConfig)
	if err != nil {
		return nil, err
	}
	for i, q := range reqs {
		if int64(q.Channel) >= h.Channels {
			return nil, &engine.FileError{Path: fs.CliConfig, Line: i + 2,
				Msg: fmt.Sprintf("ch_idx %d is not below dram_channels %d", q.Channel, h.Channels)}
		}
	}
	r.Requests = reqs
	return r, nil
}

// loadIni reads the DRAMsim3-style .ini: geometry (bankgroups,
// banks_per_group, rows, columns, device_width, BL, channel_size,
// bus_width), timing (CL, CWL, tRCDRD, tRP, tRFC, tREFI, tFAW, tCCD_S,
// tCCD_L, tWTR_S, tRTP) and the controller's trans_queue_size. Ranks follow
// DRAMsim3: channel_size MB over the MB of one rank =
// page·rows·banks·(bus_width/device_width).
func loadIni(path string, h *moe.HBM) error {
	f, err := os.Open(path)
	if err != nil {
		return &engine.FileError{Path: path, Msg: "cannot read the PIM .ini named by pim_config_path", Err: err}
	}
	defer f.Close()
	vals := map[string]int64{}
	lines := map[string]int{}
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		s := strings.TrimSpace(sc.Text())
		if i := strings.IndexAny(s, ";#"); i >= 0 {
			s = strings.TrimSpace(s[:i])
		}
		if s == "" || strings.HasPrefix(s, "[") {
			continue
		}
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return &engine.FileError{Path: path, Line: n, Msg: fmt.Sprintf("want key = value, got %q", s)}
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		lines[k] = n
		if x, err := strconv.ParseInt(v, 10, 64); err == nil {
			vals[k] = x
		} else if x, err := strconv.ParseFloat(v, 64); err == nil && x == float64(int64(x)) {
			vals[k] = int64(x)
		}
	}
	if err := sc.Err(); err != nil {
		return &engine.FileError{Path: path, Msg: "cannot read", Err: err}
	}
	get := func(key string, def int64) (int64, error) {
		v, ok := vals[key]
		if !ok {
			if _, present := lines[key]; present {
				return 0, &engine.FileError{Path: path, Line: lines[key], Msg: fmt.Sprintf("key %q: want an integer", key)}
			}
			if def < 0 {
				return 0, &engine.FileError{Path: path, Msg: fmt.Sprintf("missing key %q", key)}
			}
			return def, nil
		}
		if v < 0 {
			return 0, &engine.FileError{Path: path, Line: lines[key], Msg: fmt.Sprintf("key %q: must not be negative", key)}
		}
		return v, nil
	}
	type field struct {
		key string
		def int64
		dst *int64
	}
	var rows, cols, devWidth, chanMB, busWidth int64
	for _, fl := range []field{
		{"bankgroups", -1, &h.BankGroups}, {"banks_per_group", -1, &h.BanksPerGroup},
		{"rows", -1, &rows}, {"columns", -1, &cols}, {"device_width", -1, &devWidth}, {"BL", -1, &h.BL},
		{"channel_size", 1024, &chanMB}, {"bus_width", 64, &busWidth},
		{"CL", -1, &h.CL}, {"CWL", -1, &h.CWL}, {"tRCDRD", -1, &h.TRCDRD}, {"tRP", -1, &h.TRP},
		{"tRFC", -1, &h.TRFC}, {"tREFI", -1, &h.TREFI}, {"tFAW", -1, &h.TFAW},
		{"tCCD_S", -1, &h.TCCDS}, {"tCCD_L", -1, &h.TCCDL}, {"tWTR_S", -1, &h.TWTRS}, {"tRTP", 5, &h.TRTP},
		{"trans_queue_size", 32, &h.TransQueue},
	} {
		v, err := get(fl.key, fl.def)
		if err != nil {
			return err
		}
		*fl.dst = v
	}
	for _, k := range []string{"bankgroups", "banks_per_group", "rows", "columns", "device_width", "BL", "tREFI"} {
		if vals[k] == 0 {
			return &engine.FileError{Path: path, Line: lines[k], Msg: fmt.Sprintf("key %q: must be positive", k)}
		}
	}
	devices := max(1, busWidth/devWidth)
	page := cols * devWidth / 8
	mbBank := page * (rows / 1024) / 1024
	mbRank := mbBank * h.BankGroups * h.BanksPerGroup * devices
	h.Ranks = 1
	if mbRank > 0 && mbRank <= chanMB {
		h.Ranks = chanMB / mbRank
	}
	return nil
}
