package main

import (
	"context"
	"fmt"
	"io"

	"github.com/sweep-dse/sweep/engine/moe"
)

func runVersion(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	fs := newFlags("version", "version\n\nPrints the tool's version and the embedded engine's model version.", stdout)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return handleHelp(fs, err)
	}
	if len(pos) > 0 {
		return usageErr(fmt.Sprintf("version: unexpected argument %q (it takes none)", pos[0]))
	}
	fmt.Fprintf(stdout, "sweep %s (engine %s model version %s)\n", version, moe.Name, moe.Version)
	return nil
}
