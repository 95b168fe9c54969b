package sweep

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/quick"
	"time"

	"github.com/sweep-dse/sweep/dataset"
	"github.com/sweep-dse/sweep/engine"
)

// randomStudy writes a study with random axes (some values collapse into the
// same point, and a constraint drops some combinations).
func randomStudy(t *testing.T, r *rand.Rand) *Study {
	t.Helper()
	pick := func(vals []int) string {
		n := 1 + r.IntN(len(vals))
		perm := r.Perm(len(vals))[:n]
		out := make([]string, n)
		for i, p := range perm {
			out[i] = fmt.Sprint(vals[p])
		}
		return strings.Join(out, ", ")
	}
	// not one expert alone: every scaling mode is alike there, and a study
	// where moe_ffn_scaling has no effect is refused
	experts := func(s string) string {
		if s == "1" {
			return "1, 2"
		}
		return s
	}
	text := fmt.Sprintf(`[study]
name = "prop"
seed = %d
where = ["top_k <= num_experts"]
[base]
model = "gpt3-7B"
[axes]
num_experts = [%s]
top_k = [1, %s]
batch_size = [%s]
seq_len = [%s]
moe_ffn_scaling = ["balanced", "compute"]
`, r.IntN(1000),
		experts(pick([]int{1, 2, 4, 8, 16, 32, 64})),
		pick([]int{2, 4, 8}), // 1 always: top_k <= num_experts keeps some point
		pick([]int{1, 8, 64, 128, 256, 512}),
		pick([]int{128, 512, 2048}))
	s, err := Parse("prop.toml", text)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	return s
}

// shardIDs expands one shard of s against an empty dataset and returns the
// IDs of its points.
func shardIDs(t *testing.T, s *Study, sh Shard) (map[ID]bool, *Plan) {
	t.Helper()
	pl, err := Expand(context.Background(), s, filepath.Join(t.TempDir(), "none"), PlanOptions{Shard: sh})
	if err != nil {
		t.Fatal(err)
	}
	h := NewHasher(s)
	p := make([]engine.Value, len(s.Engine.Params()))
	ids := map[ID]bool{}
	for _, idx := range pl.PendingList() {
		s.Fill(idx, p)
		if err := s.Engine.Resolve(s.Dir, p); err != nil {
			t.Fatal(err)
		}
		id := mustID(t, h, p)
		if ids[id] {
			t.Fatalf("shard %s lists point %s twice", sh, id)
		}
		if !sh.Has(id) {
			t.Fatalf("shard %s lists point %s that it does not have", sh, id)
		}
		ids[id] = true
	}
	return ids, pl
}

// TestShardsPartitionTheStudy: for random studies and random N, the N
// shards are disjoint and together hold exactly the study's points.
func TestShardsPartitionTheStudy(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 6))
	for iter := 0; iter < 25; iter++ {
		s := randomStudy(t, r)
		all, whole := shardIDs(t, s, All)
		n := 1 + r.IntN(40)
		if iter%5 == 0 {
			n = int(whole.Points) + 1 + r.IntN(5) // more shards than points
		}
		seen := map[ID]int{}
		var points int64
		for i := 0; i < n; i++ {
			sh := Shard{i, n}
			ids, pl := shardIDs(t, s, sh)
			points += pl.Points
			if got := pl.Points + pl.OtherShards + pl.Dropped; got != whole.Combinations {
				t.Fatalf("n=%d shard %d: points %d + other shards %d + duplicates %d + dropped %d = %d, want %d combinations",
					n, i, pl.Points, pl.OtherShards, 0, pl.Dropped, got, whole.Combinations)
			}
			for id := range ids {
				if prev, ok := seen[id]; ok {
					t.Fatalf("n=%d: point %s is in shards %d and %d", n, id, prev, i)
				}
				seen[id] = i
			}
		}
		if len(seen) != len(all) || points != whole.Points {
			t.Fatalf("n=%d: shards hold %d points (%d by count), the study %d", n, len(seen), points, len(all))
		}
		for id := range all {
			if _, ok := seen[id]; !ok {
				t.Fatalf("n=%d: point %s is in no shard", n, id)
			}
		}
	}
}

// TestShardHasExactlyOne: every ID belongs to exactly one of N shards.
func TestShardHasExactlyOne(t *testing.T) {
	f := func(id ID, n uint16) bool {
		nn := int(n%1000) + 1
		count := 0
		for i := 0; i < nn; i++ {
			if (Shard{i, nn}).Has(id) {
				count++
			}
		}
		return count == 1
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 500}); err != nil {
		t.Fatal(err)
	}
}

