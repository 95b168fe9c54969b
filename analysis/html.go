package analysis

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gonum.org/v1/plot/vg"

	"github.com/sweep-dse/sweep/engine"
)

// HTMLName is the report page's file name in the report folder.
const HTMLName = "report.html"

// Write writes the charts (PNG and SVG) and report.html into dir and
// returns the page's path. The page is self-contained: charts are embedded
// as PNG data URIs (and linked to their SVG and PNG files beside it).
func (r *Report) Write(dir string) (string, error) {
	if err := r.WriteCharts(dir); err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := r.WriteHTML(&b); err != nil {
		return "", err
	}
	path := filepath.Join(dir, HTMLName)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}

type htmlChart struct {
	*Chart
	ID   string
	Src  template.URL
	W, H int // pixels
}

type htmlTable struct {
	Head    []string
	Numeric []bool
	Rows    [][]string
	More    int // rows not shown
}

type htmlData struct {
	Title     string
	R         *Report
	Generated string
	Engine    string
	Versions  string
	Tools     string
	Line      []htmlChart
	Pareto    []htmlChart
	Heat      []htmlChart
	Best      []struct {
		Title string
		T     htmlTable
	}
	Front      htmlTable
	FrontTitle string
	Metrics    htmlTable
	Axes       htmlTable
	StudyErr   string
}

// Bounds on the page's tables.
const (
	maxFrontRows      = 200 // rows of the Pareto table
	maxHTMLAxisValues = 60  // values listed per axis
)

// WriteHTML writes the self-contained report page.
func (r *Report) WriteHTML(w io.Writer) error {
	d := r.Dataset
	data := htmlData{R: r, Generated: time.Now().UTC().Format("2006-01-02 15:04 UTC")}
	data.Title = "sweep report: " + d.Dir
	if d.Study != nil {
		data.Title = "sweep report: " + d.Study.Name
	}
	if d.StudyErr != nil {
		data.StudyErr = d.StudyErr.Error()
	}
	data.Engine = fmt.Sprintf("%s, model version %s", orDash(d.EngineName()), orDash(d.EngineVersion()))
	var vs []string
	for _, v := range r.Versions {
		vs = append(vs, fmt.Sprintf("%s (%d rows)", orDash(v.Value.String()), v.Rows))
	}
	data.Versions = strings.Join(vs, ", ")
	data.Tools = strings.Join(d.ToolVersions, ", ")
	if r.Options.Tool != "" {
		data.Tools += "; report by sweep " + r.Options.Tool
	}
	for _, c := range r.Charts {
		hc := htmlChart{Chart: c, ID: "chart-" + c.Name, Src: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(c.PNG)),
			W: pixels(chartW), H: pixels(chartH)}
		switch c.Kind {
		case KindLine:
			data.Line = append(data.Line, hc)
		case KindPareto:
			data.Pareto = append(data.Pareto, hc)
		default:
			data.Heat = append(data.Heat, hc)
		}
	}
	for _, b := range r.Best {
		c, _ := d.Column(b.Objective.Metric)
		data.Best = append(data.Best, struct {
			Title string
			T     htmlTable
		}{fmt.Sprintf("%s (%s)", c.Label(), dir(b.Objective)), toHTMLTable(b.Table, 0)})
	}
	if r.Front != nil && len(r.Options.Objectives) >= 2 {
		var objs []string
		for _, o := range r.Options.Objectives {
			objs = append(objs, dir(o)+" "+o.Metric)
		}
		data.FrontTitle = fmt.Sprintf("%d points over %s", len(r.Front.Rows), strings.Join(objs, ", "))
		data.Front = toHTMLTable(r.Front, maxFrontRows)
	}
	data.Metrics.Head = []string{"metric", "unit", "rows", "min", "mean", "max", "better", "meaning"}
	data.Metrics.Numeric = []bool{false, false, true, true, true, true, false, false}
	for _, m := range r.Metrics {
		better := "lower"
		if m.Objective.Max {
			better = "higher"
		}
		data.Metrics.Rows = append(data.Metrics.Rows, []string{
			m.Column.Name, m.Column.Unit, fmt.Sprint(m.N), fnum(m.Min), fnum(m.Mean()), fnum(m.Max), better, m.Column.Doc})
	}
	data.Axes.Head = []string{"axis", "unit", "values (rows)"}
	data.Axes.Numeric = []bool{false, false, false}
	for _, a := range r.Axes {
		var vals []string
		for i, v := range a.Values {
			if i == maxHTMLAxisValues {
				break
			}
			vals = append(vals, fmt.Sprintf("%s (%d)", orNull(v.Value), v.Rows))
		}
		s := strings.Join(vals, ", ")
		switch {
		case a.More:
			s += fmt.Sprintf(", ... (more than %d distinct values)", maxAxisDistinct)
		case len(a.Values) > maxHTMLAxisValues:
			s += fmt.Sprintf(", ... (%d distinct values)", len(a.Values))
		}
		data.Axes.Rows = append(data.Axes.Rows, []string{a.Column.Name, a.Column.Unit, s})
	}
	return pageTmpl.Execute(w, data)
}

func toHTMLTable(t *Table, limit int) htmlTable {
	var h htmlTable
	for _, c := range t.Columns {
		h.Head = append(h.Head, c.Label())
		h.Numeric = append(h.Numeric, c.Numeric())
	}
	for i, r := range t.Rows {
		if limit > 0 && i >= limit {
			h.More = len(t.Rows) - limit
			break
		}
		line := make([]string, len(r))
		for j, v := range r {
			line[j] = Short(v)
		}
		h.Rows = append(h.Rows, line)
	}
	return h
}

// pixels converts a chart length to PNG pixels.
func pixels(l vg.Length) int { return int(math.Round(float64(l/vg.Inch) * chartDPI)) }

