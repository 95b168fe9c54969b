package sweep

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Progress receives a run's progress. Implementations must be safe for
// concurrent use.
type Progress interface {
	Start(total int64)
	Add(ok, failed int64)
	Finish()
}

// NoProgress discards progress.
type NoProgress struct{}

// Start implements Progress.
func (NoProgress) Start(int64) {}

// Add implements Progress.
func (NoProgress) Add(int64, int64) {}

// Finish implements Progress.
func (NoProgress) Finish() {}

// LineProgress prints one plain line every Every (done/total, rate, ETA,
// failed), fit for CI and Slurm logs: no carriage returns, no escapes.
type LineProgress struct {
	W     io.Writer
	Every time.Duration
	Now   func() time.Time // for tests; nil = time.Now

	mu                sync.Mutex
	total, ok, failed int64
	start, last       time.Time
}

func (p *LineProgress) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Start implements Progress.
func (p *LineProgress) Start(total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total = total
	p.start = p.now()
	p.last = p.start
	fmt.Fprintf(p.W, "progress: 0/%d points\n", total)
}

// Add implements Progress.
func (p *LineProgress) Add(ok, failed int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ok += ok
	p.failed += failed
	if now := p.now(); now.Sub(p.last) >= p.Every {
		p.last = now
		p.line(now)
	}
}

func (p *LineProgress) line(now time.Time) {
	done := p.ok + p.failed
	el := now.Sub(p.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(done) / el
	}
	eta := "?"
	if rate > 0 {
		eta = time.Duration(float64(p.total-done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(done) / float64(p.total)
	}
	fmt.Fprintf(p.W, "progress: %d/%d points (%.1f%%), %.0f points/s, ETA %s, %d failed\n", done, p.total, pct, rate, eta, p.failed)
}

// Finish implements Progress.
func (p *LineProgress) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.line(p.now())
}

// BarProgress draws a progress bar with rate and ETA on a terminal.
type BarProgress struct {
	W      io.Writer
	bar    *progressbar.ProgressBar
	mu     sync.Mutex
	failed int64
}

// Start implements Progress.
func (p *BarProgress) Start(total int64) {
	p.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(p.W),
		progressbar.OptionSetDescription("points"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("points"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionFullWidth(),
	)
}

// Add implements Progress.
func (p *BarProgress) Add(ok, failed int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if failed > 0 {
		p.failed += failed
		p.bar.Describe(fmt.Sprintf("points (%d failed)", p.failed))
	}
	p.bar.Add64(ok + failed)
}

// Finish implements Progress.
func (p *BarProgress) Finish() {
	p.bar.Finish()
	fmt.Fprintln(p.W)
}
