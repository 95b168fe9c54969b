package command

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
	"sync"

	"github.com/sweep-dse/sweep/engine"
)

// The NeuPIMs preset (preset = "neupims").
//
// NeuPIMs is run from its repository root (it resolves its PIM .ini against
// its source tree) as
//
//	build/bin/Simulator --config C --mem_config M --cli_config T \
//	    --model_config <work>/model.json --sys_config S --log_dir <work>/log
//
// where model.json is rendered per point from the preset's parameters (the
// model-config fields of upstream NeuPIMs and of its MoE fork), and the
// other files are the study's (templates too, relative to the root). The
// reader is "neupims" and exit status 255 is accepted: NeuPIMs' client
// calls exit(-1) once every request completed.

// presetKeys are the [command] keys of the NeuPIMs preset.
var presetKeys = []string{"root", "config", "mem_config", "cli_config", "model_config", "sys_config", "log_level"}

// neupimsBinary is the program under the repository root.
const neupimsBinary = "build/bin/Simulator"

// Defaults of the preset's file keys, relative to the repository root: the
// files NeuPIMs' README runs.
var neupimsDefaults = map[string]string{
	"config":     "configs/systolic_ws_128x128_dev.json",
	"mem_config": "configs/memory_configs/neupims.json",
	"cli_config": "request-traces/clb/share-gpt2-bs512-ms7B-tp4-clb-0.csv",
	"sys_config": "configs/system_configs/sub-batch-off.json",
}

// neupimsModelFile is the rendered model config in the work folder.
const neupimsModelFile = "model.json"

// neupimsModelTemplate is NeuPIMs' model-config JSON with the MoE fork's
// fields; moe_enabled is num_experts > 0.
const neupimsModelTemplate = `{
    "model_name": {{json .model_name}},
    "model_params_b": {{.model_params_b}},
    "model_vocab_size": {{.vocab_size}},
    "model_n_layer": {{.n_layers}},
    "model_n_head": {{.n_heads}},
    "model_n_embd": {{.d_model}},
    "n_tp": {{.tp}},
    "n_pp": {{.pp}},
    "moe_enabled": {{gt .num_experts 0}},
    "num_experts": {{.num_experts}},
    "experts_per_token": {{.top_k}},
    "expert_capacity_factor": {{json .capacity_factor}},
    "expert_load_imbalance": {{.expert_load_imbalance}},
    "expert_load_skew": {{json .expert_load_skew}},
    "moe_ffn_scaling": {{json .moe_ffn_scaling}},
    "moe_offchip_experts": {{.moe_offchip_experts}},
    "expert_load_latency": {{.link_latency_cycles}},
    "expert_cache_size": {{.resident_experts}},
    "moe_enable_parallelism": {{.moe_enable_parallelism}},
    "moe_enable_double_buffering": {{.overlap_loads}},
    "moe_routing_trace_path": {{json (path .routing_trace)}}
}
`

