package dataset

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
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
					// nulls among random values, and inside runs (where the
					// writer holds repeats back)
					if mode != "constant" && i%9 == 4 {
						r.Status, r.Error, r.Metrics = StatusFailed, strings.Repeat("x", i%50), nil
						nulls = true
					}
					if mode != "constant" && i%11 == 7 {
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
		if k%3 == 1 {
			return engine.Value{Kind: engine.Bool, I: 2} // true, not as BoolV writes it
		}
		return engine.BoolV(k%3 == 0)
	}
	return v
}

// TestAppendDelta holds the delta encoder to a plain, bit-at-a-time
// rendering of DELTA_BINARY_PACKED, on columns whose deltas need every
// width from 0 to 64 bits, in blocks full and partial.
func TestAppendDelta(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{0, 1, 2, 31, 32, 33, 128, 129, 130, 161, 300, 1000} {
		for width := 0; width <= 64; width++ {
			v := make([]int64, n)
			for i := range v {
				switch {
				case width == 64:
					v[i] = int64(rng.Uint64())
				case i%97 == 5: // a steady step in most blocks, not all
					v[i] = int64(rng.Uint64() & (1<<width - 1))
				default:
					v[i] = int64(i) * 3
				}
			}
			if got, want := appendDelta(nil, v), refDelta(v); !bytes.Equal(got, want) {
				t.Fatalf("n %d, width %d: encoded\n%x\nwant\n%x", n, width, got, want)
			}
		}
	}
}

// refDelta encodes v as DELTA_BINARY_PACKED one bit at a time (the
// layout appendDelta describes).
func refDelta(v []int64) []byte {
	b := binary.AppendUvarint(nil, deltaBlock)
	b = binary.AppendUvarint(b, deltaBlock/deltaMiniblock)
	b = binary.AppendUvarint(b, uint64(len(v)))
	var first int64
	if len(v) > 0 {
		first = v[0]
	}
	b = binary.AppendVarint(b, first)
	for i := 1; i < len(v); i += deltaBlock {
		n := min(deltaBlock, len(v)-i)
		minDelta := v[i] - v[i-1]
		for k := range n {
			minDelta = min(minDelta, v[i+k]-v[i+k-1])
		}
		b = binary.AppendVarint(b, minDelta)
		var widths [deltaBlock / deltaMiniblock]byte
		var packed []byte
		for m := 0; m*deltaMiniblock < n; m++ {
			d := make([]uint64, deltaMiniblock) // zero padded
			for k := range d {
				if j := m*deltaMiniblock + k; j < n {
					d[k] = uint64(v[i+j] - v[i+j-1] - minDelta)
				}
			}
			var or uint64
			for _, x := range d {
				or |= x
			}
			w := bits.Len64(or)
			widths[m] = byte(w)
			bitsOut := make([]byte, 4*w)
			pos := 0
			for _, x := range d {
				for bit := range w {
					if x>>bit&1 == 1 {
						bitsOut[pos/8] |= 1 << (pos % 8)
					}
					pos++
				}
			}
			packed = append(packed, bitsOut...)
		}
		b = append(b, widths[:]...)
		b = append(b, packed...)
	}
	return b
}

// TestRuns holds the encodings of a column of one value to those of the
// value written out n times.
func TestRuns(t *testing.T) {
	for _, n := range []int{1, 2, 3, 128, 129, 130, 257, 16384, 16385} {
		for _, x := range []int64{0, -1, math.MaxInt64, math.MinInt64, 1 << 40} {
			if got, want := appendDeltaRun([]byte{9}, x, n), appendDelta([]byte{9}, slices.Repeat([]int64{x}, n)); !bytes.Equal(got, want) {
				t.Fatalf("%d × %d: %x, want %x", n, x, got, want)
			}
		}
		for _, x := range []float64{0, math.Copysign(0, -1), math.NaN(), math.Inf(-1), 1.5} {
			if got, want := appendFloatRun([]byte{9}, x, n), appendFloats([]byte{9}, slices.Repeat([]float64{x}, n)); !bytes.Equal(got, want) {
				t.Fatalf("%d × %v: %d bytes, want %d", n, x, len(got), len(want))
			}
		}
	}
}
