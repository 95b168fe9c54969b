// Command sweep runs design-space explorations of Mixture-of-Experts
// accelerators: one TOML study file in, a typed Parquet dataset out.
//
// Usage:
//
//	sweep run STUDY [flags]      evaluate every point, resumable
//	sweep plan STUDY             count and preview points, run nothing
//	sweep status DIR             what a dataset holds
//	sweep sim [--set k=v ...]    evaluate one point and print a report
//	sweep params                 list the embedded engine's parameters and metrics
//	sweep models [NAME]          model presets and their parameter counts
//	sweep neupims [NeuPIMs flags] NeuPIMs-compatible front end of the embedded model
//	sweep best|pareto|report DIR first look at a dataset
//	sweep slurm STUDY [flags]    run a study as a Slurm job array, then verify and compact
//	sweep compact DIR            merge small part files (safe to interrupt)
//
// Run `sweep help VERB` for a verb's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/sweep-dse/sweep/engine"
	"github.com/sweep-dse/sweep/sweep"
)

// version is the tool's version, stored in every dataset part.
var version = "0.1.0"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Stdout, os.Stderr, os.Args[1:])
	os.Exit(exitCode(err, os.Stderr))
}

// verb is one subcommand.
type verb struct {
	name  string
	short string
	run   func(ctx context.Context, stdout, stderr io.Writer, args []string) error
}

func verbs() []verb {
	return []verb{
		{"run", "evaluate a study's points in parallel into a dataset (resumable)", runRun},
		{"plan", "count and preview a study's points without running anything", runPlan},
		{"status", "summarise a dataset: rows, ok/failed/pending, versions, parts", runStatus},
		{"sim", "evaluate one point on the embedded simulator and print a report", runSim},
		{"params", "list the embedded engine's parameters and metrics", runParams},
		{"models", "list model presets, or count one model's parameters (preset or config.json)", runModels},
		{"neupims", "NeuPIMs-compatible front end: NeuPIMs' flags and input files in, its TSV outputs out", runNeuPIMs},
		{"best", "print the best points of a dataset by one metric", runBest},
		{"pareto", "print the Pareto front of a dataset over two or more objectives", runPareto},
		{"report", "summarise a dataset and write charts and an HTML report", runReport},
		{"slurm", "write (and submit) a Slurm job array that runs a study in shards", runSlurm},
		{"compact", "merge a dataset's small part files into larger ones, safely", runCompact},
		{"version", "print the tool and engine versions", runVersion},
	}
}

func run(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version") {
		args = append([]string{"version"}, args[1:]...)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 {
			for _, v := range verbs() {
				if v.name == args[1] {
					return v.run(ctx, stdout, stderr, []string{"--help"})
				}
			}
			return usageErr(fmt.Sprintf("help: unknown verb %q; run `sweep help`", args[1]))
		}
		usage(stdout)
		if len(args) == 0 {
			return usageErr("no verb given")
		}
		return nil
	}
	for _, v := range verbs() {
		if v.name == args[0] {
			return v.run(ctx, stdout, stderr, args[1:])
		}
	}
	return usageErr(fmt.Sprintf("unknown verb %q; run `sweep help`", args[0]))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "sweep: design-space exploration of Mixture-of-Experts accelerators")
	fmt.Fprintln(w, "\nUsage: sweep VERB [arguments] [flags]\n\nVerbs:")
	for _, v := range verbs() {
		fmt.Fprintf(w, "  %-8s %s\n", v.name, v.short)
	}
	fmt.Fprintln(w, "\nRun `sweep VERB --help` for a verb's flags.")
}

// UsageError is a bad command line (exit status 2).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usageErr(msg string) error { return &UsageError{Msg: msg} }

// InterruptedError is a verb other than run stopped by a signal (exit
// status 130); Msg says what state it left and how to finish.
type InterruptedError struct{ Msg string }

func (e *InterruptedError) Error() string { return e.Msg }

// exitCode maps an error to the process exit status, printing it:
// 0 ok, 1 failure, 2 bad input (flags, study files, referenced files),
// 130 interrupted.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "sweep:", err)
	var ue *UsageError
	var ie *sweep.InputError
	var pe *engine.ParamError
	var fe *engine.FileError
	var ir *sweep.Interrupted
	var le *sweep.LockedError
	var se *sweep.ShardingError
	var ce *InterruptedError
	switch {
	case errors.As(err, &ir), errors.As(err, &ce):
		return 130
	case errors.As(err, &ue), errors.As(err, &ie), errors.As(err, &pe), errors.As(err, &fe):
		return 2
	case errors.As(err, &le), errors.As(err, &se):
		return 1
	}
	return 1
}

// parseFlags parses flags that may come before or after positional
// arguments, and returns the positional ones.
//
// Everything after a standalone "--" is positional, verbatim (sweep slurm
// passes it on to sweep run). The usage is printed (to stdout) for --help
// only; a bad flag is a *UsageError, which the caller reports on stderr.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	usage := fs.Usage
	fs.Usage = func() {}
	defer func() { fs.Usage = usage }()
	var rest []string
	if i := slices.Index(args, "--"); i >= 0 {
		args, rest = args[:i], args[i+1:]
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				usage()
				return nil, err
			}
			return nil, usageErr(fmt.Sprintf("%s: %v (see `sweep %s --help`)", fs.Name(), err, fs.Name()))
		}
		args = fs.Args()
		if len(args) == 0 {
			return append(pos, rest...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// newFlags returns a flag set whose --help prints usage to stdout.
func newFlags(name, synopsis string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "Usage: sweep %s\n\n", synopsis)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// handleHelp passes flag.ErrHelp on (the flag package has printed the
// usage already) and other errors unchanged.
func handleHelp(fs *flag.FlagSet, err error) error {
	return err
}
