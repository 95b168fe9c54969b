// Package interop checks that the Parquet data sets written by the sweep CLI
// read back in DuckDB with the expected row count, column types, footer
// key-value metadata and values.
//
// It is a Go module of its own because the DuckDB driver needs cgo and a large
// prebuilt library; the main module stays cgo-free. Run it with
// .ci/duckdb-test.sh, or `go test ./...` in this folder (never a bare
// `go mod download` or `go mod tidy` here: both fetch the DuckDB library for
// every platform).
package interop

import (
	"bytes"
	"database/sql"
	"encoding/csv"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // registers the "duckdb" database/sql driver
)

// Paths relative to this package's folder, where go test runs the test.
const (
	repoRoot  = "../.."
	studyPath = "../../studies/seed-moe.toml"
)

// TestSweepDatasetInDuckDB builds the CLI from the parent module, writes the
// seed study's data set and checks it with DuckDB.
func TestSweepDatasetInDuckDB(t *testing.T) {
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "sweep")

	// The main module is cgo-free; building it with cgo off keeps it so.
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./cmd/sweep")
	build.Dir = repoRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	run(t, build)

	study, err := os.ReadFile(studyPath)
	if err != nil {
		t.Fatalf("reading the study: %v", err)
	}

	ds := filepath.Join(tmp, "ds")
	start := time.Now()
	run(t, exec.CommandContext(t.Context(), bin, "run", studyPath, "--out", ds))

	out := run(t, exec.CommandContext(t.Context(), bin, "plan", studyPath, "--count"))
	count, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("sweep plan --count printed %q, want an integer", out)
	}
	if count <= 0 {
		t.Fatalf("sweep plan --count printed %d, want a positive count", count)
	}

	checkDataset(t, ds, count, string(study))
	checkValues(t, bin, ds, count, start)

	// a compacted data set (merged parts are written through pqarrow, not
	// the run's page encoder) reads back the same
	merged := filepath.Join(tmp, "merged")
	start = time.Now()
	run(t, exec.CommandContext(t.Context(), bin, "run", studyPath, "--out", merged, "--flush-rows", "40"))
	before, _ := filepath.Glob(filepath.Join(merged, "*.parquet"))
	run(t, exec.CommandContext(t.Context(), bin, "compact", merged))
	after, _ := filepath.Glob(filepath.Join(merged, "*.parquet"))
	if len(before) < 2 || len(after) != 1 {
		t.Fatalf("compaction went from %d parts to %d, want several to 1", len(before), len(after))
	}
	checkDataset(t, merged, count, string(study))
	checkValues(t, bin, merged, count, start)
}

// checkValues checks that DuckDB reads the values sweep itself reads: the
// integer columns (delta-encoded in the parts) of every row, as `sweep best`
// prints them, and finished_at (a delta-encoded timestamp) within the run.
func checkValues(t *testing.T, bin, ds string, count int, start time.Time) {
	t.Helper()
	cols := []string{"point_id", "num_experts", "batch_size", "top_k", "hbm_bytes", "flops", "cycles_total"}
	out := run(t, exec.CommandContext(t.Context(), bin, "best", ds, "--by", "cycles_total", "--min",
		"--top", strconv.Itoa(count), "--format", "csv", "--cols", strings.Join(cols, ",")))
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) < 1 {
		t.Fatalf("sweep best printed unreadable CSV (%v):\n%s", err, out)
	}
	index := map[string]int{}
	for i, h := range recs[0] {
		index[h] = i
	}
	var want [][]string
	for _, r := range recs[1:] {
		row := make([]string, len(cols))
		for i, c := range cols {
			j, ok := index[c]
			if !ok {
				t.Fatalf("sweep best printed no %s column: %v", c, recs[0])
			}
			row[i] = r[j]
		}
		want = append(want, row)
	}
	db := openDuckDB(t)
	src := sqlString(filepath.Join(ds, "*.parquet"))
	got := queryStrings(t, db, "SELECT "+strings.Join(cols, ", ")+" FROM "+src+" ORDER BY cycles_total, point_id")
	if len(got) != count || len(want) != count {
		t.Fatalf("DuckDB reads %d rows, sweep best prints %d, want %d", len(got), len(want), count)
	}
	for i := range got {
		if !slices.Equal(got[i], want[i]) {
			t.Fatalf("row %d (%s): DuckDB reads %v, sweep reads %v", i+1, strings.Join(cols, ", "), got[i], want[i])
		}
	}
	// finished_at: every row's timestamp lies within the run
	lo, hi := start.Add(-time.Second), time.Now().Add(time.Second)
	for _, r := range queryStrings(t, db, "SELECT epoch_us(min(finished_at)), epoch_us(max(finished_at)) FROM "+src) {
		for _, v := range r {
			us, err := strconv.ParseInt(v, 10, 64)
			if err != nil || time.UnixMicro(us).Before(lo) || time.UnixMicro(us).After(hi) {
				t.Errorf("finished_at %s (µs since 1970) outside the run's %v .. %v", v, lo, hi)
			}
		}
	}
}

