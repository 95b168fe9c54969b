package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/sweep-dse/sweep/engine"
	"github.com/sweep-dse/sweep/engine/moe"
	"github.com/sweep-dse/sweep/sweep"
)

// simOptions are the flags of `sweep sim`.
type simOptions struct {
	Sets        []string // name=value
	ModelConfig string
	JSON        bool
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

func runSim(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	var o simOptions
	fs := newFlags("sim", "sim [--set name=value ...] [--model-config FILE] [--json]\n\nEvaluates one point on the embedded simulator. Unset parameters take their\ndefaults: a dense GPT-3-7B-sized layer stack (d_model 4096, num_experts 0) on\nthe neupims hardware, 512 requests of KV length 512; --set num_experts=64\nmakes it a MoE. See `sweep params` for every name and default.", stdout)
	fs.Var((*multiFlag)(&o.Sets), "set", "parameter `name=value` (repeatable)")
	fs.StringVar(&o.ModelConfig, "model-config", "", "model config JSON `file`: NeuPIMs' model config or a Hugging Face config.json (sets model_config)")
	fs.BoolVar(&o.JSON, "json", false, "print every input and metric as one JSON object")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return handleHelp(fs, err)
	}
	if len(pos) > 0 {
		return usageErr(fmt.Sprintf("sim: unexpected argument %q (use --set name=value)", pos[0]))
	}
	e := moe.New()
	given, p, m, err := simulate(ctx, e, o)
	if err != nil {
		return err
	}
	if o.JSON {
		return writeJSON(stdout, e, p, m)
	}
	report(stdout, e, p, m, e.ExpertWidthOrigin(given, p))
	return nil
}

// simulate resolves and evaluates the point the options describe; it
// returns the values given too. A parameter set without effect on the
// point is an *sweep.InputError naming its --set.
func simulate(ctx context.Context, e engine.Engine, o simOptions) (given, p, m []engine.Value, err error) {
	params := e.Params()
	p = make([]engine.Value, len(params))
	if o.ModelConfig != "" {
		p[engine.ParamIndex(params, "model_config")] = engine.StringV(o.ModelConfig)
	}
	flags := make([]string, len(params)) // the --set of each parameter
	for _, kv := range o.Sets {
		name, text, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, nil, nil, usageErr(fmt.Sprintf("--set %q: want name=value", kv))
		}
		name = strings.TrimSpace(name)
		i := engine.ParamIndex(params, name)
		if i < 0 {
			return nil, nil, nil, usageErr(fmt.Sprintf("--set %s: unknown parameter %q (see `sweep params`)", kv, name))
		}
		v, err := engine.ParseValue(params[i].Kind, strings.TrimSpace(text))
		if err != nil {
			return nil, nil, nil, usageErr(fmt.Sprintf("--set %s: %v", kv, err))
		}
		if p[i].IsSet() {
			return nil, nil, nil, usageErr(fmt.Sprintf("--set %s: %s is already set (to %s)", kv, name, p[i]))
		}
		p[i] = v
		flags[i] = "--set " + kv
	}
	given = slices.Clone(p)
	if err := e.Resolve(".", p); err != nil {
		return nil, nil, nil, err
	}
	if err := ignoredSets(e, given, flags, p); err != nil {
		return nil, nil, nil, err
	}
	m = make([]engine.Value, len(e.Metrics()))
	if err := e.Evaluate(ctx, p, m); err != nil {
		return nil, nil, nil, err
	}
	return given, p, m, nil
}

// ignoredSets is the error of the --set parameters that have no effect on
// the resolved point p (given: the values before Resolve; flags[i]: the
// --set of parameter i, "" if none), or nil.
func ignoredSets(e engine.Engine, given []engine.Value, flags []string, p []engine.Value) error {
	ig, ok := e.(engine.Ignorer)
	if !ok {
		return nil
	}
	f := ig.Ignoring(given, nil)
	if f == nil {
		return nil
	}
	var ign []engine.Ignored
	for _, x := range f(p, nil) {
		if flags[x.Param] != "" {
			ign = append(ign, x)
		}
	}
	if len(ign) == 0 {
		return nil
	}
	params := e.Params()
	var more []string
	for _, x := range ign[1:] {
		more = append(more, flags[x.Param])
	}
	x := ign[0]
	msg := "has no effect: " + x.Why
	if x.By >= 0 {
		msg += " (the point has " + sweep.Setting(params[x.By], p[x.By]) + ")"
	}
	if len(more) > 0 {
		msg += "; nor has " + strings.Join(more, ", ")
	}
	return &sweep.InputError{Key: flags[x.Param], Msg: msg}
}

