package analysis

import (
	"flag"
	"image/color"
	"os"
	"testing"
)

var screenshot = flag.String("screenshot", "", "PNG screenshot of a rendered report.html to check (see .ci/chromium-test.sh)")

// TestScreenshot checks a browser's screenshot of report.html is not
// blank: mostly but not only white, many colours, and the first three
// series colours of the line charts visible (so the embedded charts were
// decoded and drawn, not broken-image icons). It runs only when given a
// screenshot with -screenshot.
func TestScreenshot(t *testing.T) {
	if *screenshot == "" {
		t.Skip("no -screenshot given")
	}
	data, err := os.ReadFile(*screenshot)
	if err != nil {
		t.Fatal(err)
	}
	img, colors, nonWhite := pngInfo(t, *screenshot, data)
	b := img.Bounds()
	total := b.Dx() * b.Dy()
	frac := float64(nonWhite) / float64(total)
	t.Logf("%s: %dx%d, %d colours, %.1f %% non-white", *screenshot, b.Dx(), b.Dy(), len(colors), 100*frac)
	if b.Dx() < 800 || b.Dy() < 800 {
		t.Errorf("screenshot is only %dx%d", b.Dx(), b.Dy())
	}
	if frac < 0.03 || frac > 0.9 || len(colors) < 64 {
		t.Errorf("screenshot looks blank or broken: %d colours, %.1f %% non-white", len(colors), 100*frac)
	}
	near := func(c color.Color) int {
		r0, g0, b0, _ := c.RGBA()
		n := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				r, g, bb, _ := img.At(x, y).RGBA()
				d := absDiff(r>>8, r0>>8) + absDiff(g>>8, g0>>8) + absDiff(bb>>8, b0>>8)
				if d <= 40 {
					n++
				}
			}
		}
		return n
	}
	for i := range 3 {
		if n := near(seriesColors[i]); n < 100 {
			t.Errorf("series colour %s covers only %d pixels: charts not drawn?", hexColor(seriesColors[i]), n)
		}
	}
}

func absDiff(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}
