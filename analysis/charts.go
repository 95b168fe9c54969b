package analysis

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/sweep-dse/sweep/engine"
)

// Chart kinds.
const (
	KindLine    = "line"
	KindPareto  = "pareto"
	KindHeatmap = "heatmap"
)

// Chart is one rendered chart, written as NAME.png and NAME.svg.
type Chart struct {
	Name    string   // file stem, unique in the report
	Kind    string   // KindLine, KindPareto or KindHeatmap
	Title   string   // shown above the chart
	XLabel  string   // x axis label, with unit
	YLabel  string   // y axis label, with unit
	ZLabel  string   // heatmap colour scale label, with unit
	Series  []string // legend entries, one per series drawn
	Caption string   // what the chart shows and how rows were combined
	PNG     []byte
	SVG     []byte
}

// Chart sizes: 7 x 4.4 inches, PNG at 128 dots per inch (896 x 563 pixels).
const (
	chartW   = 7 * vg.Inch
	chartH   = 4.4 * vg.Inch
	chartDPI = 128
)

var fontOnce sync.Once

// useSans makes plots use the embedded Liberation Sans font.
func useSans() {
	fontOnce.Do(func() {
		plot.DefaultFont = font.Font{Typeface: "Liberation", Variant: "Sans"}
		plotter.DefaultFont = plot.DefaultFont
	})
}

// seriesColors is a colour-blind-safe qualitative palette (Okabe-Ito).
var seriesColors = []color.Color{
	color.RGBA{0, 114, 178, 255},   // blue
	color.RGBA{213, 94, 0, 255},    // vermillion
	color.RGBA{0, 158, 115, 255},   // bluish green
	color.RGBA{204, 121, 167, 255}, // reddish purple
	color.RGBA{230, 159, 0, 255},   // orange
	color.RGBA{86, 180, 233, 255},  // sky blue
	color.RGBA{0, 0, 0, 255},       // black
	color.RGBA{240, 228, 66, 255},  // yellow
}

// Render draws the report's charts into memory (PNG and SVG).
func (r *Report) Render() error {
	useSans()
	r.Charts = nil
	for _, ld := range r.lines {
		if ld.overflow {
			r.Notes = append(r.Notes, fmt.Sprintf("charts against %s left out: more than %d (x, series) groups", ld.x, maxLineGroups))
			continue
		}
		for i := range r.Options.Metrics {
			c, err := r.lineChart(ld, i)
			if err != nil {
				return err
			}
			if c != nil {
				r.Charts = append(r.Charts, c)
			}
		}
	}
	if len(r.Options.Objectives) >= 2 {
		c, err := r.paretoChart()
		if err != nil {
			return err
		}
		if c != nil {
			r.Charts = append(r.Charts, c)
		}
	}
	for _, hd := range r.heats {
		if hd.overflow {
			r.Notes = append(r.Notes, fmt.Sprintf("heatmaps of %s x %s left out: more than %d cells", hd.x, hd.y, maxHeatCells))
			continue
		}
		for i := range hd.metrics {
			c, err := r.heatChart(hd, i)
			if err != nil {
				return err
			}
			if c != nil {
				r.Charts = append(r.Charts, c)
			}
		}
	}
	return nil
}

