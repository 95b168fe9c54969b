package sweep

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// benchStudy is the seed model with axes wide enough for 100,000 points.
const benchStudy = `[study]
name = "bench"
[base]
model = "gpt3-7B"
n_layers = 1
[axes]
num_experts = {from = 1, to = 125, step = 1}
batch_size = {from = 64, to = 512, step = 64}
seq_len = {from = 64, to = 6400, step = 64}
`

// BenchmarkRun100k runs a 100k-point study end to end (expansion, engine,
// runner, Parquet writer) and reports points per second.
func BenchmarkRun100k(b *testing.B) {
	s, err := Parse("bench.toml", benchStudy)
	if err != nil {
		b.Fatal(err)
	}
	points := s.Combinations()
	for _, discard := range []bool{false, true} {
		name := "write"
		if discard {
			name = "discard"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				dir, _ := os.MkdirTemp("", "sweep-bench")
				b.StartTimer()
				if _, err := Run(context.Background(), s, RunOptions{Out: filepath.Join(dir, "ds"), Jobs: 2, Discard: discard}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				os.RemoveAll(dir)
				b.StartTimer()
			}
			b.ReportMetric(float64(points)*float64(b.N)/b.Elapsed().Seconds(), "points/s")
		})
	}
}