// neupimsParams are the parameters of the rendered model config. Where a
// field means what an embedded-engine parameter means, it has that
// parameter's name, so one [axes] table drives both engines. Defaults: the
// GPT-3 7B config NeuPIMs ships (one layer, tp 4) with 64 experts, top-2,
// balanced scaling and the fork's MoE settings.
var neupimsParams = []engine.Param{
	{Name: "model_name", Kind: engine.String, Doc: "model_name", Default: engine.StringV("GPT3-7B")},
	{Name: "model_params_b", Kind: engine.Int, Unit: "G", Doc: "model_params_b (informative)", Default: engine.IntV(7)},
	{Name: "vocab_size", Kind: engine.Int, Doc: "model_vocab_size", Default: engine.IntV(50304)},
	{Name: "n_layers", Kind: engine.Int, Doc: "model_n_layer: layers simulated", Default: engine.IntV(1)},
	{Name: "n_heads", Kind: engine.Int, Doc: "model_n_head", Default: engine.IntV(32)},
	{Name: "d_model", Kind: engine.Int, Doc: "model_n_embd (d_ff = 4·d_model)", Default: engine.IntV(4096)},
	{Name: "tp", Kind: engine.Int, Doc: "n_tp: tensor-parallel degree", Default: engine.IntV(4)},
	{Name: "pp", Kind: engine.Int, Doc: "n_pp (not read by NeuPIMs)", Default: engine.IntV(1)},
	{Name: "num_experts", Kind: engine.Int, Doc: "num_experts; 0 = dense (moe_enabled false)", Default: engine.IntV(64)},
	{Name: "top_k", Kind: engine.Int, Doc: "experts_per_token", Default: engine.IntV(2)},
	{Name: "capacity_factor", Kind: engine.Float, Doc: "expert_capacity_factor", Default: engine.FloatV(1.25)},
	{Name: "expert_load_imbalance", Kind: engine.Bool, Doc: "expert_load_imbalance: skewed routing", Default: engine.BoolV(false)},
	{Name: "expert_load_skew", Kind: engine.Float, Doc: "expert_load_skew", Default: engine.FloatV(0.8)},
	{Name: "moe_ffn_scaling", Kind: engine.String, Doc: "moe_ffn_scaling: balanced d_ff/E, compute d_ff/sqrt(E), capacity d_ff", Default: engine.StringV("balanced"), Enum: []string{"balanced", "compute", "capacity"}},
	{Name: "moe_offchip_experts", Kind: engine.Bool, Doc: "moe_offchip_experts: experts loaded over the host link", Default: engine.BoolV(true)},
	{Name: "link_latency_cycles", Kind: engine.Int, Unit: "cycle", Doc: "expert_load_latency", Default: engine.IntV(5000)},
	{Name: "resident_experts", Kind: engine.Int, Doc: "expert_cache_size", Default: engine.IntV(8)},
	{Name: "moe_enable_parallelism", Kind: engine.Bool, Doc: "moe_enable_parallelism", Default: engine.BoolV(true)},
	{Name: "overlap_loads", Kind: engine.Bool, Doc: "moe_enable_double_buffering", Default: engine.BoolV(false)},
	{Name: "routing_trace", Kind: engine.String, Doc: "moe_routing_trace_path (relative to the study file); \"\" = none", Default: engine.StringV("")},
}

type presetArg struct {
	key  []string
	text string
}

type presetFile struct {
	dest, text string
}

// neupimsPreset is a parsed preset = "neupims".
type neupimsPreset struct {
	vals         map[string]string // preset key -> value template
	builtinModel bool
	versionFiles []string
}

func (p *neupimsPreset) parse(c *config, ct map[string]any) error {
	at := func(k string) []string { return []string{"command", k} }
	v, ok := ct["root"]
	if !ok {
		return keyErr([]string{"command"}, "preset = \"neupims\" needs root = \"path/to/NeuPIMs\": the repository NeuPIMs runs from")
	}
	root, ok := v.(string)
	if !ok || root == "" {
		return keyErr(at("root"), "want the NeuPIMs repository folder, got %v", v)
	}
	if !filepath.IsAbs(root) {
		root = filepath.Join(c.dir, root)
	}
	if st, err := os.Stat(root); !c.readOnly && (err != nil || !st.IsDir()) {
		return keyErr(at("root"), "%s is not a folder", root)
	}
	if _, ok := ct["workdir"]; ok {
		return keyErr(at("workdir"), "the neupims preset runs from root")
	}
	c.root, c.workdir = root, root
	p.vals = map[string]string{}
	for _, k := range []string{"config", "mem_config", "cli_config", "model_config", "sys_config", "log_level"} {
		s, given := neupimsDefaults[k], false
		if v, ok := ct[k]; ok {
			str, ok := v.(string)
			if !ok || str == "" {
				return keyErr(at(k), "want a non-empty string, got %v", v)
			}
			s, given = str, true
		}
		if s == "" {
			continue
		}
		p.vals[k] = s
		if k == "log_level" || strings.Contains(s, "{{") {
			continue
		}
		// a fixed file: check it now, and let its content version the results
		path := s
		if !filepath.IsAbs(path) {
			path = filepath.Join(root, s)
		}
		if _, err := os.Stat(path); err != nil && !c.readOnly {
			what := "the default"
			if given {
				what = "this"
			}
			return keyErr(at(k), "%s file %s does not exist (paths are relative to root, where NeuPIMs runs)", what, path)
		}
		p.versionFiles = append(p.versionFiles, path)
	}
	if _, ok := p.vals["model_config"]; !ok {
		p.builtinModel = true
		p.vals["model_config"] = "{{.work}}/" + neupimsModelFile
		c.params = append(c.params, neupimsParams...)
	}
	return nil
}

