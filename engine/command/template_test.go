package command

import (
	"strings"
	"testing"
)

// The reflection-free rendering of simple templates prints values exactly
// as text/template does.
func TestSimpleTemplates(t *testing.T) {
	data := map[string]any{"i": int64(-42), "f": 1.5, "big": 1e21, "tiny": 1e-7, "whole": 1e6, "b": true, "s": `a "q" $(x) {{.i}}`, "e": ""}
	for _, src := range []string{"{{.i}}", "x{{.f}}y", "{{ .big }} {{.tiny}} {{.whole}}", "--flag={{.b}}", "{{.s}}{{.e}}", "{{.i}}{{.i}}", "plain"} {
		tt, err := newTmpl("t", src, "/study")
		if err != nil {
			t.Fatal(err)
		}
		if tt.parts == nil && !tt.static {
			t.Errorf("%q is not rendered as a simple template", src)
		}
		got, err := tt.render(data)
		if err != nil {
			t.Fatal(err)
		}
		var want strings.Builder
		if err := tt.t.Execute(&want, data); err != nil {
			t.Fatal(err)
		}
		if got != want.String() {
			t.Errorf("%q renders %q, text/template %q", src, got, want.String())
		}
	}
	// anything else goes through text/template
	for _, src := range []string{"{{json .s}}", "{{.i | printf \"%05d\"}}", "{{if .b}}yes{{end}}", "{{$x := .i}}{{$x}}", "{{mul .i 2}}"} {
		tt, err := newTmpl("t", src, "/study")
		if err != nil {
			t.Fatal(err)
		}
		if tt.parts != nil {
			t.Errorf("%q taken for a simple template", src)
		}
		if _, err := tt.render(data); err != nil {
			t.Errorf("%q: %v", src, err)
		}
	}
}
