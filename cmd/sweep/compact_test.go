package main

import (
	"bytes"
	"context"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sweep-dse/sweep/dataset"
	"github.com/sweep-dse/sweep/engine"
	"github.com/sweep-dse/sweep/sweep"
)

func TestCompactVerb(t *testing.T) {
	dir := t.TempDir()
	for _, sh := range []string{"0/3", "1/3", "2/3"} {
		if _, errs, code := runCLI(t, "run", seedStudy, "--out", dir, "--shard", sh, "--flush-rows", "8", "--progress", "none", "--quiet"); code != 0 {
			t.Fatal(errs)
		}
	}
	before, n := rowsOf(t, dir)
	parts, _ := dataset.Parts(dir)
	if n != 180 || len(parts) < 20 {
		t.Fatalf("setup: %d rows in %d parts", n, len(parts))
	}
	// a dry run changes nothing
	stdout, errs, code := runCLI(t, "compact", dir, "--dry-run")
	if code != 0 || !strings.Contains(stdout, "would become 1") {
		t.Fatalf("dry run: exit %d\n%s%s", code, stdout, errs)
	}
	if p, _ := dataset.Parts(dir); len(p) != len(parts) {
		t.Fatal("dry run merged")
	}
	// an interrupted compaction says how to finish, exits 130 and loses
	// no row
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var errb bytes.Buffer
	err := compact(ctx, io.Discard, dir, dataset.CompactOptions{TargetSize: 64 << 20})
	if code := exitCode(err, &errb); code != 130 || !strings.Contains(errb.String(), "interrupted") || !strings.Contains(errb.String(), "run sweep compact "+dir+" again") {
		t.Fatalf("interrupted compact: exit %d, %s", code, errb.String())
	}
	if mid, n := rowsOf(t, dir); n != 180 || !maps.Equal(before, mid) {
		t.Fatalf("after an interrupted compact: %d rows", n)
	}
	// not under a run
	run, err := dataset.LockShared(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if stdout, errs, code := runCLI(t, "compact", dir); code != 1 || !strings.Contains(errs, "busy") {
		t.Fatalf("compact under a run: exit %d\n%s%s", code, stdout, errs)
	}
	run.Release()
	stdout, errs, code = runCLI(t, "compact", dir)
	if code != 0 || !strings.Contains(stdout, "parts -> 1 ") {
		t.Fatalf("compact: exit %d\n%s%s", code, stdout, errs)
	}
	after, n := rowsOf(t, dir)
	if n != 180 || len(after) != 180 {
		t.Fatalf("after compact: %d rows, %d points", n, len(after))
	}
	for id, v := range before {
		if after[id] != v {
			t.Fatalf("point %s changed", id)
		}
	}
	if stdout, errs, code := runCLI(t, "status", dir, "--verify"); code != 0 {
		t.Fatalf("status --verify after compact: %d\n%s%s", code, stdout, errs)
	}
	// resume after compaction runs nothing
	stdout, errs, code = runCLI(t, "run", seedStudy, "--out", dir, "--progress", "none")
	if code != 0 || !strings.Contains(stdout, "ran 0 ") {
		t.Fatalf("resume after compact: %d\n%s%s", code, stdout, errs)
	}
	if _, errs, code := runCLI(t, "compact", dir, "--target-size", "big"); code != 2 {
		t.Fatalf("bad --target-size: exit %d %s", code, errs)
	}
	if _, errs, code := runCLI(t, "compact", filepath.Join(dir, "nope")); code == 0 {
		t.Fatalf("missing folder: exit 0 %s", errs)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1000": 1000, "64KiB": 64 << 10, "128MiB": 128 << 20, "2GiB": 2 << 30, "3M": 3 << 20, "5 MB": 5 << 20, "7B": 7} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "x", "1.5M", "9999999999GiB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q): want an error", in)
		}
	}
}

