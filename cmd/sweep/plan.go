package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/sweep-dse/sweep/sweep"
)

// planOptions are the flags of `sweep plan`.
type planOptions struct {
	Out   string
	Shard string
	Count bool
	Show  int
	Force bool
}

func runPlan(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	var o planOptions
	fs := newFlags("plan", "plan STUDY.toml [flags]\n\nExpands the study, checks every point, and compares it with its dataset,\nwithout running or writing anything.", stdout)
	fs.StringVar(&o.Out, "out", "", "dataset `folder` to compare with (default results/<study name>)")
	fs.StringVar(&o.Shard, "shard", "", "plan only shard `i/N`")
	fs.BoolVar(&o.Count, "count", false, "print only the number of points")
	fs.IntVar(&o.Show, "show", 5, "how many points to preview")
	fs.BoolVar(&o.Force, "force", false, "plan a study larger than its max_points (as sweep run --force runs it)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return handleHelp(fs, err)
	}
	if o.Show < 0 {
		return usageErr(fmt.Sprintf("plan: --show %d: must not be negative", o.Show))
	}
	if len(pos) != 1 {
		return usageErr("plan: want exactly one study file (see `sweep plan --help`)")
	}
	sh := sweep.All
	if o.Shard != "" {
		if sh, err = sweep.ParseShard(o.Shard); err != nil {
			return usageErr("--shard: " + err.Error())
		}
	}
	s, err := sweep.Load(pos[0])
	if err != nil {
		return err
	}
	if o.Out == "" {
		o.Out = sweep.DefaultOut(s)
	}
	pl, err := sweep.Expand(ctx, s, o.Out, sweep.PlanOptions{Shard: sh, Preview: o.Show, Force: o.Force})
	if err != nil {
		return err
	}
	if o.Count {
		fmt.Fprintln(stdout, pl.Points)
		return nil
	}
	printPlan(stdout, s, pl, o.Out)
	for _, n := range pl.Notes() {
		fmt.Fprintln(stdout, n)
	}
	if other := sweep.OtherStudy(o.Out, s.Name); other != "" {
		fmt.Fprintf(stdout, "note: %s holds rows of study %q; sweep run refuses to add study %q to it unless --mix-studies\n", o.Out, other, s.Name)
	}
	return nil
}

func printPlan(w io.Writer, s *sweep.Study, pl *sweep.Plan, out string) {
	fmt.Fprintf(w, "study:   %s (%s)\n", s.Name, s.Path)
	if s.Description != "" {
		fmt.Fprintf(w, "         %s\n", s.Description)
	}
	fmt.Fprintf(w, "engine:  %s, model version %s\n", s.Engine.Name(), s.Engine.Version())
	fmt.Fprintln(w, "axes:")
	for _, d := range s.Dims {
		for j, name := range d.Names {
			vals := make([]string, 0, len(d.Values[j]))
			for i, v := range d.Values[j] {
				if i == 8 && len(d.Values[j]) > 10 {
					vals = append(vals, fmt.Sprintf("... (%d values)", len(d.Values[j])))
					break
				}
				vals = append(vals, v.String())
			}
			tag := ""
			if len(d.Names) > 1 {
				tag = "  [" + d.Key + "]"
			}
			fmt.Fprintf(w, "  %-18s %s%s\n", name, strings.Join(vals, ", "), tag)
		}
	}
	for _, c := range s.Where {
		fmt.Fprintf(w, "where:   %s\n", c.Source)
	}
	fmt.Fprintf(w, "combinations: %d; dropped by constraints: %d\n", pl.Combinations, pl.Dropped)
	if pl.Shard.N > 1 {
		fmt.Fprintf(w, "shard %s: %d points (%d in other shards)\n", pl.Shard, pl.Points, pl.OtherShards)
	}
	fmt.Fprintf(w, "points:  %d\n", pl.Points)
	fmt.Fprintf(w, "dataset: %s: %d done, %d failed, %d pending\n", out, pl.Done, pl.Failed, pl.Points-pl.Done-pl.Failed)
	for v, n := range pl.Stale {
		fmt.Fprintf(w, "         %d rows of another model version (%s) will be archived by the next run\n", n, v)
	}
	for _, b := range pl.Bad {
		fmt.Fprintf(w, "         warning: %v (the next run quarantines it)\n", b)
	}
	prev := pl.Preview()
	if len(prev) == 0 {
		return
	}
	fmt.Fprintf(w, "first %d points:\n", len(prev))
	tw := tabwriter.NewWriter(w, 2, 0, 2, ' ', 0)
	var names []string
	var idx []int
	for _, d := range s.Dims {
		names = append(names, d.Names...)
		idx = append(idx, d.Params...)
	}
	h := sweep.NewHasher(s)
	fmt.Fprintf(tw, "  point_id\t%s\n", strings.Join(names, "\t"))
	for _, p := range prev {
		vals := make([]string, len(idx))
		for i, pi := range idx {
			vals[i] = p[pi].String()
		}
		// Expand has read the files the points name: no error here
		id := "?"
		if v, err := h.ID(p); err == nil {
			id = v.String()
		}
		fmt.Fprintf(tw, "  %s\t%s\n", id, strings.Join(vals, "\t"))
	}
	tw.Flush()
}
