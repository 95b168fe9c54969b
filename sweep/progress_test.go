package sweep

import (
	"strings"
	"testing"
	"time"
)

func TestLineProgressIsPlain(t *testing.T) {
	var b strings.Builder
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := &LineProgress{W: &b, Every: 5 * time.Second, Now: func() time.Time { return now }}
	p.Start(1000)
	for i := 0; i < 100; i++ {
		now = now.Add(time.Second)
		p.Add(9, 1)
	}
	p.Finish()
	out := b.String()
	if strings.ContainsAny(out, "\r\x1b") {
		t.Fatalf("carriage return or escape in %q", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	// start, one line every 5 s of 100 s, finish
	if len(lines) != 1+20+1 {
		t.Fatalf("%d lines:\n%s", len(lines), out)
	}
	want := "progress: 1000/1000 points (100.0%), 10 points/s, ETA 0s, 100 failed"
	if lines[len(lines)-1] != want {
		t.Fatalf("last line %q, want %q", lines[len(lines)-1], want)
	}
	if lines[1] != "progress: 50/1000 points (5.0%), 10 points/s, ETA 1m35s, 5 failed" {
		t.Fatalf("first periodic line %q", lines[1])
	}
}