// WriteCharts writes every chart as NAME.png and NAME.svg into dir. In a
// folder that already holds a report (report.html), the charts of that
// report go first, so that none of them is taken for this one's.
func (r *Report) WriteCharts(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, HTMLName)); err == nil {
		for _, pat := range []string{"line-*", "heatmap-*", "pareto-*"} {
			for _, ext := range []string{".png", ".svg"} {
				old, _ := filepath.Glob(filepath.Join(dir, pat+ext))
				for _, f := range old {
					if err := os.Remove(f); err != nil {
						return err
					}
				}
			}
		}
	}
	for _, c := range r.Charts {
		if err := os.WriteFile(filepath.Join(dir, c.Name+".png"), c.PNG, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, c.Name+".svg"), c.SVG, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (r *Report) label(name string) string {
	if c, ok := r.Dataset.Column(name); ok {
		return c.Label()
	}
	return name
}

// others lists the axes a chart point combines rows over.
func (r *Report) others(used ...string) []string {
	var out []string
	for _, a := range r.Axes {
		if !slices.Contains(used, a.Column.Name) && len(a.Values) > 1 {
			out = append(out, a.Column.Name)
		}
	}
	return out
}

func (r *Report) combined(used ...string) string {
	o := r.others(used...)
	if len(o) == 0 {
		return ""
	}
	return fmt.Sprintf("%s over %s", r.Options.Agg, strings.Join(o, ", "))
}

// lineChart draws metric i against ld.x, one line per series value.
func (r *Report) lineChart(ld *lineData, i int) (*Chart, error) {
	metric := r.Options.Metrics[i]
	type pt struct{ x, y float64 }
	bySeries := map[engine.Value][]pt{}
	infinite := 0
	for k, g := range ld.groups {
		x, ok := asFloat(k.a)
		y := g.get(i, r.Options.Agg)
		if !ok || math.IsNaN(y) {
			continue
		}
		if math.IsInf(x, 0) || math.IsInf(y, 0) {
			infinite++ // a plot cannot place it
			continue
		}
		bySeries[k.b] = append(bySeries[k.b], pt{x, y})
	}
	if infinite > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d points of %s against %s are infinite and not drawn", infinite, metric, ld.x))
	}
	if len(bySeries) == 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("no %s values to chart against %s", metric, ld.x))
		return nil, nil
	}
	keys := make([]engine.Value, 0, len(bySeries))
	for k := range bySeries {
		keys = append(keys, k)
	}
	declared := r.Dataset.AxisValues(ld.series)
	slices.SortFunc(keys, func(a, b engine.Value) int {
		ia, ib := slices.Index(declared, a), slices.Index(declared, b)
		switch {
		case ia >= 0 && ib >= 0:
			return ia - ib
		case ia >= 0:
			return -1
		case ib >= 0:
			return 1
		}
		return compareValues(a, b)
	})
	c := &Chart{
		Name:   "line-" + metric + "-vs-" + ld.x,
		Kind:   KindLine,
		XLabel: r.label(ld.x),
		YLabel: r.label(metric),
	}
	c.Title = fmt.Sprintf("%s vs %s", metric, ld.x)
	if ld.series != "" {
		c.Title += " per " + ld.series
	}
	if s := r.combined(ld.x, ld.series); s != "" {
		c.Caption = fmt.Sprintf("Each point is the %s of %s.", s, metric)
	} else {
		c.Caption = "One point per row."
	}
	var xs, ys []float64
	var lines []lineSeries
	for si, k := range keys {
		pts := bySeries[k]
		slices.SortFunc(pts, func(a, b pt) int { return cmpFloat(a.x, b.x) })
		xy := make(plotter.XYs, len(pts))
		for j, p := range pts {
			xy[j] = plotter.XY{X: p.x, Y: p.y}
			xs = append(xs, p.x)
			ys = append(ys, p.y)
		}
		name := k.String()
		if ld.series == "" {
			name = metric
		} else if !k.IsSet() {
			name = "(null)"
		}
		c.Series = append(c.Series, name)
		// a new marker once the colours come round, so no two series look alike
		lines = append(lines, lineSeries{name: name, xy: xy, color: seriesColors[si%len(seriesColors)], shape: si / len(seriesColors)})
	}
	legendTitle := ""
	if ld.series != "" {
		legendTitle = ld.series
	}
	err := c.draw(func(dc draw.Canvas) error {
		p := newPlot(c.Title, c.XLabel, c.YLabel)
		setScale(&p.X, xs, true)
		setScale(&p.Y, ys, false)
		leg := plot.NewLegend()
		leg.TextStyle.Font.Size = vg.Points(9)
		if legendTitle != "" {
			leg.Add(legendTitle)
		}
		for _, s := range lines {
			l, sc, err := plotter.NewLinePoints(s.xy)
			if err != nil {
				return err
			}
			l.Color = s.color
			l.Width = vg.Points(1.6)
			sc.Color = s.color
			sc.Shape = shapes[s.shape%len(shapes)]
			sc.Radius = vg.Points(3)
			p.Add(l, sc)
			leg.Add(s.name, l, sc)
		}
		drawWithLegend(dc, p, leg)
		return nil
	})
	return c, err
}

