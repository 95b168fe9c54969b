package main

import (
	"context"
	"fmt"
	"io"

	"github.com/sweep-dse/sweep/analysis"
)

// paretoOptions are the flags of `sweep pareto`.
type paretoOptions struct {
	Stderr     io.Writer            // messages while waiting for a compaction; nil: none
	Objectives []analysis.Objective // in command-line order
	Where      string
	Cols       string
	Format     string
	MaxFront   int
}

// objectiveFlag collects --min and --max in the order given.
type objectiveFlag struct {
	list *[]analysis.Objective
	max  bool
}

// String implements flag.Value.
func (f objectiveFlag) String() string { return "" }

// Set implements flag.Value: it appends one objective per comma-separated name.
func (f objectiveFlag) Set(s string) error {
	for _, m := range splitList(s) {
		*f.list = append(*f.list, analysis.Objective{Metric: m, Max: f.max})
	}
	return nil
}

func runPareto(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	var o paretoOptions
	fs := newFlags("pareto", "pareto DIR --min METRIC --min METRIC [--max METRIC ...] [--where EXPR] [--format table|csv|json]\n\nPrints the Pareto front of a dataset: the ok points that no other point\nbeats, i.e. no other point is at least as good in every objective and\nstrictly better in one. Give two or more objectives, e.g.\n  sweep pareto results/seed-moe --min latency_s --min params_layer --max tokens_per_s\nRows are ordered by the first objective, then the next.", stdout)
	fs.Var(objectiveFlag{&o.Objectives, false}, "min", "`METRIC` to minimise (repeatable)")
	fs.Var(objectiveFlag{&o.Objectives, true}, "max", "`METRIC` to maximise (repeatable)")
	fs.StringVar(&o.Where, "where", "", "only rows where `EXPR` is true")
	fs.StringVar(&o.Cols, "cols", "", "extra `columns` to print, comma-separated")
	fs.StringVar(&o.Format, "format", "table", "output: table, csv or json")
	fs.IntVar(&o.MaxFront, "max-front", analysis.DefaultMaxFront, "fail if the front exceeds `N` points (bounds memory)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return handleHelp(fs, err)
	}
	if len(pos) != 1 {
		return usageErr("pareto: want exactly one dataset folder (see `sweep pareto --help`)")
	}
	o.Stderr = stderr
	return pareto(ctx, stdout, pos[0], o)
}

// pareto prints the Pareto front of the dataset in dir.
func pareto(ctx context.Context, w io.Writer, dir string, o paretoOptions) error {
	if len(o.Objectives) < 2 {
		return usageErr(fmt.Sprintf("pareto: give two or more objectives with --min/--max (got %d)", len(o.Objectives)))
	}
	if o.MaxFront < 1 {
		return usageErr(fmt.Sprintf("pareto: --max-front %d: must be at least 1", o.MaxFront))
	}
	if err := checkFormat(o.Format); err != nil {
		return err
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
	t, err := analysis.Pareto(ctx, d, analysis.ParetoOptions{Objectives: o.Objectives, Where: o.Where, Columns: splitList(o.Cols), MaxFront: o.MaxFront})
	if err != nil {
		return err
	}
	if err := t.Write(w, o.Format); err != nil {
		return err
	}
	if o.Format == analysis.FormatTable {
		fmt.Fprintf(w, "%d points on the front; ", len(t.Rows))
		noteStats(w, t.Stats, o.Where)
		if n := d.StudyNote(); n != "" {
			fmt.Fprintf(w, "note: %s\n", n)
		}
	} else {
		warnSkipped(o.Stderr, t.Stats)
	}
	return nil
}