func TestParseShard(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Shard
		ok   bool
	}{
		{"0/1", Shard{0, 1}, true}, {"3/4", Shard{3, 4}, true}, {"0/1000", Shard{0, 1000}, true},
		{"4/4", Shard{}, false}, {"-1/4", Shard{}, false}, {"1/0", Shard{}, false}, {"1", Shard{}, false},
		{"a/4", Shard{}, false}, {"1/b", Shard{}, false}, {"", Shard{}, false}, {"1/2/3", Shard{}, false},
	} {
		got, err := ParseShard(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseShard(%q) = %v, %v; want %v, ok %v", c.in, got, err, c.want, c.ok)
		}
		if c.ok && got.String() != c.in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), c.in)
		}
	}
}

// datasetIDs counts the rows of each point ID in a dataset.
func datasetIDs(t *testing.T, dir string) map[string]int {
	t.Helper()
	ids := map[string]int{}
	bad, err := dataset.Index(context.Background(), dir, func(e dataset.Entry) { ids[e.ID]++ })
	if err != nil || len(bad) > 0 {
		t.Fatalf("index %s: %v %v", dir, err, bad)
	}
	return ids
}

// TestShardsRunConcurrently runs every shard of a study at once against one
// folder, as the tasks of a job array do, then checks that the dataset
// holds every point exactly once, that part names carry their shard, and
// that each shard resumes on its own.
func TestShardsRunConcurrently(t *testing.T) {
	s, err := Load("../studies/seed-moe.toml")
	if err != nil {
		t.Fatal(err)
	}
	whole, err := Expand(context.Background(), s, filepath.Join(t.TempDir(), "none"), PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	dir := t.TempDir()
	run := func(i int) (*Result, error) {
		return Run(context.Background(), s, RunOptions{Out: dir, Jobs: 2, Shard: Shard{i, n}, FlushRows: 7})
	}
	// all shards but the last, at once
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n-1; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = run(i)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
	}
	// the whole study now lacks exactly the last shard
	ids := datasetIDs(t, dir)
	last, _ := shardIDs(t, s, Shard{n - 1, n})
	if int64(len(ids)) != whole.Points-int64(len(last)) {
		t.Fatalf("%d points written, want %d", len(ids), whole.Points-int64(len(last)))
	}
	pl, err := Expand(context.Background(), s, dir, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pl.Pending.Count() != int64(len(last)) {
		t.Fatalf("pending %d, want the last shard's %d", pl.Pending.Count(), len(last))
	}
	// resume: a finished shard has nothing to do, the last runs only its own
	res, err := run(0)
	if err != nil || res.Ran != 0 {
		t.Fatalf("rerun of a finished shard ran %v points (%v)", res, err)
	}
	res, err = run(n - 1)
	if err != nil || res.Ran != int64(len(last)) {
		t.Fatalf("last shard ran %v, want %d (%v)", res, len(last), err)
	}
	ids = datasetIDs(t, dir)
	if int64(len(ids)) != whole.Points {
		t.Fatalf("%d points, want %d", len(ids), whole.Points)
	}
	for id, c := range ids {
		if c != 1 {
			t.Fatalf("point %s has %d rows", id, c)
		}
	}
	// part names carry the shard; each shard had its own lock file
	parts, _ := dataset.Parts(dir)
	perShard := map[string]int{}
	for _, p := range parts {
		b := filepath.Base(p)
		ok := false
		for i := 0; i < n; i++ {
			if strings.HasPrefix(b, fmt.Sprintf("part-s%dof%d-", i, n)) {
				perShard[fmt.Sprint(i)]++
				ok = true
			}
		}
		if !ok {
			t.Errorf("part %s does not name its shard", b)
		}
	}
	for i := 0; i < n; i++ {
		if perShard[fmt.Sprint(i)] < 2 {
			t.Errorf("shard %d wrote %d parts, want several (flush every 7 rows)", i, perShard[fmt.Sprint(i)])
		}
		if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf(".lock-shard-%d-of-%d", i, n))); err != nil {
			t.Errorf("shard %d lock file: %v", i, err)
		}
	}
}

// TestRunWaitsForCompaction: a run does not start writing while a
// compaction holds the dataset, and goes on when it ends.
func TestRunWaitsForCompaction(t *testing.T) {
	s, err := Load("../studies/seed-moe.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cl, err := dataset.LockExclusive(context.Background(), dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	done := make(chan error, 1)
	go func() {
		_, err := Run(context.Background(), s, RunOptions{Out: dir, Jobs: 2, Shard: Shard{1, 3}, Log: &log})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("run finished under a compaction: %v", err)
	case <-time.After(400 * time.Millisecond):
	}
	if parts, _ := dataset.Parts(dir); len(parts) != 0 {
		t.Fatalf("run wrote %v under a compaction", parts)
	}
	if !strings.Contains(log.String(), "waiting for a compaction") {
		t.Errorf("run did not say it waits: %q", log.String())
	}
	cl.Release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not go on after the compaction")
	}
	if parts, _ := dataset.Parts(dir); len(parts) == 0 {
		t.Fatal("run wrote nothing")
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
