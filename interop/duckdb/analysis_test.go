package interop

import (
	"database/sql"
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// queriesPath holds the documented DuckDB queries; README examples are
// taken from it.
const queriesPath = "../../docs/queries.sql"

// docQuery is one named query of docs/queries.sql.
type docQuery struct {
	name   string
	sameAs string // the sweep command that must print the same rows, or ""
	sql    string
}

// readQueries splits docs/queries.sql at its "-- name:" lines.
func readQueries(t *testing.T) []docQuery {
	t.Helper()
	data, err := os.ReadFile(queriesPath)
	if err != nil {
		t.Fatal(err)
	}
	var out []docQuery
	var cur *docQuery
	for _, line := range strings.Split(string(data), "\n") {
		if name, ok := strings.CutPrefix(line, "-- name: "); ok {
			out = append(out, docQuery{name: strings.TrimSpace(name)})
			cur = &out[len(out)-1]
			continue
		}
		if cur == nil {
			continue
		}
		if cmd, ok := strings.CutPrefix(line, "-- same as: "); ok {
			cur.sameAs = strings.TrimSpace(cmd)
			continue
		}
		if strings.HasPrefix(line, "--") {
			continue
		}
		cur.sql += line + "\n"
	}
	for _, q := range out {
		if strings.TrimSpace(q.sql) == "" {
			t.Fatalf("%s: query %s has no SQL", queriesPath, q.name)
		}
	}
	return out
}

// shellWords splits a command line written for a POSIX shell: words
// separated by blanks, '...' and "..." quoting (no escapes inside ”).
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'' || c == '"':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				t.Fatalf("unbalanced quote in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// queryTable runs q and returns the column names and every row as text
// (NULL as ""), numbers formatted as Go formats float64 and int64.
func queryTable(t *testing.T, db *sql.DB, q string) ([]string, [][]string) {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		line := make([]string, len(cols))
		for i, v := range vals {
			line[i] = v.String
		}
		out = append(out, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return cols, out
}

// TestDocumentedQueries runs every query of docs/queries.sql on the seed
// study's dataset, and checks that each query with a "same as" command
// gives exactly the rows that sweep command prints (--format csv): same
// order, and for every column of the query the same value, compared as
// text (float64 in shortest round-trip form on both sides, so exactly).
func TestDocumentedQueries(t *testing.T) {
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "sweep")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./cmd/sweep")
	build.Dir = repoRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	run(t, build)

	ds := filepath.Join(tmp, "results", "seed-moe")
	run(t, exec.CommandContext(t.Context(), bin, "run", studyPath, "--out", ds, "--progress", "none", "--quiet"))
	study, err := os.ReadFile(studyPath)
	if err != nil {
		t.Fatal(err)
	}

	db := openDuckDB(t)
	queries := readQueries(t)
	compared := 0
	for _, q := range queries {
		t.Run(q.name, func(t *testing.T) {
			// 'results/seed-moe/... becomes '<dataset>/..., quoted for SQL
			sqlText := strings.ReplaceAll(q.sql, "'results/seed-moe/", "'"+strings.ReplaceAll(ds+"/", "'", "''"))
			if sqlText == q.sql {
				t.Fatalf("query %s does not read 'results/seed-moe/*.parquet'", q.name)
			}
			cols, rows := queryTable(t, db, sqlText)
			if len(rows) == 0 {
				t.Fatalf("query %s returned no rows", q.name)
			}
			switch q.name {
			case "rows-by-status":
				if len(rows) != 1 || rows[0][0] != "ok" || rows[0][1] != "180" {
					t.Errorf("rows by status: %v, want [[ok 180]]", rows)
				}
			case "mean-per-scaling-and-experts":
				if len(rows) != 15 {
					t.Errorf("%d groups, want 3 scalings x 5 expert counts", len(rows))
				}
			case "study-text":
				if len(rows) != 1 || strings.TrimSpace(rows[0][0]) != strings.TrimSpace(string(study)) {
					t.Errorf("study text from the metadata:\n%v", rows)
				}
			}
			if q.sameAs == "" {
				return
			}
			args := shellWords(t, q.sameAs)
			if len(args) < 3 || args[0] != "sweep" || args[2] != "results/seed-moe" {
				t.Fatalf("same-as command %q: want `sweep VERB results/seed-moe ...`", q.sameAs)
			}
			args[2] = ds
			out := run(t, exec.CommandContext(t.Context(), bin, append(args[1:], "--format", "csv")...))
			recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
			if err != nil {
				t.Fatalf("%s printed bad CSV: %v\n%s", q.sameAs, err, out)
			}
			head, body := recs[0], recs[1:]
			if len(body) != len(rows) {
				t.Fatalf("%s printed %d rows, DuckDB %d\nsweep:\n%s\nDuckDB: %v", q.sameAs, len(body), len(rows), out, rows)
			}
			for ci, c := range cols {
				si := slices.Index(head, c)
				if si < 0 {
					t.Fatalf("%s prints no column %s (it prints %v)", q.sameAs, c, head)
				}
				for ri := range rows {
					if body[ri][si] != rows[ri][ci] {
						t.Errorf("row %d column %s: sweep %q, DuckDB %q", ri+1, c, body[ri][si], rows[ri][ci])
					}
				}
			}
			compared++
		})
	}
	if compared < 3 {
		t.Errorf("only %d queries were compared with sweep; docs/queries.sql should pin best (twice) and pareto", compared)
	}
}