func fnum(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return Short(engine.FloatV(v))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func orNull(v engine.Value) string {
	if !v.IsSet() {
		return "(null)"
	}
	return v.String()
}

var pageTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct": func(a, b int64) string {
		if b == 0 {
			return "0"
		}
		return fmt.Sprintf("%.1f", 100*float64(a)/float64(b))
	},
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="sweep">
<title>{{.Title}}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", "Liberation Sans", Arial, sans-serif; margin: 0 auto; max-width: 1200px; padding: 1em 2em 3em; color: #1b1f24; background: #fff; }
h1 { font-size: 1.6em; margin-bottom: .2em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #d0d7de; padding-bottom: .2em; }
h3 { font-size: 1.05em; margin: 1.2em 0 .4em; }
.sub { color: #57606a; margin-top: 0; }
table { border-collapse: collapse; margin: .4em 0 1em; font-size: .88em; }
th, td { border: 1px solid #d0d7de; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
table.kv th { width: 12em; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; height: auto; border: 1px solid #e6e8eb; }
figcaption { color: #57606a; font-size: .9em; margin-top: .3em; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(540px, 1fr)); gap: 0 1.5em; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; padding: .8em; overflow-x: auto; font-size: .85em; }
.note { color: #9a6700; }
code { font-size: .95em; }
nav a { margin-right: 1em; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
{{with .R.Dataset.Study}}<p class="sub">{{.Description}}</p>{{end}}
<nav><a href="#summary">Summary</a><a href="#charts">Charts</a><a href="#pareto">Pareto front</a><a href="#best">Best points</a>{{if .R.Errors}}<a href="#failures">Failures</a>{{end}}<a href="#study">Study</a></nav>

<h2 id="summary">Summary</h2>
<table class="kv">
<tr><th>dataset</th><td><code>{{.R.Dataset.Dir}}</code> ({{len .R.Dataset.Parts}} part file{{if ne (len .R.Dataset.Parts) 1}}s{{end}})</td></tr>
<tr><th>rows</th><td>{{.R.Stats.Rows}}: {{.R.Stats.OK}} ok, {{.R.Stats.Failed}} failed ({{pct .R.Stats.Failed .R.Stats.Rows}} %)</td></tr>
{{if .R.Options.Where}}<tr><th>filter</th><td><code>{{.R.Options.Where}}</code>: {{.R.Stats.Matched}} ok rows match; charts, rankings and the front use these only</td></tr>{{end}}
<tr><th>engine</th><td>{{.Engine}}</td></tr>
<tr><th>engine versions of the rows</th><td>{{.Versions}}</td></tr>
<tr><th>tool versions</th><td>sweep {{.Tools}}</td></tr>
<tr><th>generated</th><td>{{.Generated}}</td></tr>
</table>
{{if .StudyErr}}<p class="note">The stored study is not available ({{.StudyErr}}): axes are unknown.</p>{{end}}
{{range .R.Stats.Skipped}}<p class="note">Skipped an unreadable part: {{.}}</p>{{end}}

<h3>Axes</h3>
{{template "table" .Axes}}
<h3>Metrics</h3>
{{template "table" .Metrics}}

<h2 id="charts">Charts</h2>
{{range .R.Notes}}<p class="note">{{.}}</p>{{end}}
{{if .Line}}<h3>Metrics against axes</h3>
<div class="grid">{{range .Line}}{{template "figure" .}}{{end}}</div>{{end}}
{{if .Heat}}<h3>Heatmaps</h3>
<div class="grid">{{range .Heat}}{{template "figure" .}}{{end}}</div>{{end}}

<h2 id="pareto">Pareto front</h2>
{{range .Pareto}}{{template "figure" .}}{{end}}
{{if .FrontTitle}}<p>{{.FrontTitle}}.</p>
{{template "table" .Front}}{{else}}<p>No Pareto objectives.</p>{{end}}

<h2 id="best">Best points</h2>
{{range .Best}}<h3>{{.Title}}</h3>
{{template "table" .T}}{{end}}

{{if .R.Errors}}<h2 id="failures">Failures</h2>
<table><tr><th>rows</th><th>error</th></tr>
{{range .R.Errors}}<tr><td class="n">{{.Rows}}</td><td><code>{{.Msg}}</code></td></tr>
{{end}}</table>{{end}}

<h2 id="study">Study</h2>
{{if .R.Dataset.StudyText}}<pre>{{.R.Dataset.StudyText}}</pre>{{else}}<p>The dataset carries no study text.</p>{{end}}
<script>
// Marks how many charts the browser decoded, for automated checks.
addEventListener("load", function () {
  var imgs = document.querySelectorAll("img[data-chart]"), ok = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++;
  }
  document.body.setAttribute("data-charts-loaded", ok + "/" + imgs.length);
});
</script>
</body>
</html>
{{define "figure"}}<figure id="{{.ID}}">
<img src="{{.Src}}" alt="{{.Title}}" width="{{.W}}" height="{{.H}}" data-chart="{{.Name}}">
<figcaption>{{.Caption}} <a href="{{.Name}}.svg">SVG</a> · <a href="{{.Name}}.png">PNG</a></figcaption>
</figure>
{{end}}
{{define "table"}}<table>
<tr>{{range .Head}}<th>{{.}}</th>{{end}}</tr>
{{$num := .Numeric}}{{range .Rows}}<tr>{{range $i, $c := .}}<td{{if index $num $i}} class="n"{{end}}>{{$c}}</td>{{end}}</tr>
{{end}}</table>
{{if .More}}<p>... and {{.More}} more rows (see <code>sweep pareto</code>).</p>{{end}}
{{end}}
`))