// TestStatusVerifyListsProblems: --verify names a few missing and failed
// points (ID, the study's values, the error) and exits 1.
func TestStatusVerifyListsProblems(t *testing.T) {
	dir := t.TempDir()
	if _, errs, code := runCLI(t, "run", seedStudy, "--out", dir, "--shard", "0/2", "--progress", "none", "--quiet"); code != 0 {
		t.Fatal(errs)
	}
	// a failed row for a point of the other shard
	s, err := sweep.Load(seedStudy)
	if err != nil {
		t.Fatal(err)
	}
	h := sweep.NewHasher(s)
	p := make([]engine.Value, len(s.Engine.Params()))
	var failedID, failedDesc string
	for idx := int64(0); idx < s.Combinations(); idx++ {
		s.Fill(idx, p)
		desc := s.Describe(p)
		s.Engine.Resolve(s.Dir, p)
		if id := mustID(t, h, p); (sweep.Shard{I: 1, N: 2}).Has(id) {
			failedID, failedDesc = id.String(), desc
			break
		}
	}
	w, err := dataset.NewWriter(dir, "hand", s.Engine, map[string]string{dataset.MetaStudy: s.Text})
	if err != nil {
		t.Fatal(err)
	}
	w.Append(&dataset.Row{ID: failedID, Status: dataset.StatusFailed, Error: "simulator exploded\nsecond line", Params: p, Metrics: make([]engine.Value, len(s.Engine.Metrics())), Finished: time.Now()})
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	stdout, errs, code := runCLI(t, "status", dir, "--study", seedStudy, "--verify")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, stdout, errs)
	}
	pl, err := sweep.Expand(context.Background(), s, dir, sweep.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	missing := pl.Points - pl.Done - pl.Failed
	for _, want := range []string{
		"missing: " + itoa(missing) + " points, e.g.",
		"failed: 1 points",
		failedID + "  " + failedDesc + ": simulator exploded ...",
		"num_experts=",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Count(stdout, "\n  ") != 5+1 {
		t.Errorf("want 5 missing and 1 failed point listed:\n%s", stdout)
	}
	if !strings.Contains(errs, "verify failed: "+itoa(missing)+" points missing, 1 points failed") {
		t.Errorf("error: %s", errs)
	}
	// without --verify: the summary only, exit 0
	if stdout, _, code := runCLI(t, "status", dir, "--study", seedStudy); code != 0 || strings.Contains(stdout, "e.g.") {
		t.Errorf("status without --verify: exit %d\n%s", code, stdout)
	}
	// a pending compaction is reported
	if err := os.WriteFile(filepath.Join(dir, dataset.JournalName), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if stdout, _, _ := runCLI(t, "status", dir, "--study", seedStudy); !strings.Contains(stdout, "journal") {
		t.Errorf("damaged compaction journal not reported:\n%s", stdout)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestStatusReadsTheNewestStudy: without --study, status (and best) take
// the study of the most recently run part, not of the part whose name sorts
// last (a compacted part, "part-compact-…", sorts after a later run's
// parts), nor of the part written last (a compaction of an older study's
// parts after a newer study ran).
func TestStatusReadsTheNewestStudy(t *testing.T) {
	text, err := os.ReadFile(seedStudy)
	if err != nil {
		t.Fatal(err)
	}
	// the seed study with two expert counts, then the full seed study
	small := filepath.Join(t.TempDir(), "small.toml")
	os.WriteFile(small, []byte(strings.Replace(string(text), "num_experts = [8, 16, 32, 64, 128]", "num_experts = [8, 16]", 1)), 0o644)
	for _, compactFirst := range []bool{true, false} {
		dir := t.TempDir()
		if _, errs, code := runCLI(t, "run", small, "--out", dir, "--flush-rows", "8", "--progress", "none", "--quiet"); code != 0 {
			t.Fatal(errs)
		}
		if compactFirst {
			if stdout, errs, code := runCLI(t, "compact", dir); code != 0 {
				t.Fatalf("compact: %s%s", stdout, errs)
			}
		}
		time.Sleep(1100 * time.Millisecond) // run times are whole seconds
		// the full study, one shard of nine: most of it is pending
		if _, errs, code := runCLI(t, "run", seedStudy, "--out", dir, "--shard", "0/9", "--jobs", "1", "--progress", "none", "--quiet"); code != 0 { // one part, which no compaction merges
			t.Fatal(errs)
		}
		if !compactFirst { // merges the small study's parts, after the full one ran
			if stdout, errs, code := runCLI(t, "compact", dir); code != 0 {
				t.Fatalf("compact: %s%s", stdout, errs)
			}
		}
		stdout, _, code := runCLI(t, "status", dir, "--verify")
		if code != 1 || !strings.Contains(stdout, "study:   seed-moe: 180 points") || !strings.Contains(stdout, "pending") {
			t.Fatalf("compact first %v: status --verify: exit %d\n%s", compactFirst, code, stdout)
		}
		// best says that some rows come from another version of the study
		stdout, _, code = runCLI(t, "best", dir, "--by", "latency_s")
		if code != 0 || !strings.Contains(stdout, "written from another version of the study") {
			t.Fatalf("compact first %v: best over two study versions: exit %d\n%s", compactFirst, code, stdout)
		}
	}
}

// TestReadersWaitForCompaction: best, pareto, report and status read the
// dataset under its shared lock, so they wait while a compaction holds it
// exclusively, and then read all of it.
func TestReadersWaitForCompaction(t *testing.T) {
	dir := t.TempDir()
	if _, errs, code := runCLI(t, "run", seedStudy, "--out", dir, "--progress", "none", "--quiet"); code != 0 {
		t.Fatal(errs)
	}
	for _, args := range [][]string{
		{"best", dir, "--by", "latency_s"},
		{"pareto", dir, "--min", "latency_s", "--max", "tokens_per_s"},
		{"status", dir},
		{"report", dir, "-o", t.TempDir()},
	} {
		l, err := dataset.LockExclusive(context.Background(), dir, 0) // a compaction
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan int)
		var out, errs bytes.Buffer
		go func() {
			done <- exitCode(run(context.Background(), &out, &errs, args), &errs)
		}()
		select {
		case code := <-done:
			t.Fatalf("%s finished (exit %d) while a compaction held the dataset\n%s%s", args[0], code, out.String(), errs.String())
		case <-time.After(300 * time.Millisecond):
		}
		l.Release()
		if code := <-done; code != 0 {
			t.Fatalf("%s after the compaction: exit %d\n%s%s", args[0], code, out.String(), errs.String())
		}
		if w := out.String() + errs.String(); !strings.Contains(w, "waiting for a compaction") {
			t.Errorf("%s did not say it waits:\n%s", args[0], w)
		}
	}
}

// TestStatusVerifyReportsSupersededRows: a failed row beside the ok row of
// its point (left by an interrupted --retry-failed run) fails --verify and
// is named; the next run drops it and --verify passes.
func TestStatusVerifyReportsSupersededRows(t *testing.T) {
	dir := t.TempDir()
	if _, errs, code := runCLI(t, "run", seedStudy, "--out", dir, "--progress", "none", "--quiet"); code != 0 {
		t.Fatal(errs)
	}
	s, err := sweep.Load(seedStudy)
	if err != nil {
		t.Fatal(err)
	}
	p := make([]engine.Value, len(s.Engine.Params()))
	s.Fill(0, p)
	s.Engine.Resolve(s.Dir, p)
	id := mustID(t, sweep.NewHasher(s), p).String()
	w, err := dataset.NewWriter(dir, "hand", s.Engine, map[string]string{dataset.MetaStudy: s.Text})
	if err != nil {
		t.Fatal(err)
	}
	w.Append(&dataset.Row{ID: id, Status: dataset.StatusFailed, Error: "old failure", Params: p, Metrics: make([]engine.Value, len(s.Engine.Metrics())), Finished: time.Now()})
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	stdout, _, code := runCLI(t, "status", dir, "--study", seedStudy, "--verify")
	if code != 1 || !strings.Contains(stdout, "superseded: 1 points have a failed row beside their ok row") {
		t.Fatalf("status --verify: exit %d\n%s", code, stdout)
	}
	if _, errs, code := runCLI(t, "run", seedStudy, "--out", dir, "--progress", "none", "--quiet"); code != 0 {
		t.Fatal(errs)
	}
	if stdout, _, code := runCLI(t, "status", dir, "--study", seedStudy, "--verify"); code != 0 {
		t.Fatalf("status --verify after the next run: exit %d\n%s", code, stdout)
	}
}

// TestStatusWithRelativeInputFiles: a stored study whose input files are
// relative to where it was run from does not load beside the dataset;
// status says so, naming the line of the stored study text (not a study
// file beside the dataset, which does not exist), suggests --study and
// still summarises the dataset.
func TestStatusWithRelativeInputFiles(t *testing.T) {
	root := t.TempDir()
	cfg, err := os.ReadFile("../../engine/moe/testdata/hf/mixtral-8x7b.json")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(root, "cfg"), 0o755)
	os.WriteFile(filepath.Join(root, "cfg", "m.json"), cfg, 0o644)
	study := filepath.Join(root, "s.toml")
	os.WriteFile(study, []byte("[study]\nname = \"rel\"\n[base]\nmodel_config = \"cfg/m.json\"\nn_layers = 1\n[axes]\nbatch_size = [8, 16]\n"), 0o644)
	ds := filepath.Join(root, "ds")
	if _, errs, code := runCLI(t, "run", study, "--out", ds, "--progress", "none", "--quiet"); code != 0 {
		t.Fatal(errs)
	}
	stdout, errs, code := runCLI(t, "status", ds)
	want := "study:   stored study does not load here (line 4 of the study text stored in the dataset's metadata: base.model_config: " + filepath.Join(ds, "cfg", "m.json") + ": cannot read"
	if code != 0 || !strings.Contains(stdout, want) || !strings.Contains(stdout, "pass --study FILE\n") || !strings.Contains(stdout, "rows:    2 (2 ok, 0 failed)") {
		t.Fatalf("status: exit %d, want %q in\n%s%s", code, want, stdout, errs)
	}
	if strings.Contains(stdout+errs, "study.toml") {
		t.Fatalf("status names a study file that does not exist:\n%s%s", stdout, errs)
	}
	if stdout, errs, code := runCLI(t, "status", ds, "--study", study, "--verify"); code != 0 {
		t.Fatalf("status --study --verify: exit %d\n%s%s", code, stdout, errs)
	}
}

// mustID is the point ID of a resolved point.
func mustID(t *testing.T, h *sweep.Hasher, p []engine.Value) sweep.ID {
	t.Helper()
	id, err := h.ID(p)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