type lineSeries struct {
	name  string
	xy    plotter.XYs
	color color.Color
	shape int
}

var shapes = []draw.GlyphDrawer{
	draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.PlusGlyph{},
	draw.CrossGlyph{}, draw.RingGlyph{}, draw.BoxGlyph{}, draw.PyramidGlyph{},
}

// paretoChart plots a sample of all points and the whole front over the
// first two objectives.
func (r *Report) paretoChart() (*Chart, error) {
	ox, oy := r.Options.Objectives[0], r.Options.Objectives[1]
	if len(r.frontK) == 0 {
		r.Notes = append(r.Notes, "no Pareto front: no ok row has values for every objective")
		return nil, nil
	}
	c := &Chart{
		Name:   "pareto-" + ox.Metric + "-" + oy.Metric,
		Kind:   KindPareto,
		Title:  fmt.Sprintf("Pareto front: %s %s, %s %s", dir(ox), ox.Metric, dir(oy), oy.Metric),
		XLabel: r.label(ox.Metric),
		YLabel: r.label(oy.Metric),
	}
	n := r.seen
	sampleName := fmt.Sprintf("all points (%d)", len(r.sample))
	what := fmt.Sprintf("all %d points", len(r.sample))
	if int64(len(r.sample)) < n {
		sampleName = fmt.Sprintf("sampled points (%d)", len(r.sample))
		what = fmt.Sprintf("a uniform sample of %d of the %d points", len(r.sample), n)
	}
	frontName := fmt.Sprintf("Pareto front (%d)", len(r.frontK))
	c.Series = []string{sampleName, frontName}
	c.Caption = fmt.Sprintf("Grey: %s. Red: the non-dominated points", what)
	if len(r.Options.Objectives) > 2 {
		var rest []string
		for _, o := range r.Options.Objectives[2:] {
			rest = append(rest, dir(o)+" "+o.Metric)
		}
		c.Caption += " over all objectives (also " + strings.Join(rest, ", ") + "), drawn in the plane of the first two"
	}
	c.Caption += "."
	all := make(plotter.XYs, 0, len(r.sample))
	var xs, ys []float64
	infinite := 0
	for _, s := range r.sample {
		if math.IsInf(s.x, 0) || math.IsInf(s.y, 0) {
			infinite++ // a plot cannot place it
			continue
		}
		all = append(all, plotter.XY{X: s.x, Y: s.y})
		xs = append(xs, s.x)
		ys = append(ys, s.y)
	}
	fr := make(plotter.XYs, 0, len(r.frontK))
	for _, k := range r.frontK {
		if math.IsInf(k[0], 0) || math.IsInf(k[1], 0) {
			infinite++
			continue
		}
		fr = append(fr, plotter.XY{X: k[0], Y: k[1]})
		xs = append(xs, k[0])
		ys = append(ys, k[1])
	}
	if infinite > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d points of the Pareto chart are infinite and not drawn", infinite))
	}
	slices.SortFunc(fr, func(a, b plotter.XY) int { return cmpFloat(a.X, b.X) })
	red := color.RGBA{200, 30, 30, 255}
	err := c.draw(func(dc draw.Canvas) error {
		p := newPlot(c.Title, c.XLabel, c.YLabel)
		setScale(&p.X, xs, false)
		setScale(&p.Y, ys, false)
		leg := plot.NewLegend()
		leg.TextStyle.Font.Size = vg.Points(9)
		sc, err := plotter.NewScatter(all)
		if err != nil {
			return err
		}
		sc.Color = color.RGBA{150, 150, 150, 255}
		sc.Shape = draw.CircleGlyph{}
		sc.Radius = vg.Points(1.8)
		p.Add(sc)
		leg.Add(sampleName, sc)
		fs, err := plotter.NewScatter(fr)
		if err != nil {
			return err
		}
		fs.Color = red
		fs.Shape = draw.CircleGlyph{}
		fs.Radius = vg.Points(3.5)
		if len(r.Options.Objectives) == 2 {
			// the front of two objectives is a staircase
			st, err := plotter.NewLine(fr)
			if err != nil {
				return err
			}
			st.Color = red
			st.Width = vg.Points(1.2)
			// sorted by x, the edge of the dominated region runs level
			// from each point to the next x (minimised x) or from the
			// previous x (maximised x)
			st.StepStyle = plotter.PostStep
			if ox.Max {
				st.StepStyle = plotter.PreStep
			}
			p.Add(st)
			leg.Add(frontName, st, fs)
		} else {
			leg.Add(frontName, fs)
		}
		p.Add(fs)
		drawWithLegend(dc, p, leg)
		return nil
	})
	return c, err
}

