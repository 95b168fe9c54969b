package main

import (
	"context"
	"fmt"
	"io"

	"github.com/sweep-dse/sweep/engine/moe"
)

func runVersion(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	fmt.Fprintf(stdout, "sweep %s (engine %s model version %s)\n", version, moe.Name, moe.Version)
	return nil
}