func jsonValue(v engine.Value) any {
	switch v.Kind {
	case engine.Int:
		return v.I
	case engine.Float:
		if math.IsNaN(v.F) || math.IsInf(v.F, 0) {
			return nil
		}
		return v.F
	case engine.Bool:
		return v.I != 0
	case engine.String:
		return v.S
	}
	return nil
}

func writeJSON(w io.Writer, e engine.Engine, p, m []engine.Value) error {
	// ordered output: inputs then metrics
	var b strings.Builder
	b.WriteString("{")
	first := true
	add := func(name string, v engine.Value) {
		if !first {
			b.WriteString(",")
		}
		first = false
		k, _ := json.Marshal(name)
		x, _ := json.Marshal(jsonValue(v))
		fmt.Fprintf(&b, "\n  %s: %s", k, x)
	}
	add("engine", engine.StringV(e.Name()))
	add("engine_version", engine.StringV(e.Version()))
	for i, pr := range e.Params() {
		add(pr.Name, p[i])
	}
	for i, f := range e.Metrics() {
		add(f.Name, m[i])
	}
	b.WriteString("\n}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// group formats an integer with thousands separators.
func group(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func bytesHuman(n int64) string {
	f := float64(n)
	switch {
	case f >= 1e9:
		return fmt.Sprintf("%.2f GB", f/1e9)
	case f >= 1e6:
		return fmt.Sprintf("%.1f MB", f/1e6)
	case f >= 1e3:
		return fmt.Sprintf("%.1f kB", f/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

// report prints a point like the seed document's "Validation Results".
func report(w io.Writer, e engine.Engine, p, m []engine.Value, widthOrigin string) {
	in := func(name string) engine.Value { return p[engine.ParamIndex(e.Params(), name)] }
	out := func(name string) engine.Value { return m[engine.FieldIndex(e.Metrics(), name)] }
	I := func(name string) int64 { return out(name).I }
	E := in("num_experts").I
	fmt.Fprintf(w, "sweep sim — engine %s, model version %s\n\n", e.Name(), e.Version())
	fmt.Fprintf(w, "Model: %s, d_model = %d, d_ff = %d, %d heads (%d KV), %d layers, tp = %d, ffn = %s\n",
		in("model").S, in("d_model").I, in("d_ff").I, in("n_heads").I, in("n_kv_heads").I, in("n_layers").I, in("tp").I, in("ffn").S)
	if E > 0 {
		fmt.Fprintf(w, "MoE:   %d experts, top-%d, d_ff_expert = %d (%s), capacity factor %g\n",
			E, in("top_k").I, in("d_ff_expert").I, widthOrigin, in("capacity_factor").F)
	} else {
		fmt.Fprintf(w, "Dense FFN (num_experts = 0)\n")
	}
	if n := out("sliding_layers").I; n > 0 {
		fmt.Fprintf(w, "Attention: sliding window of %d tokens in %d of the %d layers\n", in("sliding_window").I, n, in("n_layers").I)
	}
	fmt.Fprintf(w, "Hardware: %s, %d×%d array ×%d at %g MHz, %d HBM channels × %g B/cycle at %g MHz, PIM %v, link %g GB/s\n",
		in("hardware").S, in("array_height").I, in("array_width").I, in("arrays").I, in("clock_mhz").F,
		in("hbm_channels").I, in("hbm_bytes_per_cycle").F, in("dram_mhz").F, in("pim").Bool(), in("link_gbps").F)
	fmt.Fprintf(w, "Workload: batch %d, routing %s, seed %d\n\n", in("batch_size").I, in("routing").S, in("seed").I)

	row := func(label string, n int64, note string) {
		fmt.Fprintf(w, "  %-22s %16s  %s\n", label, group(n), note)
	}
	fmt.Fprintln(w, "Per-layer parameters:")
	row("Attention:", I("params_attention"), "")
	if E > 0 {
		row("MoE router:", I("params_router"), "")
		row("Per expert:", I("params_per_expert"), fmt.Sprintf("(d_ff_expert = %d)", in("d_ff_expert").I))
		row(fmt.Sprintf("All %d experts:", E), I("params_experts"), "")
		if I("params_shared") > 0 {
			row("Shared experts:", I("params_shared"), "")
		}
		row("Total MoE FFN:", I("params_moe_ffn"), "")
	} else {
		row("Dense FFN:", I("params_dense_ffn"), "")
	}
	row("Total layer:", I("params_layer"), "")
	if E > 0 {
		fmt.Fprintln(w, "\nComparison:")
		row("Dense FFN:", I("params_dense_ffn"), "")
		row("MoE FFN:", I("params_moe_ffn"), fmt.Sprintf("(%.2f× dense)", float64(I("params_moe_ffn"))/float64(I("params_dense_ffn"))))
		fmt.Fprintf(w, "\nActive per token (top-%d):\n", in("top_k").I)
		row(fmt.Sprintf("%d experts:", in("top_k").I), in("top_k").I*I("params_per_expert"), "")
		row("Total active:", I("params_active"), fmt.Sprintf("(sparse activation %.1f %%)", 100*out("active_ratio").F))
	}
	fmt.Fprintln(w, "\nWhole model:")
	row("Total:", I("params_total"), "")
	row("Active per token:", I("params_active_total"), "(embedding and LM head counted)")

	fmt.Fprintf(w, "\nActivation memory (batch %d):\n", in("batch_size").I)
	row("Dense FFN:", I("act_bytes_dense_ffn"), "B  "+bytesHuman(I("act_bytes_dense_ffn")))
	if E > 0 {
		row("MoE, token-sliced:", I("act_bytes_moe"), "B  "+bytesHuman(I("act_bytes_moe")))
		row("MoE, unsliced:", I("act_bytes_moe_unsliced"), "B  "+bytesHuman(I("act_bytes_moe_unsliced")))
		fmt.Fprintf(w, "\nRouting (per MoE layer, mean over the %d MoE layers, each routed on its own):\n", I("moe_layers"))
		fmt.Fprintf(w, "  %.2f of %d experts active; tokens per expert max %.1f, mean %.1f; %.1f dropped\n",
			out("experts_active").F, E, out("tokens_per_expert_max").F, out("tokens_per_expert_mean").F, out("tokens_dropped").F)
		fmt.Fprintln(w, "\nHost-link load:")
		row("Per expert:", I("link_bytes_per_expert"), "B  "+bytesHuman(I("link_bytes_per_expert")))
		row("Load cycles:", I("link_cycles_per_expert"), "per expert")
		fmt.Fprintf(w, "  %-22s %16.2f  %s\n", "Experts loaded:", out("experts_loaded").F, fmt.Sprintf("per MoE layer, mean (%d resident)", in("resident_experts").I))
	}
	fmt.Fprintf(w, "\nTime of one decode iteration (%d layers, one device):\n", in("n_layers").I)
	for _, n := range []string{"cycles_qkv", "cycles_attention", "cycles_proj", "cycles_ffn", "cycles_router", "cycles_experts", "cycles_loads"} {
		if I(n) > 0 {
			row(strings.TrimPrefix(n, "cycles_")+":", I(n), "cycles")
		}
	}
	row("Total:", I("cycles_total"), "cycles")
	fmt.Fprintf(w, "  %-22s %16.6g  s\n", "Latency:", out("latency_s").F)
	fmt.Fprintf(w, "  %-22s %16.6g  s (%s-bound)\n", "Roofline bound:", out("roofline_latency_s").F, out("bound").S)
	fmt.Fprintf(w, "  %-22s %16.6g  tokens/s\n", "Throughput:", out("tokens_per_s").F)
	fmt.Fprintf(w, "  %-22s %16.1f  %%\n", "Array utilisation:", 100*out("array_utilization").F)
}