// heatChart draws heatmap metric i over hd.x (columns) and hd.y (rows).
func (r *Report) heatChart(hd *heatData, i int) (*Chart, error) {
	metric := hd.metrics[i]
	var xv, yv []engine.Value
	seenX, seenY := map[engine.Value]bool{}, map[engine.Value]bool{}
	for k := range hd.cells {
		if !seenX[k.a] {
			seenX[k.a] = true
			xv = append(xv, k.a)
		}
		if !seenY[k.b] {
			seenY[k.b] = true
			yv = append(yv, k.b)
		}
	}
	if len(xv) == 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("no heatmap of %s: no rows", metric))
		return nil, nil
	}
	slices.SortFunc(xv, r.axisOrder(hd.x))
	slices.SortFunc(yv, r.axisOrder(hd.y))
	g := &grid{z: make([][]float64, len(xv))}
	lo, hi := math.Inf(1), math.Inf(-1)
	infinite := 0
	for ci, x := range xv {
		g.z[ci] = make([]float64, len(yv))
		for ri, y := range yv {
			v := math.NaN()
			if a := hd.cells[groupKey{x, y}]; a != nil {
				v = a.get(i, r.Options.Agg)
			}
			if math.IsInf(v, 0) {
				infinite++
				v = math.NaN() // a colour scale cannot place it
			}
			g.z[ci][ri] = v
			if !math.IsNaN(v) {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	if infinite > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d cells of the heatmap of %s are infinite and left blank", infinite, metric))
	}
	if math.IsInf(lo, 1) {
		r.Notes = append(r.Notes, fmt.Sprintf("no heatmap of %s: no finite values", metric))
		return nil, nil
	}
	// colours on a log scale when positive values span a factor of 20
	logColor := lo > 0 && hi/lo >= 20
	cv := func(v float64) float64 {
		if logColor {
			return math.Log10(v)
		}
		return v
	}
	clo, chi := cv(lo), cv(hi)
	if clo == chi {
		clo, chi = clo-0.5*math.Abs(clo)-0.5, chi+0.5*math.Abs(chi)+0.5
	}
	cg := &grid{z: make([][]float64, len(g.z))}
	for ci := range g.z {
		cg.z[ci] = make([]float64, len(g.z[ci]))
		for ri, v := range g.z[ci] {
			cg.z[ci][ri] = cv(v)
		}
	}
	c := &Chart{
		Name:   "heatmap-" + metric + "-" + hd.x + "-" + hd.y,
		Kind:   KindHeatmap,
		Title:  fmt.Sprintf("%s over %s x %s", metric, hd.x, hd.y),
		XLabel: r.label(hd.x),
		YLabel: r.label(hd.y),
		ZLabel: r.label(metric),
	}
	if s := r.combined(hd.x, hd.y); s != "" {
		c.Caption = fmt.Sprintf("Each cell is the %s of %s; blank cells have no rows.", s, metric)
	} else {
		c.Caption = "Each cell is one row; blank cells have no rows."
	}
	if logColor {
		c.Caption += " Colours follow a log scale."
	}
	cmap := moreland.SmoothBlueRed()
	cmap.SetMin(clo)
	cmap.SetMax(chi)
	pal := cmap.Palette(255)
	err := c.draw(func(dc draw.Canvas) error {
		p := newPlot(c.Title, c.XLabel, c.YLabel)
		h := plotter.NewHeatMap(cg, pal)
		h.Min, h.Max = clo, chi
		h.NaN = color.White
		p.Add(h)
		p.X.Tick.Marker = categoryTicks(xv)
		p.Y.Tick.Marker = categoryTicks(yv)
		p.X.Padding, p.Y.Padding = 0, 0
		p.X.Min, p.X.Max = -0.5, float64(len(xv))-0.5
		p.Y.Min, p.Y.Max = -0.5, float64(len(yv))-0.5
		// cell labels, dark or light against the cell colour
		if len(xv)*len(yv) <= 400 {
			var dark, light plotter.XYLabels
			for ci := range xv {
				for ri := range yv {
					v := g.z[ci][ri]
					if math.IsNaN(v) {
						continue
					}
					pt := plotter.XY{X: float64(ci), Y: float64(ri)}
					col, _ := cmap.At(cv(v))
					if luminance(col) < 0.45 {
						light.XYs = append(light.XYs, pt)
						light.Labels = append(light.Labels, compact(v))
					} else {
						dark.XYs = append(dark.XYs, pt)
						dark.Labels = append(dark.Labels, compact(v))
					}
				}
			}
			for _, set := range []struct {
				l   plotter.XYLabels
				col color.Color
			}{{dark, color.Black}, {light, color.White}} {
				if len(set.l.XYs) == 0 {
					continue
				}
				lb, err := plotter.NewLabels(set.l)
				if err != nil {
					return err
				}
				for k := range lb.TextStyle {
					lb.TextStyle[k].Color = set.col
					lb.TextStyle[k].Font.Size = vg.Points(8)
					lb.TextStyle[k].XAlign = draw.XCenter
					lb.TextStyle[k].YAlign = draw.YCenter
				}
				p.Add(lb)
			}
		}
		// colour bar on the right
		bar := plot.New()
		bar.Title.Text = ""
		bar.X.Tick.Marker = plot.ConstantTicks(nil)
		bar.HideX()
		bar.Y.Label.Text = c.ZLabel
		bar.Y.Label.TextStyle.Font.Size = vg.Points(10)
		bar.Y.Tick.Marker = compactTicks{plot.DefaultTicks{}}
		if logColor {
			bar.Y.Tick.Marker = log10Ticks{}
		}
		bar.Add(&plotter.ColorBar{ColorMap: cmap, Vertical: true})
		barW := vg.Points(80)
		main := draw.Crop(dc, 0, -barW-vg.Points(8), 0, 0)
		side := draw.Crop(dc, dc.Max.X-dc.Min.X-barW, -vg.Points(10), vg.Points(22), -vg.Points(22))
		p.Draw(main)
		bar.Draw(side)
		return nil
	})
	return c, err
}

func (r *Report) axisOrder(axis string) func(a, b engine.Value) int {
	declared := r.Dataset.AxisValues(axis)
	return func(a, b engine.Value) int {
		ia, ib := slices.Index(declared, a), slices.Index(declared, b)
		if ia >= 0 && ib >= 0 && !(a.Kind == engine.Int || a.Kind == engine.Float) {
			return ia - ib
		}
		return compareValues(a, b)
	}
}

// grid is a heatmap's values on integer coordinates: column c, row r.
type grid struct{ z [][]float64 }

// Dims implements plotter.GridXYZ.
func (g *grid) Dims() (c, r int) { return len(g.z), len(g.z[0]) }

// Z implements plotter.GridXYZ.
func (g *grid) Z(c, r int) float64 { return g.z[c][r] }

// X implements plotter.GridXYZ.
func (g *grid) X(c int) float64 { return float64(c) }

// Y implements plotter.GridXYZ.
func (g *grid) Y(r int) float64 { return float64(r) }

func categoryTicks(vals []engine.Value) plot.ConstantTicks {
	t := make(plot.ConstantTicks, len(vals))
	for i, v := range vals {
		t[i] = plot.Tick{Value: float64(i), Label: v.String()}
	}
	return t
}

func luminance(c color.Color) float64 {
	r, g, b, _ := c.RGBA()
	return (0.2126*float64(r) + 0.7152*float64(g) + 0.0722*float64(b)) / 65535
}

// newPlot makes a plot with a title and labelled axes.
func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(12)
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.X.Label.TextStyle.Font.Size = vg.Points(10)
	p.Y.Label.TextStyle.Font.Size = vg.Points(10)
	p.Add(plotter.NewGrid())
	return p
}

