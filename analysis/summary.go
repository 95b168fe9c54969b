package analysis

import (
	"fmt"
	"io"
	"strings"

	"github.com/sweep-dse/sweep/engine"

	"github.com/sweep-dse/sweep/sweep"
)

// summaryBest is how many best points per objective the terminal summary
// lists.
const summaryBest = 3

// WriteSummary prints the terminal summary: rows and failures, each axis's
// values, the best points per objective and the size of the Pareto front.
func (r *Report) WriteSummary(w io.Writer) error {
	d := r.Dataset
	var b strings.Builder
	st := r.Stats
	fmt.Fprintf(&b, "dataset  %s: %s, %d rows (%d ok, %d failed)\n", d.Dir, plural(len(d.Parts), "part"), st.Rows, st.OK, st.Failed)
	if d.Study != nil {
		fmt.Fprintf(&b, "study    %s", d.Study.Name)
		if d.Study.Description != "" {
			fmt.Fprintf(&b, ": %s", d.Study.Description)
		}
		b.WriteByte('\n')
	} else {
		fmt.Fprintf(&b, "study    unknown (%v); axes cannot be listed\n", d.StudyErr)
	}
	var vs []string
	for _, v := range r.Versions {
		vs = append(vs, fmt.Sprintf("%s (%d rows)", orDash(v.Value.String()), v.Rows))
	}
	fmt.Fprintf(&b, "engine   %s, model version %s", orDash(d.EngineName()), strings.Join(vs, ", "))
	if len(d.ToolVersions) > 0 {
		fmt.Fprintf(&b, "; written by sweep %s", strings.Join(d.ToolVersions, ", "))
	}
	b.WriteByte('\n')
	for _, s := range st.Skipped {
		fmt.Fprintf(&b, "warning  skipped %s\n", s)
	}
	if r.Options.Where != "" {
		fmt.Fprintf(&b, "filter   %s: %d ok rows match\n", r.Options.Where, st.Matched)
	}
	if len(r.Axes) > 0 {
		wid := 0
		for _, a := range r.Axes {
			wid = max(wid, len(a.Column.Label()))
		}
		for i, a := range r.Axes {
			head := "axes     "
			if i > 0 {
				head = "         "
			}
			var vals []string
			for _, v := range a.Values {
				vals = append(vals, orNull(v.Value))
			}
			n := fmt.Sprint(len(a.Values))
			if a.More {
				n = "over " + n
			}
			fmt.Fprintf(&b, "%s%-*s  %s values: %s\n", head, wid, a.Column.Label(), n, listShort(vals, a.More, 90))
		}
	}
	if len(r.Errors) > 0 {
		for i, e := range r.Errors {
			if i == 3 {
				fmt.Fprintf(&b, "         ... %d more kinds of error\n", len(r.Errors)-3)
				break
			}
			head := "failures "
			if i > 0 {
				head = "         "
			}
			fmt.Fprintf(&b, "%s%d rows: %s\n", head, e.Rows, sweep.FirstLine(e.Msg))
		}
	}
	for i, rk := range r.Best {
		head := "best     "
		if i > 0 {
			head = "         "
		}
		c, _ := d.Column(rk.Objective.Metric)
		fmt.Fprintf(&b, "%s%s (%s):\n", head, c.Label(), dir(rk.Objective))
		if len(rk.Table.Rows) == 0 {
			fmt.Fprintf(&b, "           no rows\n")
		}
		for k, row := range rk.Table.Rows {
			if k == summaryBest {
				break
			}
			fmt.Fprintf(&b, "           %-10s %s\n", Short(row[len(row)-1]), settings(rk.Table, row))
		}
	}
	if len(r.Options.Objectives) >= 2 {
		var objs []string
		for _, o := range r.Options.Objectives {
			objs = append(objs, dir(o)+" "+o.Metric)
		}
		fmt.Fprintf(&b, "pareto   %d points over %s\n", len(r.Front.Rows), strings.Join(objs, ", "))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note     %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// settings formats a ranked row's axes as name=value pairs, then its ID.
func settings(t *Table, row []engine.Value) string {
	var parts []string
	id := ""
	for i, c := range t.Columns {
		switch {
		case c.Name == "point_id":
			id = row[i].String()
		case c.Role == RoleParam || c.Role == RoleUnknown:
			if i < len(row)-1 {
				parts = append(parts, c.Name+"="+orNull(row[i]))
			}
		}
	}
	if id != "" {
		parts = append(parts, "("+id+")")
	}
	return strings.Join(parts, " ")
}

// listShort joins values with commas, cut to about width characters with a
// trailing "..." when cut or when more values exist.
func listShort(vals []string, more bool, width int) string {
	var b strings.Builder
	for i, v := range vals {
		if i > 0 && b.Len()+len(v)+2 > width {
			return b.String() + ", ..."
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(v)
	}
	if more {
		b.WriteString(", ...")
	}
	return b.String()
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
