package sweep

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zeebo/xxh3"

	"github.com/sweep-dse/sweep/engine"
)

// TestKeySet checks the open-addressing set against a map: random keys,
// clustered keys (equal top bits, so probes run long), the key 0, and
// duplicates.
func TestKeySet(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 7, 1000, 50000} {
		var keys []uint64
		want := map[uint64]bool{}
		for i := 0; i < n; i++ {
			k := r.Uint64()
			switch i % 10 {
			case 1:
				k &= 0xff // top bits zero: one long cluster
			case 2:
				k = 0
			case 3:
				if len(keys) > 0 {
					k = keys[r.IntN(len(keys))] // a duplicate
				}
			}
			keys = append(keys, k)
			want[k] = true
		}
		ks := newKeySet(keys)
		if ks.n != len(want) {
			t.Fatalf("n=%d: set holds %d keys, want %d", n, ks.n, len(want))
		}
		for k := range want {
			if !ks.has(k) {
				t.Fatalf("n=%d: key %#x missing", n, k)
			}
		}
		for i := 0; i < 10000; i++ {
			k := r.Uint64()
			if i%3 == 0 {
				k &= 0xff
			}
			if ks.has(k) != want[k] {
				t.Fatalf("n=%d: has(%#x) = %v, want %v", n, k, ks.has(k), want[k])
			}
		}
	}
}

// TestParseKey checks ParseKey against ID.String and Key on random IDs
// (lower and upper case) and rejects strings that are not IDs.
func TestParseKey(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 1000; i++ {
		var id ID
		for j := range id {
			id[j] = byte(r.Uint32())
		}
		s := id.String()
		if i%2 == 1 {
			s = strings.ToUpper(s)
		}
		k, ok := ParseKey(s)
		if !ok || k != id.Key() {
			t.Fatalf("ParseKey(%s) = %#x %v, want %#x", s, k, ok, id.Key())
		}
	}
	for _, s := range []string{"", "abc", strings.Repeat("0", 31), strings.Repeat("0", 33), strings.Repeat("0", 31) + "g", "x" + strings.Repeat("0", 31)} {
		if _, ok := ParseKey(s); ok {
			t.Errorf("ParseKey(%q) accepted", s)
		}
	}
}

// refID is the point ID's definition, written plainly: each value as its
// kind byte and 8 bytes (a string: its 4-byte length and bytes), then the
// XXH3-128 digest of the contents of each file a file parameter names, in
// parameter order, hashed with XXH3-128 seeded by the schema. Hasher.ID
// must agree with it, or every existing dataset's points would run again.
func refID(t *testing.T, s *Study, h *Hasher, p []engine.Value) ID {
	t.Helper()
	var b []byte
	for _, v := range p {
		b = append(b, byte(v.Kind))
		switch v.Kind {
		case engine.Int, engine.Bool:
			b = binary.LittleEndian.AppendUint64(b, uint64(v.I))
		case engine.Float:
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v.F))
		case engine.String:
			b = binary.LittleEndian.AppendUint32(b, uint32(len(v.S)))
			b = append(b, v.S...)
		}
	}
	for i, par := range s.Engine.Params() {
		if !par.File || p[i].Kind != engine.String || p[i].S == "" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.Dir, p[i].S))
		if err != nil {
			t.Fatal(err)
		}
		sum := xxh3.Hash128(data).Bytes()
		b = append(b, sum[:]...)
	}
	return ID(xxh3.Hash128Seed(b, h.seed).Bytes())
}

// mustID is the point ID of a resolved point.
func mustID(t testing.TB, h *Hasher, p []engine.Value) ID {
	t.Helper()
	id, err := h.ID(p)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestIDMatchesItsDefinition(t *testing.T) {
	s, err := Load("../studies/seed-moe.toml")
	if err != nil {
		t.Fatal(err)
	}
	h := NewHasher(s)
	p := make([]engine.Value, len(s.Engine.Params()))
	for idx := int64(0); idx < s.Combinations(); idx++ {
		s.Fill(idx, p)
		if err := s.Engine.Resolve(s.Dir, p); err != nil {
			t.Fatal(err)
		}
		if got, want := mustID(t, h, p), refID(t, s, h, p); got != want {
			t.Fatalf("point %d: ID %s, want %s", idx, got, want)
		}
	}
	// unset values, empty and long strings, a buffer that must grow
	p[0] = engine.Value{}
	p[1] = engine.StringV("")
	p[2] = engine.StringV(strings.Repeat("x", 5000))
	if got, want := mustID(t, h, p), refID(t, s, h, p); got != want {
		t.Fatalf("ID %s, want %s", got, want)
	}
}