// setScale picks a log scale for positive values that span a factor of
// 20 or more, or (x only) that form a geometric series such as 64, 128,
// 256, 512; and marks the x values themselves as ticks when they are few.
func setScale(a *plot.Axis, vals []float64, isX bool) {
	lo, hi := math.Inf(1), math.Inf(-1)
	distinct := map[float64]bool{}
	for _, v := range vals {
		lo, hi = min(lo, v), max(hi, v)
		distinct[v] = true
	}
	sorted := make([]float64, 0, len(distinct))
	for v := range distinct {
		sorted = append(sorted, v)
	}
	slices.Sort(sorted)
	logScale := lo > 0 && (hi/lo >= 20 || (isX && geometric(sorted)))
	if logScale {
		a.Scale = plot.LogScale{}
		a.Tick.Marker = logTicks{}
		a.Min, a.Max = lo/1.15, hi*1.15
	} else {
		a.Tick.Marker = compactTicks{plot.DefaultTicks{}}
	}
	if isX && len(sorted) <= 12 {
		ticks := make(plot.ConstantTicks, len(sorted))
		for i, v := range sorted {
			ticks[i] = plot.Tick{Value: v, Label: compact(v)}
		}
		a.Tick.Marker = ticks
	}
}

// logTicks marks 1..9 x 10^k, labelling the powers of ten, and also 2 and
// 5 x 10^k when the range holds fewer than three powers of ten.
type logTicks struct{}

