package analysis

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/sweep-dse/sweep/engine"
	"github.com/sweep-dse/sweep/sweep"
)

// svgInfo is what a test reads back from an SVG chart.
type svgInfo struct {
	texts   []string       // every <text> element's content
	strokes map[string]int // stroke colour (#RRGGBB) -> elements
	fills   map[string]int // fill colour of <path> elements -> elements
}

var (
	strokeRE = regexp.MustCompile(`stroke:(#[0-9A-Fa-f]{6})`)
	fillRE   = regexp.MustCompile(`fill:(#[0-9A-Fa-f]{6})`)
)

// parseSVG parses an SVG document strictly as XML.
func parseSVG(t *testing.T, name string, data []byte) svgInfo {
	t.Helper()
	info := svgInfo{strokes: map[string]int{}, fills: map[string]int{}}
	dec := xml.NewDecoder(bytes.NewReader(data))
	var stack []string
	root := ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: not well-formed SVG: %v", name, err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = el.Name.Local
			}
			stack = append(stack, el.Name.Local)
			for _, a := range el.Attr {
				if a.Name.Local != "style" {
					continue
				}
				if m := strokeRE.FindStringSubmatch(a.Value); m != nil {
					info.strokes[strings.ToUpper(m[1])]++
				}
				if m := fillRE.FindStringSubmatch(a.Value); m != nil && el.Name.Local == "path" {
					info.fills[strings.ToUpper(m[1])]++
				}
			}
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 && stack[len(stack)-1] == "text" {
				info.texts = append(info.texts, strings.TrimSpace(string(el)))
			}
		}
	}
	if root != "svg" {
		t.Fatalf("%s: root element %q, want svg", name, root)
	}
	return info
}

func hexColor(c color.Color) string {
	r, g, b, _ := c.RGBA()
	return fmt.Sprintf("#%02X%02X%02X", r>>8, g>>8, b>>8)
}

// pngInfo decodes a PNG and counts its colours.
func pngInfo(t *testing.T, name string, data []byte) (img image.Image, colors map[string]int, nonWhite int) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: not a PNG: %v", name, err)
	}
	colors = map[string]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := img.At(x, y)
			h := hexColor(c)
			colors[h]++
			if h != "#FFFFFF" {
				nonWhite++
			}
		}
	}
	return img, colors, nonWhite
}

