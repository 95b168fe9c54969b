package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/sweep-dse/sweep/analysis"
)

// bestOptions are the flags of `sweep best`.
type bestOptions struct {
	Stderr io.Writer // messages while waiting for a compaction; nil: none
	By     string
	Max    bool
	Min    bool
	Where  string
	Top    int
	Cols   string
	Format string
}

func runBest(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	var o bestOptions
	fs := newFlags("best", "best DIR --by METRIC [--min|--max] [--where EXPR] [--top N] [--format table|csv|json]\n\nPrints the best points of a dataset by one metric: the --top N ok rows with\nthe lowest (--min) or highest (--max) value, ties broken by point_id. Without\n--min or --max the direction follows the metric's name: rates, throughputs\nand utilisations are maximised, everything else minimised. --where filters\nrows with an expression over any parameter or metric, written like a study's\n`where` constraints, e.g. --where 'batch_size >= 128 && moe_ffn_scaling == \"compute\"'.", stdout)
	fs.StringVar(&o.By, "by", "", "`METRIC` to rank by (required; see `sweep params`)")
	fs.BoolVar(&o.Max, "max", false, "highest value first")
	fs.BoolVar(&o.Min, "min", false, "lowest value first")
	fs.StringVar(&o.Where, "where", "", "only rows where `EXPR` is true")
	fs.IntVar(&o.Top, "top", 10, "how many points to print")
	fs.StringVar(&o.Cols, "cols", "", "extra `columns` to print, comma-separated")
	fs.StringVar(&o.Format, "format", "table", "output: table, csv or json")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return handleHelp(fs, err)
	}
	if len(pos) != 1 {
		return usageErr("best: want exactly one dataset folder (see `sweep best --help`)")
	}
	o.Stderr = stderr
	return best(ctx, stdout, pos[0], o)
}

// best prints the best points of the dataset in dir.
func best(ctx context.Context, w io.Writer, dir string, o bestOptions) error {
	if o.By == "" {
		return usageErr("best: --by METRIC is required")
	}
	if o.Min && o.Max {
		return usageErr("best: give --min or --max, not both")
	}
	if o.Top < 1 {
		return usageErr(fmt.Sprintf("best: --top %d: must be at least 1", o.Top))
	}
	if err := checkFormat(o.Format); err != nil {
		return err
	}
	by := analysis.Objective{Metric: o.By, Max: !analysis.LowerIsBetter(o.By)}
	if o.Min || o.Max {
		by.Max = o.Max
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
	t, err := analysis.Best(ctx, d, analysis.BestOptions{By: by, Where: o.Where, Top: o.Top, Columns: splitList(o.Cols)})
	if err != nil {
		return err
	}
	if err := t.Write(w, o.Format); err != nil {
		return err
	}
	if o.Format == analysis.FormatTable {
		noteStats(w, t.Stats, o.Where)
		if n := d.StudyNote(); n != "" {
			fmt.Fprintf(w, "note: %s\n", n)
		}
	} else {
		warnSkipped(o.Stderr, t.Stats)
	}
	return nil
}

// checkFormat validates --format.
func checkFormat(f string) error {
	switch f {
	case analysis.FormatTable, analysis.FormatCSV, analysis.FormatJSON:
		return nil
	}
	return usageErr(fmt.Sprintf("--format %q: want table, csv or json", f))
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// noteStats prints what the query scanned under a table.
func noteStats(w io.Writer, st *analysis.ScanStats, where string) {
	if st == nil {
		return
	}
	fmt.Fprintf(w, "(%d rows: %d ok, %d failed", st.Rows, st.OK, st.Failed)
	if where != "" {
		fmt.Fprintf(w, "; %d match --where", st.Matched)
	}
	if st.NoValue > 0 {
		fmt.Fprintf(w, "; %d without a value (null or NaN) to rank", st.NoValue)
	}
	fmt.Fprintln(w, ")")
	for _, s := range st.Skipped {
		fmt.Fprintf(w, "warning: skipped %s\n", s)
	}
}

// warnSkipped says on stderr which parts a CSV or JSON answer left out
// (unreadable), as the table's notes do on stdout.
func warnSkipped(stderr io.Writer, st *analysis.ScanStats) {
	if st == nil || stderr == nil {
		return
	}
	for _, s := range st.Skipped {
		fmt.Fprintf(stderr, "sweep: warning: skipped %s\n", s)
	}
}