// Ticks implements plot.Ticker.
func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	if lo <= 0 || hi <= lo {
		return nil
	}
	k0, k1 := int(math.Floor(math.Log10(lo))), int(math.Ceil(math.Log10(hi)))
	powers := 0
	for k := k0; k <= k1; k++ {
		if p := math.Pow(10, float64(k)); p >= lo && p <= hi {
			powers++
		}
	}
	// over many decades, every step-th power only, labelled, and no minor
	// ticks (hundreds of decades would fill the axis)
	step := max(1, (k1-k0+maxLogLabels-1)/maxLogLabels)
	var out []plot.Tick
	for k := k0; k <= k1; k++ {
		p := math.Pow(10, float64(k))
		if step > 1 {
			if k%step == 0 && p >= lo && p <= hi {
				out = append(out, plot.Tick{Value: p, Label: compact(p)})
			}
			continue
		}
		for m := 1; m <= 9; m++ {
			v := float64(m) * p
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || (powers < 3 && (m == 2 || m == 5)) {
				t.Label = compact(v)
			}
			out = append(out, t)
		}
	}
	return out
}

// maxLogLabels bounds the labelled powers of ten on a log axis.
const maxLogLabels = 12

// log10Ticks labels an axis whose values are log10 of the quantity, with
// the quantity's values (as logTicks places them).
type log10Ticks struct{}