// buildSynthReport writes a synthetic dataset and renders its report.
func buildSynthReport(t *testing.T, n int, o ReportOptions) (*Report, []synthRow, string) {
	t.Helper()
	dir := t.TempDir()
	rows := writeSynth(t, dir, n, 500, 11)
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Build(context.Background(), d, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Render(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "_report")
	if _, err := r.Write(out); err != nil {
		t.Fatal(err)
	}
	return r, rows, out
}

// TestCharts checks every chart of a default report: valid PNG and SVG,
// titled, both axes labelled with units, and the expected series: one line
// per moe_ffn_scaling value, sample and front in the Pareto scatter, one
// filled cell per (experts, batch) pair in the heatmaps.
func TestCharts(t *testing.T) {
	r, rows, out := buildSynthReport(t, 1500, ReportOptions{})
	// defaults from the study: 5 metrics present x 2 numeric axes (num_experts,
	// batch_size), 1 Pareto scatter, 2 heatmaps
	var kinds []string
	for _, c := range r.Charts {
		kinds = append(kinds, c.Kind)
	}
	if n := len(r.Charts); n != 13 {
		t.Fatalf("%d charts (%v), want 13", n, kinds)
	}
	cells := map[[2]int64]bool{}
	for _, row := range rows {
		if row.ok {
			cells[[2]int64{row.experts, row.batch}] = true
		}
	}
	units := map[string]string{"latency_s": "[s]", "tokens_per_s": "[token/s]", "params_layer": "[param]", "act_bytes_moe": "[B]", "link_bytes": "[B]", "batch_size": "[token]"}
	for _, c := range r.Charts {
		pngData, err := os.ReadFile(filepath.Join(out, c.Name+".png"))
		if err != nil {
			t.Fatal(err)
		}
		svgData, err := os.ReadFile(filepath.Join(out, c.Name+".svg"))
		if err != nil {
			t.Fatal(err)
		}
		img, colors, nonWhite := pngInfo(t, c.Name, pngData)
		if b := img.Bounds(); b.Dx() != 896 || b.Dy() != 563 {
			t.Errorf("%s: PNG is %dx%d, want 896x563", c.Name, b.Dx(), b.Dy())
		}
		if frac := float64(nonWhite) / float64(img.Bounds().Dx()*img.Bounds().Dy()); frac < 0.02 || len(colors) < 10 {
			t.Errorf("%s: PNG looks blank: %.3f non-white, %d colours", c.Name, frac, len(colors))
		}
		sv := parseSVG(t, c.Name, svgData)
		for _, want := range []string{c.Title, c.XLabel, c.YLabel} {
			if !slices.Contains(sv.texts, want) {
				t.Errorf("%s: SVG has no text %q; texts: %q", c.Name, want, sv.texts)
			}
		}
		// axis labels carry units
		for _, label := range []string{c.XLabel, c.YLabel, c.ZLabel} {
			name, _, _ := strings.Cut(label, " ")
			if u, ok := units[name]; ok && !strings.HasSuffix(label, " "+u) {
				t.Errorf("%s: label %q lacks the unit %s", c.Name, label, u)
			}
		}
		switch c.Kind {
		case KindLine:
			if want := []string{"balanced", "compute", "capacity"}; !slices.Equal(c.Series, want) {
				t.Errorf("%s: series %v, want %v", c.Name, c.Series, want)
			}
			// each series is drawn in its own colour, in the PNG and the SVG,
			// and no fourth series colour appears
			for i := range 4 {
				h := hexColor(seriesColors[i])
				inSVG, inPNG := sv.strokes[h] > 0, colors[h] >= 20
				if want := i < 3; inSVG != want || inPNG != want {
					t.Errorf("%s: series colour %d (%s): in SVG %v, in PNG %v (%d px), want %v", c.Name, i, h, inSVG, inPNG, colors[h], want)
				}
			}
			for _, s := range c.Series {
				if !slices.Contains(sv.texts, s) {
					t.Errorf("%s: legend lacks %q", c.Name, s)
				}
			}
		case KindPareto:
			if len(c.Series) != 2 || !strings.HasPrefix(c.Series[1], "Pareto front (") {
				t.Errorf("%s: series %v", c.Name, c.Series)
			}
			for _, s := range c.Series {
				if !slices.Contains(sv.texts, s) {
					t.Errorf("%s: legend lacks %q", c.Name, s)
				}
			}
			red := "#C81E1E"
			if sv.strokes[red] == 0 || colors[red] < 20 {
				t.Errorf("%s: the front (red) is not drawn: %d SVG strokes, %d PNG pixels", c.Name, sv.strokes[red], colors[red])
			}
		case KindHeatmap:
			if !slices.Contains(sv.texts, c.ZLabel) || !strings.HasPrefix(c.ZLabel, "latency_s") && !strings.HasPrefix(c.ZLabel, "tokens_per_s") {
				t.Errorf("%s: colour bar label %q missing or unexpected", c.Name, c.ZLabel)
			}
			filled := 0
			for col, n := range sv.fills {
				if col != "#FFFFFF" && col != "#000000" {
					filled += n
				}
			}
			if filled != len(cells) {
				t.Errorf("%s: %d filled cells, want %d", c.Name, filled, len(cells))
			}
		}
	}
}

// TestLineChartValues checks the aggregation behind a line chart: the mean
// of the metric over the rows of each (x, series) group.
func TestLineChartValues(t *testing.T) {
	for _, agg := range []string{"mean", "min", "max"} {
		r, rows, _ := buildSynthReport(t, 800, ReportOptions{Metrics: []string{"tokens_per_s"}, X: []string{"num_experts"}, Heatmap: []string{"none"}, Agg: agg})
		if len(r.lines) != 1 {
			t.Fatalf("%d line groups", len(r.lines))
		}
		type key struct {
			x int64
			s string
		}
		want := map[key][]float64{}
		for _, row := range rows {
			if v, ok := row.num("tokens_per_s"); ok && row.ok {
				k := key{row.experts, row.scaling}
				want[k] = append(want[k], v)
			}
		}
		ld := r.lines[0]
		if len(ld.groups) != len(want) {
			t.Fatalf("%d groups, want %d", len(ld.groups), len(want))
		}
		for k, vs := range want {
			var exp float64
			switch agg {
			case "mean":
				for _, v := range vs {
					exp += v
				}
				exp /= float64(len(vs))
			case "min":
				exp = slices.Min(vs)
			case "max":
				exp = slices.Max(vs)
			}
			g := ld.groups[groupKey{a: engine.IntV(k.x), b: engine.StringV(k.s)}]
			if g == nil {
				t.Fatalf("no group %v", k)
			}
			if got := g.get(0, agg); got < exp-1e-9 || got > exp+1e-9 {
				t.Errorf("%s of group %v = %v, want %v", agg, k, got, exp)
			}
		}
	}
}

// TestReportHTML parses report.html and checks it is self-contained and
// complete: every chart embedded as a PNG data URI equal to its file and
// linked to its SVG and PNG files, the tables, the study text and versions.
func TestReportHTML(t *testing.T) {
	r, _, out := buildSynthReport(t, 400, ReportOptions{Where: "top_k == 1"})
	page, err := os.ReadFile(filepath.Join(out, HTMLName))
	if err != nil {
		t.Fatal(err)
	}
	checkReportHTML(t, page, out, r)
}

// checkReportHTML is shared with the CLI test on a real dataset.
func checkReportHTML(t *testing.T, page []byte, out string, r *Report) {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatalf("report.html does not parse: %v", err)
	}
	imgs := map[string]string{} // data-chart -> src
	links := map[string]bool{}
	var title, pre string
	tables := 0
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			attr := func(k string) string {
				for _, a := range n.Attr {
					if a.Key == k {
						return a.Val
					}
				}
				return ""
			}
			switch n.Data {
			case "img":
				imgs[attr("data-chart")] = attr("src")
			case "a":
				links[attr("href")] = true
			case "title":
				if n.FirstChild != nil {
					title = n.FirstChild.Data
				}
			case "pre":
				if n.FirstChild != nil {
					pre = n.FirstChild.Data
				}
			case "table":
				tables++
			case "script", "link", "iframe":
				if attr("src") != "" || attr("href") != "" {
					t.Errorf("report.html loads an external resource: <%s %v>", n.Data, n.Attr)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if len(imgs) != len(r.Charts) || len(r.Charts) == 0 {
		t.Errorf("report.html has %d charts, the report %d", len(imgs), len(r.Charts))
	}
	for _, c := range r.Charts {
		src, ok := imgs[c.Name]
		if !ok {
			t.Errorf("report.html does not show chart %s", c.Name)
			continue
		}
		b64, ok := strings.CutPrefix(src, "data:image/png;base64,")
		if !ok {
			t.Errorf("chart %s: src is not a PNG data URI: %.40s", c.Name, src)
			continue
		}
		data, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Errorf("chart %s: bad base64: %v", c.Name, err)
			continue
		}
		file, err := os.ReadFile(filepath.Join(out, c.Name+".png"))
		if err != nil || !bytes.Equal(data, file) {
			t.Errorf("chart %s: embedded PNG differs from %s.png (%v)", c.Name, c.Name, err)
		}
		for _, ext := range []string{".svg", ".png"} {
			if !links[c.Name+ext] {
				t.Errorf("report.html does not link %s%s", c.Name, ext)
			}
			if _, err := os.Stat(filepath.Join(out, c.Name+ext)); err != nil {
				t.Errorf("linked file: %v", err)
			}
		}
	}
	d := r.Dataset
	if d.Study != nil && !strings.Contains(title, d.Study.Name) {
		t.Errorf("title %q lacks the study name", title)
	}
	if strings.TrimSpace(pre) != strings.TrimSpace(d.StudyText) {
		t.Errorf("the <pre> block is not the study text:\n%s", pre)
	}
	// summary, axes, metrics, front, one ranking per metric
	if want := 4 + len(r.Best); tables < want {
		t.Errorf("%d tables, want at least %d", tables, want)
	}
	text := string(page)
	for _, want := range append([]string{d.EngineVersion(), "sweep " + strings.Join(d.ToolVersions, ", ")}, r.Options.Metrics...) {
		if !strings.Contains(text, want) {
			t.Errorf("report.html does not mention %q", want)
		}
	}
}

// TestSummary checks the terminal summary of a report.
func TestSummary(t *testing.T) {
	r, rows, _ := buildSynthReport(t, 300, ReportOptions{})
	var b strings.Builder
	if err := r.WriteSummary(&b); err != nil {
		t.Fatal(err)
	}
	ok, failed := 0, 0
	for _, row := range rows {
		if row.ok {
			ok++
		} else {
			failed++
		}
	}
	s := b.String()
	for _, want := range []string{
		fmt.Sprintf("300 rows (%d ok, %d failed)", ok, failed),
		"num_experts         4 values: 8, 16, 32, 64",
		"moe_ffn_scaling     3 values: balanced, compute, capacity",
		"batch_size [token]  4 values: 64, 128, 256, 512",
		"top_k               2 values: 1, 2",
		"latency_s [s] (min):",
		"tokens_per_s [token/s] (max):",
		"synthetic failure",
		"points over min latency_s, max tokens_per_s",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
}

// TestStoredStudyErrorNamesItsLine: a stored study text that does not
// parse here is reported by its line in the dataset's metadata, not as a
// study file in the dataset's folder (there is none).
func TestStoredStudyErrorNamesItsLine(t *testing.T) {
	dir := t.TempDir()
	writeSynthStudy(t, dir, 50, 50, 1, "[study]\nname = \"synth\"\nengine = \"future\"\n")
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := `line 3 of the study text stored in the dataset's metadata: study.engine: unknown engine "future"`
	if d.Study != nil || d.StudyErr == nil || !strings.HasPrefix(d.StudyErr.Error(), want) {
		t.Fatalf("study %v, error %v; want an error starting with %s", d.Study, d.StudyErr, want)
	}
	if strings.Contains(d.StudyErr.Error(), "study.toml") {
		t.Fatalf("the error names a study file: %v", d.StudyErr)
	}
	var ie *sweep.InputError
	if !errors.As(d.StudyErr, &ie) || ie.Line != 3 || ie.Key != "study.engine" {
		t.Fatalf("error %#v", ie)
	}
}

// TestReportWithoutStudy: a dataset whose parts carry no study text still
// ranks, finds its front and reports (no axes known, so no line charts or
// heatmaps unless asked for by name).
func TestReportWithoutStudy(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeSynthStudy(t, dir, 300, 100, 4, "")
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d.Study != nil || d.StudyErr == nil || len(d.Axes()) != 0 {
		t.Fatalf("study %v, error %v, axes %v", d.Study, d.StudyErr, d.Axes())
	}
	if c, _ := d.Column("latency_s"); c.Label() != "latency_s" {
		t.Errorf("without the engine the unit is unknown, got label %q", c.Label())
	}
	r, err := Build(ctx, d, ReportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Render(); err != nil {
		t.Fatal(err)
	}
	if len(r.Charts) != 1 || r.Charts[0].Kind != KindPareto {
		t.Errorf("charts %d, want only the Pareto scatter", len(r.Charts))
	}
	var b strings.Builder
	if err := r.WriteSummary(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "study    unknown (the parts carry no study text)") {
		t.Errorf("summary:\n%s", b.String())
	}
	// axes named explicitly still chart
	r, err = Build(ctx, d, ReportOptions{X: []string{"num_experts"}, Series: "moe_ffn_scaling", Heatmap: []string{"num_experts", "batch_size"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Render(); err != nil {
		t.Fatal(err)
	}
	if len(r.Charts) != 5+1+2 {
		t.Errorf("%d charts, want 8; notes %q", len(r.Charts), r.Notes)
	}
	if _, err := r.Write(filepath.Join(dir, "_report")); err != nil {
		t.Fatal(err)
	}
}

// TestUnreadablePartSkipped: a damaged part is skipped with a warning; the
// other parts are still read.
func TestUnreadablePartSkipped(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rows := writeSynth(t, dir, 400, 100, 8)
	parts, _ := filepath.Glob(filepath.Join(dir, "*.parquet"))
	if len(parts) != 4 {
		t.Fatalf("%d parts", len(parts))
	}
	bad := filepath.Join(dir, "part-zz-broken.parquet")
	if err := os.WriteFile(bad, []byte("PAR1 this is not parquet PAR1"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := Best(ctx, d, BestOptions{By: Objective{Metric: "latency_s"}, Top: 1000})
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, r := range rows {
		if _, ok := r.num("latency_s"); ok && r.ok {
			want++
		}
	}
	if len(tab.Rows) != want || len(tab.Stats.Skipped) != 1 || !strings.Contains(tab.Stats.Skipped[0], "part-zz-broken.parquet") {
		t.Errorf("%d rows (want %d), skipped %q", len(tab.Rows), want, tab.Stats.Skipped)
	}
}

// TestReportFilter: --where narrows the charts, rankings and front, while
// the row counts, axes and failures still describe the whole dataset.
func TestReportFilter(t *testing.T) {
	r, rows, _ := buildSynthReport(t, 600, ReportOptions{Where: `moe_ffn_scaling == "compute" && batch_size <= 128`, Series: "none"})
	var all, matched int64
	for _, row := range rows {
		all++
		if row.ok && row.scaling == "compute" && row.batch <= 128 {
			matched++
		}
	}
	if r.Stats.Rows != all || r.Stats.Matched != matched {
		t.Errorf("rows %d matched %d, want %d and %d", r.Stats.Rows, r.Stats.Matched, all, matched)
	}
	for _, a := range r.Axes {
		if a.Column.Name == "moe_ffn_scaling" && len(a.Values) != 3 {
			t.Errorf("axis moe_ffn_scaling lists %v, want all three values", a.Values)
		}
	}
	for _, rk := range r.Best {
		for _, row := range rk.Table.Rows {
			for i, c := range rk.Table.Columns {
				if (c.Name == "moe_ffn_scaling" && row[i].S != "compute") || (c.Name == "batch_size" && row[i].I > 128) {
					t.Errorf("ranking of %s holds a filtered-out row %v", rk.Objective.Metric, row)
				}
			}
		}
	}
	for _, c := range r.Charts {
		if c.Kind == KindLine && (len(c.Series) != 1 || !strings.HasPrefix(c.Name, "line-"+c.Series[0]+"-")) {
			t.Errorf("%s: series %v, want the one metric line", c.Name, c.Series)
		}
	}
}
