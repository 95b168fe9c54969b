package dataset

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/klauspost/compress/zstd"
)

// TestPageCodec checks that the registered zstd codec is pageCodec and
// that what it writes is standard zstd that decodes to the input, for
// incompressible, repetitive and empty pages, at the parts' level and at
// another level (which the library's encoder handles).
func TestPageCodec(t *testing.T) {
	c, err := compress.GetCodec(compress.Codecs.Zstd)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(*pageCodec); !ok {
		t.Fatalf("registered zstd codec is %T", c)
	}
	r := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 300<<10)
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	repeated := bytes.Repeat([]byte("0123456789abcdef"), 40<<10)
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	for _, src := range [][]byte{random, repeated, {}} {
		for _, level := range []int{pageLevel, 3} {
			enc := c.EncodeLevel(make([]byte, 0, c.CompressBound(int64(len(src)))), src, level)
			got, err := dec.DecodeAll(enc, nil)
			if err != nil || !bytes.Equal(got, src) {
				t.Fatalf("level %d, %d bytes: round trip failed (%v)", level, len(src), err)
			}
			back, err := compress.Decode(c, nil, enc)
			if err != nil || !bytes.Equal(back, src) {
				t.Fatalf("level %d, %d bytes: codec decode failed (%v)", level, len(src), err)
			}
		}
	}
	if len(c.EncodeLevel(nil, repeated, pageLevel)) > len(repeated)/100 {
		t.Fatal("a repetitive page did not compress")
	}
}

// TestEncodeFloats checks the float pages' zstd: it decodes to the input;
// a page with no match but skewed bytes (floats of one range) is stored as
// it is, where the strings' encoder entropy-codes it; and a repetitive page
// still compresses.
func TestEncodeFloats(t *testing.T) {
	c := newPageCodec(nil)
	r := rand.New(rand.NewPCG(3, 4))
	skewed := make([]byte, 0, 256<<10)
	for len(skewed) < cap(skewed) {
		skewed = binary.LittleEndian.AppendUint64(skewed, math.Float64bits(1+r.Float64()))
	}
	repeated := bytes.Repeat([]byte("0123456789abcdef"), 16<<10)
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	for _, src := range [][]byte{skewed, repeated, {}} {
		enc := c.EncodeFloats(nil, src)
		got, err := dec.DecodeAll(enc, nil)
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("%d bytes: round trip failed (%v)", len(src), err)
		}
	}
	if n, lit := len(c.EncodeFloats(nil, skewed)), len(c.EncodeLevel(nil, skewed, pageLevel)); n < len(skewed) || lit >= len(skewed) {
		t.Fatalf("skewed floats: %d bytes as floats, %d entropy-coded, of %d", n, lit, len(skewed))
	}
	if len(c.EncodeFloats(nil, repeated)) > len(repeated)/100 {
		t.Fatal("a repetitive float page did not compress")
	}
}