// TestCheckDatasetOnDuckDBFixture runs checkDataset on a small data set that
// DuckDB itself writes, so the harness is known to work without the CLI.
func TestCheckDatasetOnDuckDBFixture(t *testing.T) {
	dir := t.TempDir()
	study := "# fixture study\nname = \"it's a fixture\"\n[space]\nnum_experts = [8, 16]\n"

	db := openDuckDB(t)
	mustExec := func(q string) {
		t.Helper()
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	mustExec(`CREATE TABLE points AS
		SELECT 'p' || i AS point_id,
		       (8 * (1 + i % 2))::BIGINT AS num_experts,
		       (1 + i % 2)::BIGINT AS top_k,
		       (32 * (1 + i))::BIGINT AS batch_size,
		       (1000000 * (1 + i))::BIGINT AS params_layer,
		       ['balanced', 'compute', 'capacity'][1 + i % 3] AS moe_ffn_scaling,
		       (0.001 * (1 + i))::DOUBLE AS latency_s,
		       (1000.0 / (1 + i))::DOUBLE AS tokens_per_s,
		       'ok' AS status
		FROM range(7) t(i)`)
	// Two files, so the glob and the per-file metadata check see more than one.
	for part, where := range []string{"batch_size <= 128", "batch_size > 128"} {
		file := filepath.Join(dir, fmt.Sprintf("part-%d.parquet", part))
		mustExec(fmt.Sprintf(`COPY (SELECT * FROM points WHERE %s)
			TO %s (FORMAT parquet, KV_METADATA {'sweep.study': %s})`,
			where, sqlString(file), sqlString(study)))
	}

	checkDataset(t, dir, 7, study)
}

// checkDataset checks the Parquet files dir/*.parquet with DuckDB: the row
// count, the column types, the study text in every file's footer key-value
// metadata under "sweep.study", and the three moe_ffn_scaling values.
func checkDataset(t *testing.T, dir string, wantCount int, studyText string) {
	t.Helper()
	glob := filepath.Join(dir, "*.parquet")
	files, err := filepath.Glob(glob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no Parquet files match %s (err %v)", glob, err)
	}
	db := openDuckDB(t)
	src := sqlString(glob)

	// (1) Row count equals the plan's point count.
	var n int64
	if err := db.QueryRow("SELECT count(*) FROM " + src).Scan(&n); err != nil {
		t.Fatalf("count: %v", err)
	}
	if n != int64(wantCount) {
		t.Errorf("data set has %d rows, want %d", n, wantCount)
	}

	// (2) Column types as DuckDB sees them.
	types := map[string]string{}
	var order []string
	for _, row := range queryStrings(t, db, "DESCRIBE SELECT * FROM "+src) {
		// DESCRIBE: column_name, column_type, null, key, default, extra.
		types[row[0]] = row[1]
		order = append(order, row[0]+" "+row[1])
	}
	wantTypes := map[string]string{
		"num_experts":     "BIGINT",
		"top_k":           "BIGINT",
		"batch_size":      "BIGINT",
		"params_layer":    "BIGINT",
		"latency_s":       "DOUBLE",
		"tokens_per_s":    "DOUBLE",
		"moe_ffn_scaling": "VARCHAR",
		"point_id":        "VARCHAR",
		"status":          "VARCHAR",
	}
	for _, col := range slices.Sorted(maps.Keys(wantTypes)) {
		got, ok := types[col]
		switch {
		case !ok:
			t.Errorf("column %s missing; DuckDB sees: %s", col, strings.Join(order, ", "))
		case got != wantTypes[col]:
			t.Errorf("column %s is %s in DuckDB, want %s", col, got, wantTypes[col])
		}
	}

	// (3) Every file carries the study text in its footer key-value metadata.
	want := strings.TrimSpace(studyText)
	seen := map[string]bool{}
	rows, err := db.Query("SELECT file_name, value FROM parquet_kv_metadata(" + src + ") WHERE key = 'sweep.study'")
	if err != nil {
		t.Fatalf("parquet_kv_metadata: %v", err)
	}
	for rows.Next() {
		var file string
		var value []byte // the value column is a BLOB
		if err := rows.Scan(&file, &value); err != nil {
			t.Fatalf("parquet_kv_metadata: %v", err)
		}
		seen[filepath.Base(file)] = true
		if !bytes.Contains(value, []byte(want)) {
			t.Errorf("%s: sweep.study metadata does not contain the study text; it is:\n%s", file, value)
		}
	}
	if err := rows.Close(); err != nil {
		t.Fatalf("parquet_kv_metadata: %v", err)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("parquet_kv_metadata: %v", err)
	}
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("%s: no sweep.study key in the Parquet footer key-value metadata", f)
		}
	}

	// (4) Exactly the three FFN scaling rules, each with rows.
	var scalings []string
	for _, row := range queryStrings(t, db, "SELECT moe_ffn_scaling, count(*) FROM "+src+" GROUP BY 1 ORDER BY 1") {
		scalings = append(scalings, row[0])
		if c, _ := strconv.Atoi(row[1]); c <= 0 {
			t.Errorf("moe_ffn_scaling %s has count %s", row[0], row[1])
		}
	}
	if wantScalings := []string{"balanced", "capacity", "compute"}; !slices.Equal(scalings, wantScalings) {
		t.Errorf("moe_ffn_scaling values %q, want exactly %q", scalings, wantScalings)
	}
}

// openDuckDB opens an in-memory DuckDB database, closed when the test ends.
func openDuckDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatalf("opening DuckDB: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatalf("opening DuckDB: %v", err)
	}
	return db
}

// queryStrings runs q and returns every row with each column as text
// (NULL as "NULL").
func queryStrings(t *testing.T, db *sql.DB, q string) [][]string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatalf("%s: %v", q, err)
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
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = "NULL"
			if v.Valid {
				row[i] = v.String
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

// run runs cmd and returns its standard output; it fails the test with both
// outputs when the command fails.
func run(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s (in %s): %v\nstdout:\n%s\nstderr:\n%s",
			strings.Join(cmd.Args, " "), dirOf(cmd), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.String()
}

func dirOf(cmd *exec.Cmd) string {
	if cmd.Dir != "" {
		return cmd.Dir
	}
	return "."
}

// sqlString quotes s as an SQL string literal.
func sqlString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
