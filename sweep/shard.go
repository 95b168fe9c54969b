package sweep

import (
	"fmt"
	"strconv"
	"strings"
)

// Shard selects a deterministic subset of a study: the points whose ID, read
// as a number, is I modulo N. The N shards partition the study, and a point
// stays in its shard when the study grows.
type Shard struct{ I, N int }

// All is the whole study.
var All = Shard{0, 1}

// ParseShard parses "i/N".
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("want i/N with 0 <= i < N, got %q", s)
	}
	return Shard{i, n}, nil
}

// Has reports whether the shard holds the point.
func (s Shard) Has(id ID) bool { return s.N <= 1 || id.Key()%uint64(s.N) == uint64(s.I) }

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.I, s.N) }

// stem is the part-name stem of a shard.
func (s Shard) stem() string {
	if s.N <= 1 {
		return "all"
	}
	return fmt.Sprintf("s%dof%d", s.I, s.N)
}
