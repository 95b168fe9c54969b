package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/sweep-dse/sweep/analysis"
)

// reportOptions are the flags of `sweep report`.
type reportOptions struct {
	Stderr     io.Writer // messages while waiting for a compaction; nil: none
	Out        string
	Metrics    string
	X          string
	Series     string
	Heatmap    string
	HeatMetric string
	Objectives []analysis.Objective
	Where      string
	Agg        string
	Top        int
	Sample     int
	MaxFront   int
	Quiet      bool
}

func runReport(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	var o reportOptions
	fs := newFlags("report", "report DIR [-o FOLDER] [flags]\n\nSummarises a dataset on the terminal (rows, failures, each axis's values, the\nbest points per metric, the Pareto front) and writes a report folder,\nDIR/_report unless -o (the underscore keeps pandas and pyarrow from reading\nit as part of the dataset): every chart as PNG and SVG, and report.html,\none self-contained page with the charts, tables, the study text and versions.\n\nCharts: each metric against each x axis with one line per series value\n(rows that differ in other axes are combined by --agg), a Pareto scatter\nwith the front highlighted, and heatmaps over two axes. By default the\nmetrics are latency_s, tokens_per_s, params_layer, act_bytes_moe and\nlink_bytes (those present), the x axes the study's first two numeric axes,\nthe series its string axis (moe_ffn_scaling), the heatmap num_experts x\nbatch_size, and the front min latency_s, max tokens_per_s.\nThe dataset is read once, in bounded memory.", stdout)
	fs.StringVar(&o.Out, "o", "", "report `folder` (default DIR/_report)")
	fs.StringVar(&o.Metrics, "metrics", "", "metrics to chart and rank, comma-separated")
	fs.StringVar(&o.X, "x", "", "x axes of the line charts, comma-separated (none = no line charts)")
	fs.StringVar(&o.Series, "series", "", "`axis` with one line per value (none = one line)")
	fs.StringVar(&o.Heatmap, "heatmap", "", "heatmap axes `X,Y` (none = no heatmap)")
	fs.StringVar(&o.HeatMetric, "heatmap-metrics", "", "metrics drawn as heatmaps (default the first two metrics)")
	fs.Var(objectiveFlag{&o.Objectives, false}, "min", "Pareto objective `METRIC` to minimise (repeatable; the first two are plotted)")
	fs.Var(objectiveFlag{&o.Objectives, true}, "max", "Pareto objective `METRIC` to maximise (repeatable)")
	fs.StringVar(&o.Where, "where", "", "chart and rank only rows where `EXPR` is true")
	fs.StringVar(&o.Agg, "agg", "mean", "how rows of one chart point combine: mean, min or max")
	fs.IntVar(&o.Top, "top", 5, "best points listed per metric")
	fs.IntVar(&o.Sample, "sample", 4000, "points drawn in the Pareto scatter (a uniform sample; the front is always drawn whole)")
	fs.IntVar(&o.MaxFront, "max-front", analysis.DefaultMaxFront, "fail if the Pareto front exceeds `N` points (bounds memory)")
	fs.BoolVar(&o.Quiet, "quiet", false, "print only the report's path")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return handleHelp(fs, err)
	}
	if len(pos) != 1 {
		return usageErr("report: want exactly one dataset folder (see `sweep report --help`)")
	}
	o.Stderr = stderr
	return reportDataset(ctx, stdout, pos[0], o)
}

// reportDataset summarises the dataset in dir and writes the report folder.
func reportDataset(ctx context.Context, w io.Writer, dir string, o reportOptions) error {
	if o.Top < 1 {
		return usageErr(fmt.Sprintf("report: --top %d: must be at least 1", o.Top))
	}
	if o.Sample < 1 {
		return usageErr(fmt.Sprintf("report: --sample %d: must be at least 1", o.Sample))
	}
	if o.MaxFront < 1 {
		return usageErr(fmt.Sprintf("report: --max-front %d: must be at least 1", o.MaxFront))
	}
	if len(o.Objectives) == 1 {
		return usageErr("report: a Pareto front needs two or more objectives (--min/--max)")
	}
	if st, err := os.Stat(o.Out); o.Out != "" && err == nil && !st.IsDir() {
		return usageErr(fmt.Sprintf("report: -o %s: not a folder", o.Out))
	}
	release, err := lockForReading(ctx, dir, o.Stderr)
	if err != nil {
		return err
	}
	defer release()
	d, err := analysis.Open(dir)
	if err != nil {
		return err
	}
	out := o.Out
	if out == "" {
		out = filepath.Join(dir, "_report")
	}

	r, err := analysis.Build(ctx, d, analysis.ReportOptions{
		Metrics:    splitList(o.Metrics),
		X:          splitList(o.X),
		Series:     o.Series,
		Heatmap:    splitList(o.Heatmap),
		HeatMetric: splitList(o.HeatMetric),
		Objectives: o.Objectives,
		Where:      o.Where,
		Agg:        o.Agg,
		Top:        o.Top,
		Sample:     o.Sample,
		MaxFront:   o.MaxFront,
		Tool:       version,
	})
	if err != nil {
		return err
	}
	if err := r.Render(); err != nil {
		return err
	}
	page, err := r.Write(out)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if !o.Quiet {
		if err := r.WriteSummary(w); err != nil {
			return err
		}
		fmt.Fprintf(w, "report   %s (%d charts as PNG and SVG in %s)\n", page, len(r.Charts), out)
		return nil
	}
	fmt.Fprintln(w, page)
	return nil
}