func (p *neupimsPreset) args() []presetArg {
	var out []presetArg
	for _, k := range []string{"config", "mem_config", "cli_config", "model_config", "sys_config"} {
		out = append(out, presetArg{[]string{"command", k}, "--" + k}, presetArg{[]string{"command", k}, p.vals[k]})
	}
	out = append(out, presetArg{[]string{"command"}, "--log_dir"}, presetArg{[]string{"command"}, "{{.work}}/log"})
	if l, ok := p.vals["log_level"]; ok {
		out = append(out, presetArg{[]string{"command", "log_level"}, "--log_level"}, presetArg{[]string{"command", "log_level"}, l})
	}
	return out
}

func (p *neupimsPreset) files() []presetFile {
	if !p.builtinModel {
		return nil
	}
	return []presetFile{{neupimsModelFile, neupimsModelTemplate}}
}

// flagValue returns the value of --name in an argument vector, given as
// "--name value" or "--name=value".
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// checkNeupimsArgs checks that the argument templates give the flags the
// neupims reader needs.
func checkNeupimsArgs(args []*tmpl) error {
	srcs := make([]string, len(args))
	for i, t := range args {
		srcs[i] = t.src
	}
	for _, f := range []string{"--log_dir", "--config", "--cli_config"} {
		if _, ok := flagValue(srcs, f); !ok {
			return fmt.Errorf("the neupims reader needs %s among the arguments (--log_dir for the output files, --config for the core clock, --cli_config for the request count)", f)
		}
	}
	if v, _ := flagValue(srcs, "--log_dir"); !strings.Contains(v, ".work") {
		return fmt.Errorf("--log_dir %q must be inside the point's work folder, e.g. \"{{.work}}/log\", or points would overwrite each other's outputs", v)
	}
	return nil
}

// Stages NeuPIMs reports: A, B, E with sub-batch off; A to F with it on.
const stageLetters = "ABCDEF"

// complete stage sets of a NeuPIMs iteration.
var completeStages = []string{"ABE", "ABCDEF"}

// neupimsReader reads NeuPIMs' outputs in --log_dir.
//
// Metrics: cycles_total = Σ total_cycles over the stages of _summary.tsv
// (core cycles); pim_cycles = Σ pim_cycles; mem_bw_util = the stages'
// mem_bw_util weighted by their cycles (%); latency_s = cycles_total /
// (core_freq·1e6), core_freq in MHz from --config; tokens_per_s = requests /
// latency_s, requests = rows of the --cli_config trace (each request decodes
// one token per iteration). When _summary.tsv is missing (NeuPIMs exited
// before writing it) the per-stage SA_stage_<X>.tsv / PIM_stage_<X>.tsv files
// give each stage's end (the latest EndCycle of its ops); stage X lasts
// end(X) − end(previous stage), which is a few cycles short of the summary's
// figure; pim_cycles and mem_bw_util are then null. A run whose stages are
// not A,B,E or A–F is incomplete: a failure.
type neupimsReader struct {
	clocks   sync.Map // path -> float64 MHz
	requests sync.Map // path -> int64
}

// Positions of the neupims reader's metrics.
const (
	nmCycles = iota
	nmPIM
	nmBW
	nmLatency
	nmTokens
	nmRequests
	nmClock
	nmStages
	nmSource
	nmExit
	nmStageCycles // + 6 stages
	nmStagePIM    = nmStageCycles + 6
	nmStageBW     = nmStagePIM + 6
	nmCount       = nmStageBW + 6
)

