package neupimsio

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// SummaryHeader and OpHeader are NeuPIMs' column names; every line of its
// TSV files, the header too, ends with a tab.
var (
	SummaryHeader = []string{"Stage", "total_cycles", "pim_cycles", "mem_bw_util"}
	OpHeader      = []string{"OpName", "StartCycle", "EndCycle", "TotalCycle", "ComputeCycles", "MemoryStalls",
		"WeightLoadCycles", "SystolicMemoryStalls", "MemoryReads", "MemoryWrites", "ReadBandwidth",
		"WriteBandwidth", "TotalMemoryBandwidth", "NumCalculation", "NpuUtilization"}
)

// Write writes _summary.tsv and, per stage, SA_stage_<X>.tsv and (when the
// PIM units work in it) PIM_stage_<X>.tsv into dir, which must exist.
// Bandwidths are bytes per second at the core clock (clockMHz), as NeuPIMs
// prints them; NpuUtilization is NumCalculation / (ComputeCycles·W·H).
func (r *Run) Write(dir string, res *Result) error {
	if st, err := os.Stat(dir); err != nil {
		return fmt.Errorf("log_dir %s: %w", dir, err)
	} else if !st.IsDir() {
		return fmt.Errorf("log_dir %s: not a directory", dir)
	}
	rows := [][]string{}
	for _, s := range res.Stages {
		rows = append(rows, []string{s.Name, strconv.FormatInt(s.Cycles, 10), strconv.FormatInt(s.PIMCycles, 10),
			strconv.FormatFloat(s.MemBWUtil, 'f', 6, 64)})
	}
	if err := writeTSV(filepath.Join(dir, "_summary.tsv"), SummaryHeader, rows); err != nil {
		return err
	}
	hz := r.ClockMHz * 1e6
	for _, s := range res.Stages {
		for _, side := range []struct {
			prefix string
			ops    []Op
		}{{"SA", s.SA}, {"PIM", s.PIMs}} {
			if len(side.ops) == 0 && side.prefix == "PIM" {
				continue
			}
			var rows [][]string
			for _, o := range side.ops {
				tot := max(1, o.Total())
				util := 0.0
				if o.Compute > 0 {
					util = float64(o.Calc) / (float64(o.Compute) * float64(r.Array.W*r.Array.H))
				}
				bw := func(b int64) string { return strconv.FormatInt(int64(float64(b)*hz/float64(tot)), 10) }
				rows = append(rows, []string{o.Name, i(o.Start), i(o.End), i(o.Total()), i(o.Compute), "0",
					i(o.WeightLoad), "0", i(o.Reads), i(o.Writes), bw(o.Reads), bw(o.Writes), bw(o.Reads + o.Writes),
					i(o.Calc), strconv.FormatFloat(util, 'f', 6, 64)})
			}
			name := fmt.Sprintf("%s_stage_%s.tsv", side.prefix, s.Name)
			if err := writeTSV(filepath.Join(dir, name), OpHeader, rows); err != nil {
				return err
			}
		}
	}
	return nil
}

func i(v int64) string { return strconv.FormatInt(v, 10) }

func writeTSV(path string, header []string, rows [][]string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	line := func(cells []string) {
		for _, c := range cells {
			w.WriteString(c)
			w.WriteByte('\t')
		}
		w.WriteByte('\n')
	}
	line(header)
	for _, r := range rows {
		line(r)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
