package dataset

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sweep-dse/sweep/engine"
)

// TestPagesEdgeValues writes parts whose every integer, float and boolean
// parameter and metric holds values chosen to break an encoder (the int64
// extremes, wrap-around deltas, long runs and single changes, NaN, the
// infinities and signed zeros), with nulls and failed rows, in parts of 1 to
// 1,000 rows (around the delta encoding's blocks of 128 and miniblocks of
// 32), and checks each against the file pqarrow writes from the same rows
// (checkMatchesArrow).
func TestPagesEdgeValues(t *testing.T) {
	ints := []int64{math.MinInt64, math.MaxInt64, 0, -1, 1, math.MinInt64 + 1, math.MaxInt64 - 1, 1 << 40, -(1 << 40)}
	flts := []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 0, math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, 1.5}
	for _, n := range []int{1, 2, 31, 32, 33, 127, 128, 129, 130, 257, 1000} {
		for _, mode := range []string{"random", "runs", "constant"} {
			t.Run(fmt.Sprintf("%s-%d", mode, n), func(t *testing.T) {
				e, rows := seedRows(t, n)
				rng := rand.New(rand.NewPCG(uint64(n), uint64(len(mode))))
				pick := func(i int) int {
					switch mode {
					case "random":
						return rng.IntN(1 << 20)
					case "runs":
						return i / 37
					}
					return 0
				}
				nulls := false
				for i := range rows {
					r := &rows[i]
					r.ID = fmt.Sprintf("%032x", rng.Uint64())
					p := append([]engine.Value(nil), r.Params...)
					m := append([]engine.Value(nil), r.Metrics...)
					r.Params, r.Metrics = p, m
					k := pick(i)
					for j, par := range e.Params() {
						p[j] = edgeValue(par.Kind, p[j], k+j, ints, flts)
					}
					for j, f := range e.Metrics() {
						m[j] = edgeValue(f.Kind, m[j], k+3*j, ints, flts)
					}
					if mode == "random" && i%9 == 4 {
						r.Status, r.Error, r.Metrics = StatusFailed, strings.Repeat("x", i%50), nil
						nulls = true
					}
					if mode == "random" && i%11 == 7 {
						p[engine.ParamIndex(e.Params(), "seed")] = engine.Value{}
						nulls = true
					}
				}
				checkMatchesArrow(t, e, rows, nulls)
			})
		}
	}
}

// edgeValue is the k-th edge value of a column of kind kind (v unchanged
// for strings).
func edgeValue(kind engine.Kind, v engine.Value, k int, ints []int64, flts []float64) engine.Value {
	switch kind {
	case engine.Int:
		if k%7 == 6 {
			return engine.IntV(int64(k) * 1000003) // a varying ordinary value
		}
		return engine.IntV(ints[k%len(ints)])
	case engine.Float:
		if k%7 == 6 {
			return engine.FloatV(float64(k) / 7)
		}
		return engine.FloatV(flts[k%len(flts)])
	case engine.Bool:
		return engine.BoolV(k%3 == 0)
	}
	return v
}