func (r *neupimsReader) fields() []engine.Field {
	f := make([]engine.Field, nmCount)
	f[nmCycles] = engine.Field{Name: "cycles_total", Kind: engine.Int, Unit: "cycle", Doc: "Σ total_cycles over the stages (core cycles of one decode iteration)"}
	f[nmPIM] = engine.Field{Name: "pim_cycles", Kind: engine.Int, Unit: "cycle", Doc: "Σ pim_cycles over the stages (mean over channels of cycles with PIM commands queued); null when read from the stage files"}
	f[nmBW] = engine.Field{Name: "mem_bw_util", Kind: engine.Float, Unit: "%", Doc: "stages' mem_bw_util weighted by their cycles; null when read from the stage files"}
	f[nmLatency] = engine.Field{Name: "latency_s", Kind: engine.Float, Unit: "s", Doc: "cycles_total / (core_freq MHz · 1e6)"}
	f[nmTokens] = engine.Field{Name: "tokens_per_s", Kind: engine.Float, Unit: "token/s", Doc: "requests / latency_s: every request decodes one token per iteration"}
	f[nmRequests] = engine.Field{Name: "requests", Kind: engine.Int, Unit: "token", Doc: "rows of the request trace (--cli_config)"}
	f[nmClock] = engine.Field{Name: "clock_mhz", Kind: engine.Float, Unit: "MHz", Doc: "core_freq of the NPU config (--config)"}
	f[nmStages] = engine.Field{Name: "stages", Kind: engine.String, Doc: "stages reported: ABE (sub-batch off) or ABCDEF (on)"}
	f[nmSource] = engine.Field{Name: "neupims_source", Kind: engine.String, Doc: "summary (_summary.tsv) or stage_files (SA_/PIM_stage_*.tsv, when the summary is missing)"}
	f[nmExit] = engine.Field{Name: "exit_status", Kind: engine.Int, Doc: "the simulator's exit status (NeuPIMs may exit 255 after a complete run)"}
	for i, s := range stageLetters {
		l := strings.ToLower(string(s))
		f[nmStageCycles+i] = engine.Field{Name: "cycles_stage_" + l, Kind: engine.Int, Unit: "cycle", Doc: "total_cycles of stage " + string(s) + "; null if the run has no such stage"}
		f[nmStagePIM+i] = engine.Field{Name: "pim_cycles_stage_" + l, Kind: engine.Int, Unit: "cycle", Doc: "pim_cycles of stage " + string(s)}
		f[nmStageBW+i] = engine.Field{Name: "mem_bw_util_stage_" + l, Kind: engine.Float, Unit: "%", Doc: "mem_bw_util of stage " + string(s)}
	}
	return f
}

// stdoutCap: the reader reads files, stdout is kept for failure reports.
func (r *neupimsReader) stdoutCap() int { return tailCap }

// pathArg is the absolute path of a flag's value, relative to the
// program's working directory.
func pathArg(inv *Invocation, flag string) (string, error) {
	v, ok := flagValue(inv.Args[1:], flag)
	if !ok || v == "" {
		return "", fmt.Errorf("no %s argument", flag)
	}
	if !filepath.IsAbs(v) {
		v = filepath.Join(inv.Dir, v)
	}
	return v, nil
}

// prepare creates --log_dir, which NeuPIMs expects to exist.
func (r *neupimsReader) prepare(inv *Invocation) error {
	dir, err := pathArg(inv, "--log_dir")
	if err != nil {
		return err
	}
	if rel, err := filepath.Rel(inv.Work, dir); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("--log_dir %s is outside the point's work folder %s", dir, inv.Work)
	}
	return os.MkdirAll(dir, 0o755)
}

// stage is one stage's figures; pim and bw are -1 when unknown.
type stage struct {
	cycles, pim int64
	bw          float64
}

