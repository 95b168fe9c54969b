package analysis

import (
	"container/heap"
	"fmt"
	"slices"
	"strings"

	"github.com/sweep-dse/sweep/engine"
)

// Objective is one metric to minimise or maximise.
type Objective struct {
	Metric string
	Max    bool // maximise; default minimise
}

// String is "min:latency_s" or "max:tokens_per_s".
func (o Objective) String() string {
	if o.Max {
		return "max:" + o.Metric
	}
	return "min:" + o.Metric
}

// key turns a value into a key where smaller is better.
func (o Objective) key(v float64) float64 {
	if o.Max {
		return -v
	}
	return v
}

// ParseObjective parses "min:NAME", "max:NAME" or a bare NAME (direction
// from LowerIsBetter).
func ParseObjective(s string) Objective {
	if m, ok := strings.CutPrefix(s, "max:"); ok {
		return Objective{Metric: m, Max: true}
	}
	if m, ok := strings.CutPrefix(s, "min:"); ok {
		return Objective{Metric: m}
	}
	return Objective{Metric: s, Max: !LowerIsBetter(s)}
}

// LowerIsBetter guesses a metric's direction from its name: rates,
// throughputs and utilisations are better high, everything else (latency,
// cycles, bytes, parameters, energy) better low.
func LowerIsBetter(metric string) bool {
	m := strings.ToLower(metric)
	for _, hi := range []string{"per_s", "per_sec", "throughput", "utilization", "utilisation", "efficiency", "speedup", "accuracy", "hit_rate", "bandwidth"} {
		if strings.Contains(m, hi) {
			return false
		}
	}
	return true
}

// candidate is a row kept by a ranking: its keys (smaller is better), its
// point ID for ties, and the values shown for it.
type candidate struct {
	keys []float64
	id   string
	vals []engine.Value
}

// topN keeps the n best rows seen by one key (smaller is better; ties by
// point ID ascending) in a heap whose root is the worst kept row.
type topN struct {
	n int
	h worstFirst
}

// worstFirst is a heap.Interface whose root is the worst candidate.
type worstFirst []candidate

func (h worstFirst) Len() int           { return len(h) }
func (h worstFirst) Less(i, j int) bool { return better(h[j], h[i]) }
func (h worstFirst) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *worstFirst) Push(x any)        { *h = append(*h, x.(candidate)) }
func (h *worstFirst) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// better orders by the first key, then the point ID.
func better(a, b candidate) bool {
	if a.keys[0] != b.keys[0] {
		return a.keys[0] < b.keys[0]
	}
	return a.id < b.id
}

// wants reports whether a row with this key and ID would be kept.
func (t *topN) wants(key float64, id string) bool {
	if t.n <= 0 {
		return false
	}
	if len(t.h) < t.n {
		return true
	}
	return better(candidate{keys: []float64{key}, id: id}, t.h[0])
}

// add keeps a row; call only when wants says so. vals is retained.
func (t *topN) add(key float64, id string, vals []engine.Value) {
	c := candidate{keys: []float64{key}, id: id, vals: vals}
	if len(t.h) < t.n {
		heap.Push(&t.h, c)
		return
	}
	t.h[0] = c
	heap.Fix(&t.h, 0)
}

// sorted returns the kept rows, best first.
func (t *topN) sorted() []candidate {
	out := slices.Clone(t.h)
	slices.SortFunc(out, func(a, b candidate) int {
		if better(a, b) {
			return -1
		}
		if better(b, a) {
			return 1
		}
		return 0
	})
	return out
}

// DefaultMaxFront bounds the Pareto candidate set.
const DefaultMaxFront = 100_000

// FrontTooLargeError is a Pareto front with more points than the bound.
type FrontTooLargeError struct{ Max int }

// Error names the bound and how to stay under it.
func (e *FrontTooLargeError) Error() string {
	return fmt.Sprintf("the Pareto front has more than %d points; narrow it with --where or fewer objectives, or raise --max-front", e.Max)
}

// front is the set of non-dominated rows among those offered so far (all
// keys minimised). Offering a row costs one pass over the set; the set
// never holds a dominated row, so its size is the size of the current front.
type front struct {
	max  int
	cand []candidate
}

// dominates reports whether a is no worse than b in every key and better in
// at least one.
func dominates(a, b []float64) bool {
	strict := false
	for i := range a {
		if a[i] > b[i] {
			return false
		}
		if a[i] < b[i] {
			strict = true
		}
	}
	return strict
}

// offer adds a row unless a kept row dominates it, dropping the kept rows it
// dominates. keys is copied; vals is called only when the row is kept.
//
// One pass suffices: if a kept row dominates the new one, the new one cannot
// dominate another kept row (by transitivity that row would be dominated by
// a kept row, and the set holds none), so nothing was dropped before the
// rejection.
func (f *front) offer(keys []float64, id string, vals func() []engine.Value) error {
	drop := false
	for i := range f.cand {
		c := &f.cand[i]
		if dominates(c.keys, keys) {
			if i > 0 {
				// a row that dominates is likely to dominate the next ones:
				// move it forward so later rejections are quick
				f.cand[0], f.cand[i] = f.cand[i], f.cand[0]
			}
			return nil
		}
		if dominates(keys, c.keys) {
			c.keys = nil // mark
			drop = true
		}
	}
	if drop {
		f.cand = slices.DeleteFunc(f.cand, func(c candidate) bool { return c.keys == nil })
	}
	// the set may hold rows a later one dominates, so only a set far above
	// the bound stops the scan (memory); the front's own size is checked
	// at the end (check)
	if f.max > 0 && len(f.cand) >= 4*f.max+1000 {
		return &FrontTooLargeError{Max: f.max}
	}
	f.cand = append(f.cand, candidate{keys: slices.Clone(keys), id: id, vals: vals()})
	return nil
}

// check reports a front larger than its bound, once every row is offered.
func (f *front) check() error {
	if f.max > 0 && len(f.cand) > f.max {
		return &FrontTooLargeError{Max: f.max}
	}
	return nil
}

// sorted returns the front ordered by the keys in turn, then point ID.
func (f *front) sorted() []candidate {
	out := slices.Clone(f.cand)
	slices.SortFunc(out, func(a, b candidate) int {
		for i := range a.keys {
			if a.keys[i] < b.keys[i] {
				return -1
			}
			if a.keys[i] > b.keys[i] {
				return 1
			}
		}
		return strings.Compare(a.id, b.id)
	})
	return out
}
