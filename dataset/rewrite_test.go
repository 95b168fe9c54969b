package dataset

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestDropFailedRows: only failed rows of the named points go (an ok row of
// the same point stays), the temporary of a rewrite that crashed does not
// stop the next one, a part left empty is removed, and the merged part of an
// interrupted compaction is kept with no rows instead (its journal hides the
// inputs only while it exists).
func TestDropFailedRows(t *testing.T) {
	e, rows := seedRows(t, 6)
	ids := []string{"a", "a", "b", "b", "c", "c"}
	for i := range rows {
		rows[i].ID = ids[i]
		if i%2 == 1 {
			rows[i].Status, rows[i].Error, rows[i].Metrics = StatusFailed, "boom", nil
		}
	}
	write := func(dir string, rs []Row) string {
		t.Helper()
		w, err := NewWriter(dir, "t", e, map[string]string{MetaStudy: "s"})
		if err != nil {
			t.Fatal(err)
		}
		for i := range rs {
			w.Append(&rs[i])
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		return w.Written()[0]
	}
	count := func(path string) (ok, failed int) {
		t.Helper()
		bad, err := Index(context.Background(), filepath.Dir(path), func(en Entry) {
			if en.Part != path {
				return
			}
			if en.Failed {
				failed++
			} else {
				ok++
			}
		})
		if err != nil || len(bad) > 0 {
			t.Fatalf("index: %v %v", err, bad)
		}
		return ok, failed
	}
	dir := t.TempDir()
	part := write(dir, rows)
	// a crashed rewrite's temporary
	if err := os.WriteFile(filepath.Join(dir, rewriteTmpPrefix+filepath.Base(part)), []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := DropFailedRows(context.Background(), part, func(id string) bool { return id != "c" })
	if err != nil || n != 2 {
		t.Fatalf("dropped %d: %v", n, err)
	}
	if ok, failed := count(part); ok != 3 || failed != 1 {
		t.Fatalf("after the drop: %d ok, %d failed rows, want 3 and 1", ok, failed)
	}
	// a part of failed rows only: removed when emptied
	onlyFailed := write(dir, []Row{rows[1], rows[3]})
	if n, err := DropFailedRows(context.Background(), onlyFailed, func(string) bool { return true }); err != nil || n != 2 {
		t.Fatalf("dropped %d: %v", n, err)
	}
	if _, err := os.Stat(onlyFailed); !os.IsNotExist(err) {
		t.Fatalf("emptied part still there: %v", err)
	}
	// ... unless an interrupted compaction's journal names it as its output
	merged := write(dir, []Row{rows[1], rows[3]})
	if err := writeJournal(dir, &journal{Version: 1, Output: filepath.Base(merged), Inputs: []string{filepath.Base(part)}}); err != nil {
		t.Fatal(err)
	}
	if n, err := DropFailedRows(context.Background(), merged, func(string) bool { return true }); err != nil || n != 2 {
		t.Fatalf("dropped %d: %v", n, err)
	}
	if ok, failed := count(merged); ok != 0 || failed != 0 {
		t.Fatalf("merged part after the drop: %d ok, %d failed rows", ok, failed)
	}
	if parts, _ := Parts(dir); len(parts) != 1 || parts[0] != merged {
		t.Fatalf("parts %v: the journal's inputs must stay hidden", parts)
	}
}

// TestRewrittenPartsStillCompact: a part rewritten by DropFailedRows keeps
// the encodings and schema of its siblings, so a compaction merges them.
func TestRewrittenPartsStillCompact(t *testing.T) {
	e, rows := seedRows(t, 8)
	dir := t.TempDir()
	var parts []string
	for i := 0; i < 2; i++ {
		w, err := NewWriter(dir, fmt.Sprintf("all-%d", i), e, map[string]string{MetaStudy: "s"})
		if err != nil {
			t.Fatal(err)
		}
		for j := 4 * i; j < 4*i+4; j++ {
			rows[j].ID = fmt.Sprintf("%032x", j)
			if j == 1 {
				rows[j].Status, rows[j].Error, rows[j].Metrics = StatusFailed, "boom", nil
			}
			w.Append(&rows[j])
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, w.Written()[0])
	}
	if n, err := DropFailedRows(context.Background(), parts[0], func(string) bool { return true }); err != nil || n != 1 {
		t.Fatalf("dropped %d: %v", n, err)
	}
	res, err := Compact(context.Background(), dir, CompactOptions{TargetSize: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if res.PartsAfter != 1 {
		t.Fatalf("%d parts after compaction, want 1: the rewritten part did not merge", res.PartsAfter)
	}
}