func (r *neupimsReader) read(res *result, out []engine.Value) error {
	inv := res.inv
	dir, err := pathArg(inv, "--log_dir")
	if err != nil {
		return err
	}
	clock, err := r.clock(inv)
	if err != nil {
		return err
	}
	reqs, err := r.requestCount(inv)
	if err != nil {
		return err
	}
	stages, source, err := readSummary(filepath.Join(dir, "_summary.tsv"))
	if errors.Is(err, os.ErrNotExist) {
		stages, err = readStageFiles(dir)
		source = "stage_files"
		if err != nil {
			return fmt.Errorf("_summary.tsv is missing (exit status %d) and %v", res.exit, err)
		}
	} else if err != nil {
		return err
	}
	var total, pim int64
	var bwWeighted float64
	pimKnown := true
	letters := ""
	for i := range out {
		out[i] = engine.Value{}
	}
	for i, s := range stageLetters {
		st, ok := stages[byte(s)]
		if !ok {
			continue
		}
		letters += string(s)
		total += st.cycles
		out[nmStageCycles+i] = engine.IntV(st.cycles)
		if st.pim >= 0 {
			pim += st.pim
			bwWeighted += st.bw * float64(st.cycles)
			out[nmStagePIM+i] = engine.IntV(st.pim)
			out[nmStageBW+i] = engine.FloatV(st.bw)
		} else {
			pimKnown = false
		}
	}
	if total <= 0 {
		return fmt.Errorf("no cycles in %s", dir)
	}
	out[nmCycles] = engine.IntV(total)
	if pimKnown {
		out[nmPIM] = engine.IntV(pim)
		out[nmBW] = engine.FloatV(bwWeighted / float64(total))
	}
	lat := float64(total) / (clock * 1e6)
	out[nmLatency] = engine.FloatV(lat)
	out[nmTokens] = engine.FloatV(float64(reqs) / lat)
	out[nmRequests] = engine.IntV(reqs)
	out[nmClock] = engine.FloatV(clock)
	out[nmStages] = engine.StringV(letters)
	out[nmSource] = engine.StringV(source)
	out[nmExit] = engine.IntV(int64(res.exit))
	return nil
}

