package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// benchStudy is a real design space of about a million points: the seed
// study's axes, finer batch sizes, top-8, and repeats (routing seeds).
const benchStudy = `[study]
name = "bench-report"
engine = "moe"
repeats = %d
where = ["top_k <= num_experts"]

[base]
model = "gpt3-7B"
hardware = "neupims"

[axes]
num_experts = [8, 16, 32, 64, 128]
moe_ffn_scaling = ["balanced", "compute", "capacity"]
batch_size = {from = 32, to = 512, step = 32}
top_k = [1, 2, 4, 8]
`

// benchDataset runs the benchmark study with the given repeats (960 points
// each) into the test binary's temporary folder, once per process.
var benchDatasets = map[int]string{}

func benchDataset(b *testing.B, repeats int) string {
	b.Helper()
	if dir, ok := benchDatasets[repeats]; ok {
		return dir
	}
	base := filepath.Dir(sweepBin) // removed by TestMain
	study := filepath.Join(base, fmt.Sprintf("bench-%d.toml", repeats))
	if err := os.WriteFile(study, fmt.Appendf(nil, benchStudy, repeats), 0o644); err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(base, fmt.Sprintf("bench-%d", repeats))
	t0 := time.Now()
	cmd := exec.Command(sweepBin, "run", study, "--out", dir, "--progress", "none", "--quiet")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("building the dataset: %v\n%s", err, out)
	}
	fmt.Printf("dataset of %d rows built in %s\n", repeats*960, time.Since(t0).Round(time.Millisecond))
	benchDatasets[repeats] = dir
	return dir
}

// BenchmarkReport runs `sweep report` as a child process on datasets of
// 250k and 1M rows and reports its wall time and peak resident memory
// (the child's maxrss), so that memory staying flat as rows grow shows the
// report streams. Run with -benchtime 1x: building the datasets takes a
// while (they are built once per process, outside the timing).
func BenchmarkReport(b *testing.B) {
	for _, c := range []struct {
		name    string
		repeats int
	}{{"rows=250k", 261}, {"rows=1M", 1042}} {
		b.Run(c.name, func(b *testing.B) {
			dir := benchDataset(b, c.repeats)
			rows := float64(c.repeats * 960)
			out := b.TempDir()
			var maxRSS int64
			b.ResetTimer()
			for range b.N {
				cmd := exec.Command(sweepBin, "report", dir, "-o", out, "--quiet")
				if msg, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("report: %v\n%s", err, msg)
				}
				if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
					maxRSS = max(maxRSS, ru.Maxrss) // KiB on Linux
				}
			}
			b.StopTimer()
			perOp := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64(maxRSS)/1024, "peak-RSS-MiB")
			b.ReportMetric(rows/perOp.Seconds(), "rows/s")
			fmt.Printf("sweep report on %.0f rows: %s, peak RSS %.0f MiB\n", rows, perOp.Round(time.Millisecond), float64(maxRSS)/1024)
		})
	}
}
