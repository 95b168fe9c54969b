package analysis

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/sweep-dse/sweep/engine"
)

// Formats accepted by Table.Write.
const (
	FormatTable = "table"
	FormatCSV   = "csv"
	FormatJSON  = "json"
)

// Write writes the table as aligned text ("table"), CSV with a header row
// ("csv") or a JSON array of objects ("json"). CSV and JSON carry full
// precision (shortest round-trip form) and empty cells / null for missing
// values; the text table rounds floats to 6 significant digits and puts
// units in the header.
func (t *Table) Write(w io.Writer, format string) error {
	switch format {
	case FormatTable, "":
		return t.writeText(w)
	case FormatCSV:
		return t.writeCSV(w)
	case FormatJSON:
		return t.writeJSON(w)
	}
	return fmt.Errorf("unknown format %q (want table, csv or json)", format)
}

func (t *Table) writeText(w io.Writer) error {
	cells := make([][]string, 0, len(t.Rows)+1)
	head := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		head[i] = c.Label()
	}
	cells = append(cells, head)
	for _, r := range t.Rows {
		line := make([]string, len(r))
		for i, v := range r {
			line[i] = Short(v)
		}
		cells = append(cells, line)
	}
	width := make([]int, len(t.Columns))
	for _, line := range cells {
		for i, s := range line {
			width[i] = max(width[i], len([]rune(s)))
		}
	}
	var b strings.Builder
	for _, line := range cells {
		b.Reset()
		for i, s := range line {
			if i > 0 {
				b.WriteString("  ")
			}
			pad := width[i] - len([]rune(s))
			if i < len(t.Columns) && t.Columns[i].Numeric() {
				b.WriteString(strings.Repeat(" ", pad))
				b.WriteString(s)
			} else {
				b.WriteString(s)
				if i < len(line)-1 {
					b.WriteString(strings.Repeat(" ", pad))
				}
			}
		}
		b.WriteByte('\n')
		if _, err := io.WriteString(w, b.String()); err != nil {
			return err
		}
	}
	return nil
}

func (t *Table) writeCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(names(t.Columns)); err != nil {
		return err
	}
	line := make([]string, len(t.Columns))
	for _, r := range t.Rows {
		for i, v := range r {
			line[i] = Exact(v)
		}
		if err := cw.Write(line); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func (t *Table) writeJSON(w io.Writer) error {
	rows := make([]json.RawMessage, 0, len(t.Rows))
	for _, r := range t.Rows {
		var b strings.Builder
		b.WriteByte('{')
		for i, v := range r {
			if i > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(t.Columns[i].Name)
			b.Write(k)
			b.WriteByte(':')
			b.WriteString(jsonValue(v))
		}
		b.WriteByte('}')
		rows = append(rows, json.RawMessage(b.String()))
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rows)
}

func jsonValue(v engine.Value) string {
	switch v.Kind {
	case engine.Int:
		return strconv.FormatInt(v.I, 10)
	case engine.Float:
		if math.IsNaN(v.F) || math.IsInf(v.F, 0) {
			return "null"
		}
		return strconv.FormatFloat(v.F, 'g', -1, 64)
	case engine.Bool:
		return strconv.FormatBool(v.Bool())
	case engine.String:
		b, _ := json.Marshal(v.S)
		return string(b)
	}
	return "null"
}

// Exact formats a value losslessly ("" for null): integers in full, floats
// in the shortest form that parses back to the same float64.
func Exact(v engine.Value) string {
	if v.Kind == engine.Float {
		return strconv.FormatFloat(v.F, 'g', -1, 64)
	}
	return v.String()
}

// Short formats a value for people: floats to 6 significant digits.
func Short(v engine.Value) string {
	if v.Kind == engine.Float {
		return strconv.FormatFloat(v.F, 'g', 6, 64)
	}
	return v.String()
}
