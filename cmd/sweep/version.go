package main

import (
	"context"
	"fmt"
	"io"

	"github.com/sweep-dse/sweep/engine/moe"
)

func runVersion(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	fs := newFlags("version", "version\n\nPrints the tool's version and the embedded engine's model version.", stdout)
	if _, err := parseFlags(fs, args); err != nil {
		return handleHelp(fs, err)
	}
	fmt.Fprintf(stdout, "sweep %s (engine %s model version %s)\n", version, moe.Name, moe.Version)
	return nil
}
