package engine

import (
	"math"
	"testing"
)

// TestIdentical: bit for bit, unlike ==: a NaN is identical to itself, -0
// is not 0, and kind, integer and string count.
func TestIdentical(t *testing.T) {
	nan := FloatV(math.NaN())
	for _, c := range []struct {
		a, b Value
		want bool
	}{
		{nan, nan, true},
		{FloatV(0), FloatV(math.Copysign(0, -1)), false},
		{IntV(1), BoolV(true), false},
		{IntV(7), IntV(7), true},
		{StringV("a"), StringV("b"), false},
		{Value{}, Value{}, true},
	} {
		if got := c.a.Identical(c.b); got != c.want {
			t.Errorf("%#v.Identical(%#v) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}