// Ticks implements plot.Ticker.
func (log10Ticks) Ticks(lo, hi float64) []plot.Tick {
	ts := logTicks{}.Ticks(math.Pow(10, lo), math.Pow(10, hi))
	for i := range ts {
		ts[i].Value = math.Log10(ts[i].Value)
	}
	return ts
}

// geometric reports whether three or more sorted positive values grow by
// one constant factor (within 1 %) of at least 1.5.
func geometric(v []float64) bool {
	if len(v) < 3 || v[0] <= 0 {
		return false
	}
	f := v[1] / v[0]
	if f < 1.5 {
		return false
	}
	for i := 2; i < len(v); i++ {
		if math.Abs(v[i]/v[i-1]/f-1) > 0.01 {
			return false
		}
	}
	return true
}

// compactTicks relabels another ticker's labelled ticks compactly.
type compactTicks struct{ plot.Ticker }

// Ticks implements plot.Ticker.
func (t compactTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := t.Ticker.Ticks(lo, hi)
	// the fewest significant digits (3 to 8) that tell the labels apart
	for digits := 3; ; digits++ {
		seen := map[string]bool{}
		clash := false
		for i := range ts {
			if ts[i].Label != "" {
				ts[i].Label = compactDigits(ts[i].Value, digits)
				clash = clash || seen[ts[i].Label]
				seen[ts[i].Label] = true
			}
		}
		if !clash || digits == 8 {
			return ts
		}
	}
}

// compact formats a number in at most about 5 characters: 12.3k, 4.19M,
// 0.0108, 2.5e-07.
func compact(v float64) string { return compactDigits(v, 3) }

// compactDigits is compact with the given significant digits.
func compactDigits(v float64, digits int) string {
	a := math.Abs(v)
	switch {
	case v == 0:
		return "0"
	case a >= 1e15 || a < 1e-4:
		return strconv.FormatFloat(v, 'g', digits, 64)
	case a >= 1e3:
		for _, u := range []struct {
			f float64
			s string
		}{{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
			if a >= u.f {
				return strconv.FormatFloat(v/u.f, 'g', digits, 64) + u.s
			}
		}
	}
	return strconv.FormatFloat(v, 'g', digits, 64)
}

// drawWithLegend draws p with the legend in a column on its right.
func drawWithLegend(dc draw.Canvas, p *plot.Plot, leg plot.Legend) {
	leg.Top, leg.Left = true, true
	rect := leg.Rectangle(dc)
	w := rect.Max.X - rect.Min.X + vg.Points(16)
	side := draw.Crop(dc, dc.Max.X-dc.Min.X-w+vg.Points(8), -vg.Points(4), 0, -vg.Points(30))
	leg.Draw(side)
	p.Draw(draw.Crop(dc, 0, -w, 0, 0))
}

// draw renders the chart through fn into PNG and SVG.
func (c *Chart) draw(fn func(dc draw.Canvas) error) error {
	img := vgimg.NewWith(vgimg.UseWH(chartW, chartH), vgimg.UseDPI(chartDPI))
	if err := fn(draw.New(img)); err != nil {
		return fmt.Errorf("chart %s: %w", c.Name, err)
	}
	var pb bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&pb); err != nil {
		return fmt.Errorf("chart %s: %w", c.Name, err)
	}
	sv := vgsvg.New(chartW, chartH)
	if err := fn(draw.New(sv)); err != nil {
		return fmt.Errorf("chart %s: %w", c.Name, err)
	}
	var sb bytes.Buffer
	if _, err := sv.WriteTo(&sb); err != nil {
		return fmt.Errorf("chart %s: %w", c.Name, err)
	}
	c.PNG, c.SVG = pb.Bytes(), sb.Bytes()
	return nil
}

func asFloat(v engine.Value) (float64, bool) {
	switch v.Kind {
	case engine.Int:
		return float64(v.I), true
	case engine.Float:
		return v.F, true
	}
	return 0, false
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
