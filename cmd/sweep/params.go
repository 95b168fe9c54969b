package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/sweep-dse/sweep/engine/moe"
)

func runParams(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	fs := newFlags("params", "params\n\nLists the embedded engine's parameters (study keys, --set names, dataset\ncolumns) with kinds, units and defaults, then its metrics.", stdout)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return handleHelp(fs, err)
	}
	if len(pos) > 0 {
		return usageErr(fmt.Sprintf("params: unexpected argument %q (it takes none)", pos[0]))
	}
	e := moe.New()
	fmt.Fprintf(stdout, "Parameters of engine %s (model version %s):\n", e.Name(), e.Version())
	for _, p := range e.Params() {
		def := "(derived)"
		if p.Default.IsSet() {
			def = "= " + p.Default.String()
			if p.Default.String() == "" {
				def = `= ""`
			}
		}
		unit := ""
		if p.Unit != "" {
			unit = " [" + p.Unit + "]"
		}
		enum := ""
		if len(p.Enum) > 0 {
			enum = " {" + strings.Join(p.Enum, "|") + "}"
		}
		fmt.Fprintf(stdout, "  %-22s %-6s %-12s%s%s %s\n", p.Name, p.Kind, def, unit, enum, p.Doc)
	}
	fmt.Fprintf(stdout, "\nModel presets: custom, %s\n", strings.Join(moe.ModelPresetNames(), ", "))
	fmt.Fprintf(stdout, "Hardware presets: %s\n", strings.Join(moe.HardwarePresetNames(), ", "))
	fmt.Fprintln(stdout, "\nMetrics:")
	for _, m := range e.Metrics() {
		unit := ""
		if m.Unit != "" {
			unit = " [" + m.Unit + "]"
		}
		fmt.Fprintf(stdout, "  %-34s %-6s%s %s\n", m.Name, m.Kind, unit, m.Doc)
	}
	return nil
}