// clock reads core_freq (MHz) from the --config NPU JSON.
func (r *neupimsReader) clock(inv *Invocation) (float64, error) {
	path, err := pathArg(inv, "--config")
	if err != nil {
		return 0, err
	}
	if v, ok := r.clocks.Load(path); ok {
		return v.(float64), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("NPU config: %w", err)
	}
	var cfg struct {
		CoreFreq *float64 `json:"core_freq"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return 0, fmt.Errorf("NPU config %s: %v", path, err)
	}
	if cfg.CoreFreq == nil || *cfg.CoreFreq <= 0 {
		return 0, fmt.Errorf("NPU config %s: want a positive core_freq (MHz)", path)
	}
	r.clocks.Store(path, *cfg.CoreFreq)
	return *cfg.CoreFreq, nil
}

// requestCount counts the requests (data rows) of the --cli_config trace.
func (r *neupimsReader) requestCount(inv *Invocation) (int64, error) {
	path, err := pathArg(inv, "--cli_config")
	if err != nil {
		return 0, err
	}
	if v, ok := r.requests.Load(path); ok {
		return v.(int64), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("request trace: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var n int64
	first := true
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if first {
			first = false
			field, _, _ := strings.Cut(line, ",")
			if _, err := strconv.ParseFloat(strings.TrimSpace(field), 64); err != nil {
				continue // header: seq_len,ch_idx
			}
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("request trace %s: %v", path, err)
	}
	if n == 0 {
		return 0, fmt.Errorf("request trace %s has no requests", path)
	}
	r.requests.Store(path, n)
	return n, nil
}

// tsv is a parsed tab-separated file with a header. NeuPIMs ends every line
// with a tab; empty trailing fields are dropped.
type tsv struct {
	path string
	cols map[string]int
	rows [][]string
	line []int // line number of each row
}

func readTSV(path string) (*tsv, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t := &tsv{path: path, cols: map[string]int{}}
	for i, line := range bytes.Split(data, []byte("\n")) {
		s := strings.TrimRight(string(line), "\t\r ")
		if s == "" {
			continue
		}
		fields := strings.Split(s, "\t")
		if len(t.cols) == 0 {
			for j, f := range fields {
				t.cols[strings.TrimSpace(f)] = j
			}
			continue
		}
		t.rows = append(t.rows, fields)
		t.line = append(t.line, i+1)
	}
	if len(t.cols) == 0 {
		return nil, fmt.Errorf("%s: empty (no header)", path)
	}
	return t, nil
}

func (t *tsv) need(names ...string) error {
	for _, n := range names {
		if _, ok := t.cols[n]; !ok {
			return fmt.Errorf("%s: no %s column", t.path, n)
		}
	}
	return nil
}

func (t *tsv) field(row int, name string) (string, error) {
	j := t.cols[name]
	if j >= len(t.rows[row]) {
		return "", fmt.Errorf("%s:%d: no %s value", t.path, t.line[row], name)
	}
	return strings.TrimSpace(t.rows[row][j]), nil
}

func (t *tsv) int(row int, name string) (int64, error) {
	s, err := t.field(row, name)
	if err != nil {
		return 0, err
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f == float64(int64(f)) {
		return int64(f), nil
	}
	return 0, fmt.Errorf("%s:%d: %s %q is not an integer", t.path, t.line[row], name, s)
}

func (t *tsv) float(row int, name string) (float64, error) {
	s, err := t.field(row, name)
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%s:%d: %s %q is not a number", t.path, t.line[row], name, s)
	}
	return f, nil
}

// readSummary reads _summary.tsv: Stage, total_cycles, pim_cycles,
// mem_bw_util per stage.
func readSummary(path string) (map[byte]stage, string, error) {
	t, err := readTSV(path)
	if err != nil {
		return nil, "", err
	}
	if err := t.need("Stage", "total_cycles", "pim_cycles", "mem_bw_util"); err != nil {
		return nil, "", err
	}
	out := map[byte]stage{}
	for i := range t.rows {
		name, err := t.field(i, "Stage")
		if err != nil {
			return nil, "", err
		}
		if len(name) != 1 || !strings.Contains(stageLetters, name) {
			return nil, "", fmt.Errorf("%s:%d: unknown stage %q (want A to F)", path, t.line[i], name)
		}
		if _, dup := out[name[0]]; dup {
			return nil, "", fmt.Errorf("%s:%d: stage %s listed twice", path, t.line[i], name)
		}
		var s stage
		if s.cycles, err = t.int(i, "total_cycles"); err != nil {
			return nil, "", err
		}
		if s.pim, err = t.int(i, "pim_cycles"); err != nil {
			return nil, "", err
		}
		if s.bw, err = t.float(i, "mem_bw_util"); err != nil {
			return nil, "", err
		}
		if s.cycles < 0 || s.pim < 0 {
			return nil, "", fmt.Errorf("%s:%d: negative cycles", path, t.line[i])
		}
		out[name[0]] = s
	}
	if len(out) == 0 {
		return nil, "", fmt.Errorf("%s: no stages", path)
	}
	return out, "summary", nil
}

// readStageFiles derives each stage's cycles from SA_stage_<X>.tsv and
// PIM_stage_<X>.tsv: a stage ends with its last op, and starts where the
// previous stage ended.
func readStageFiles(dir string) (map[byte]stage, error) {
	ends := map[byte]int64{}
	for _, s := range []byte(stageLetters) {
		for _, unit := range []string{"SA", "PIM"} {
			t, err := readTSV(filepath.Join(dir, unit+"_stage_"+string(s)+".tsv"))
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if len(t.rows) == 0 {
				continue // a unit with no ops in this stage
			}
			if err := t.need("OpName", "EndCycle"); err != nil {
				return nil, err
			}
			for i := range t.rows {
				end, err := t.int(i, "EndCycle")
				if err != nil {
					return nil, err
				}
				ends[s] = max(ends[s], end)
			}
		}
	}
	letters := ""
	for _, s := range []byte(stageLetters) {
		if _, ok := ends[s]; ok {
			letters += string(s)
		}
	}
	complete := false
	for _, c := range completeStages {
		complete = complete || letters == c
	}
	if !complete {
		if letters == "" {
			return nil, fmt.Errorf("no stage files (SA_stage_<X>.tsv, PIM_stage_<X>.tsv): the run did not complete a stage")
		}
		return nil, fmt.Errorf("the stage files cover stages %s only, not A,B,E (sub-batch off) or A-F (on): the run did not complete", strings.Join(strings.Split(letters, ""), ","))
	}
	out := map[byte]stage{}
	var prev int64
	for _, s := range []byte(letters) {
		if ends[s] < prev {
			return nil, fmt.Errorf("stage %c ends at cycle %d, before stage it follows (%d)", s, ends[s], prev)
		}
		out[s] = stage{cycles: ends[s] - prev, pim: -1, bw: -1}
		prev = ends[s]
	}
	return out, nil
}
