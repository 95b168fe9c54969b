package main

import (
	"context"
	"fmt"
	"io"

	"github.com/sweep-dse/sweep/engine/moe/neupimsio"
)

// neupimsOptions are the flags of `sweep neupims`: NeuPIMs' own flag names.
type neupimsOptions struct {
	neupimsio.Files
	LogDir   string
	LogLevel string
}

func runNeuPIMs(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	var o neupimsOptions
	fs := newFlags("neupims", "neupims --config F --mem_config F --cli_config F --model_config F --sys_config F --log_dir D\n\n"+
		"A NeuPIMs-compatible front end of the embedded simulator: the same flags and input\n"+
		"files as the NeuPIMs binary, the same output files in --log_dir (which must exist):\n"+
		"_summary.tsv and SA_stage_<X>.tsv / PIM_stage_<X>.tsv, from the analytical cycle\n"+
		"model (see docs/fidelity.md for its accuracy against real NeuPIMs runs). The memory\n"+
		"config's pim_config_path is resolved relative to the memory config's folder.", stdout)
	fs.StringVar(&o.Config, "config", "", "NPU config JSON `file` (core_freq, core_height, core_width, precision)")
	fs.StringVar(&o.MemConfig, "mem_config", "", "memory config JSON `file` (dram_type, dram_channels, pim_config_path, ...)")
	fs.StringVar(&o.CliConfig, "cli_config", "", "request trace CSV `file` (seq_len,ch_idx)")
	fs.StringVar(&o.ModelConfig, "model_config", "", "model config JSON `file` (model_n_embd, model_n_head, n_tp)")
	fs.StringVar(&o.SysConfig, "sys_config", "", "system config JSON `file` (sub_batch_mode, run_mode)")
	fs.StringVar(&o.LogDir, "log_dir", "", "output `dir` (must exist)")
	fs.StringVar(&o.LogLevel, "log_level", "info", "accepted for compatibility: trace, debug or info")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return handleHelp(fs, err)
	}
	if len(pos) > 0 {
		return usageErr(fmt.Sprintf("neupims: unexpected argument %q", pos[0]))
	}
	for _, f := range []struct{ name, v string }{{"--config", o.Config}, {"--mem_config", o.MemConfig},
		{"--cli_config", o.CliConfig}, {"--model_config", o.ModelConfig}, {"--sys_config", o.SysConfig}, {"--log_dir", o.LogDir}} {
		if f.v == "" {
			return usageErr(fmt.Sprintf("neupims: %s is required (see `sweep neupims --help`)", f.name))
		}
	}
	switch o.LogLevel {
	case "trace", "debug", "info":
	default:
		return usageErr(fmt.Sprintf("neupims: --log_level %q is not trace, debug or info", o.LogLevel))
	}
	return neupims(ctx, stdout, o)
}

// neupims runs the front end; the tests call it directly.
func neupims(ctx context.Context, stdout io.Writer, o neupimsOptions) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r, err := neupimsio.Load(o.Files)
	if err != nil {
		return err
	}
	res := r.Simulate()
	if err := r.Write(o.LogDir, res); err != nil {
		return usageErr(fmt.Sprintf("neupims: --log_dir: %v", err))
	}
	for _, s := range res.Stages {
		fmt.Fprintf(stdout, "Stage %s : %d cycles\n", s.Name, s.Cycles)
	}
	fmt.Fprintf(stdout, "Total : %d cycles (%d requests, %.6g tokens/s per layer)\n", res.Total(), len(r.Requests),
		float64(len(r.Requests))/(float64(res.Total())/(r.ClockMHz*1e6)))
	fmt.Fprintln(stdout, "Simulation Finished")
	return nil
}
