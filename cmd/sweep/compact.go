package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sweep-dse/sweep/dataset"
)

// compactOptions are the flags of `sweep compact`.
type compactOptions struct {
	Target string
	Wait   time.Duration
	DryRun bool
}

func runCompact(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	var o compactOptions
	fs := newFlags("compact", "compact DIR [--target-size SIZE] [--wait DURATION] [--dry-run]\n\n"+
		"Merges the dataset's small part files (many shards, frequent flushes) into\n"+
		"larger ones. Rows are copied unchanged; parts merge only with parts of the\n"+
		"same study text, engine and versions. Each merge is verified (row count and\n"+
		"point IDs) before its inputs are deleted, and a journal makes it safe to\n"+
		"interrupt at any moment: sweep run and sweep status never see a row twice\n"+
		"or miss one, and the next compact finishes an interrupted one. It does not\n"+
		"run while a sweep run uses the folder.", stdout)
	fs.StringVar(&o.Target, "target-size", "128MiB", "merge parts smaller than `SIZE` into parts of up to about SIZE (bytes, or with KiB/MiB/GiB)")
	fs.DurationVar(&o.Wait, "wait", 0, "wait up to this long for running sweeps to finish with the folder (0: fail at once)")
	fs.BoolVar(&o.DryRun, "dry-run", false, "print the merges it would do, change nothing")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return handleHelp(fs, err)
	}
	if len(pos) != 1 {
		return usageErr("compact: want exactly one dataset folder (see `sweep compact --help`)")
	}
	target, err := parseSize(o.Target)
	if err != nil {
		return usageErr("--target-size: " + err.Error())
	}
	if o.Wait < 0 {
		return usageErr("--wait: must not be negative")
	}
	return compact(ctx, stdout, pos[0], dataset.CompactOptions{TargetSize: target, Wait: o.Wait, DryRun: o.DryRun})
}

func compact(ctx context.Context, w io.Writer, dir string, o dataset.CompactOptions) error {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return usageErr(fmt.Sprintf("compact: %s is not a dataset folder", dir))
	}
	t0 := time.Now()
	res, err := dataset.Compact(ctx, dir, o)
	if res != nil {
		if res.Recovered != "" {
			fmt.Fprintf(w, "compact: %s\n", res.Recovered)
		}
		for _, p := range res.Unreadable {
			fmt.Fprintf(w, "compact: warning: %s is unreadable and was left alone (the next sweep run moves it to quarantine/)\n", p)
		}
		verb := "merged"
		if o.DryRun {
			verb = "would merge"
		}
		var rows, in, out int64
		for _, m := range res.Merges {
			rows += m.Rows
			in += m.InputBytes
			out += m.OutBytes
			fmt.Fprintf(w, "compact: %s %d parts (%s) into %s\n", verb, len(m.Inputs), bytesHuman(m.InputBytes), filepath.Base(m.Output))
		}
		switch {
		case err != nil:
		case len(res.Merges) == 0:
			fmt.Fprintf(w, "compact: %s: nothing to merge (%d parts)\n", dir, res.PartsBefore)
		case o.DryRun:
			fmt.Fprintf(w, "compact: %s: %d parts would become %d (dry run, nothing changed)\n", dir, res.PartsBefore, res.PartsAfter)
		default:
			fmt.Fprintf(w, "compact: %s: %d parts -> %d in %s\n", dir, res.PartsBefore, res.PartsAfter, time.Since(t0).Round(time.Millisecond))
		}
	}
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return &InterruptedError{Msg: fmt.Sprintf("compact of %s interrupted; every row is still there, once; run sweep compact %s again to finish", dir, dir)}
	}
	return err
}

// parseSize parses a byte count: "1000", "64KiB", "128MiB", "2GiB" (also
// K/M/G, KB/MB/GB taken as powers of 1024).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mul := int64(1)
	for _, u := range []struct {
		suffix string
		mul    int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mul = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mul
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 1 || n > (1<<62)/mul {
		return 0, fmt.Errorf("want a positive size like 128MiB, got %q", s)
	}
	return n * mul, nil
}
