package dataset

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/sweep-dse/sweep/engine"
)

// pageEncoder writes a Writer's buffered rows as a Parquet file of one row
// group and one data page per column. It encodes the pages itself, from the
// typed buffers, and leaves to the parquet package what it does once per
// page or column: page headers, compression bookkeeping, column chunk and
// file metadata (file.NewPageWriter, metadata.FileMetaDataBuilder). The
// library's column writers copy every value through generic encoders and
// grow fresh buffers for every column of every part; at the runner's part
// size that cost more than zstd itself.
//
// The encodings are those writerProps asks for and the column writers
// would produce (TestWriterMatchesArrow compares the files): definition
// levels RLE (runs only), integers DELTA_BINARY_PACKED, floats and
// booleans PLAIN, strings without a dictionary (point_id)
// DELTA_LENGTH_BYTE_ARRAY, strings with one a PLAIN dictionary page and
// RLE_DICTIONARY indices (runs only), and a dictionary too large for the
// writer's limit PLAIN. Statistics come from the
// parquet package's own statistics types, so their rules (NaN, signed
// zeros, size limits) are the library's.
type pageEncoder struct {
	body []byte // the page being encoded, uncompressed
	comp []byte // the page compressed
	strs []parquet.ByteArray
	lens []int64 // string lengths
}

// tellWriter counts the bytes written through it (the page writer's sink).
type tellWriter struct {
	w io.Writer
	n int64
}

func (t *tellWriter) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	t.n += int64(n)
	return n, err
}

// Tell is the number of bytes written so far.
func (t *tellWriter) Tell() int64 { return t.n }

var parquetMagic = []byte("PAR1")

// encodeFile writes the columns cols (n rows) as a Parquet file to out.
func (e *pageEncoder) encodeFile(out io.Writer, sc *schema.Schema, props *parquet.WriterProperties, kv metadata.KeyValueMetadata, cols []column, n int) error {
	sink := &tellWriter{w: out}
	if _, err := sink.Write(parquetMagic); err != nil {
		return err
	}
	fmb := metadata.NewFileMetadataBuilder(sc, props, kv)
	rgb := fmb.AppendRowGroup()
	var total int64
	for i := range cols {
		ccb := rgb.NextColumnChunk()
		written, err := e.writeColumn(sink, ccb, int16(i), &cols[i], props)
		if err != nil {
			return fmt.Errorf("column %s: %w", ccb.Descr().Name(), err)
		}
		total += written
	}
	rgb.SetNumRows(n)
	if err := rgb.Finish(total, 0); err != nil {
		return err
	}
	fmd, err := fmb.Finish()
	if err != nil {
		return err
	}
	size, err := fmd.WriteTo(sink, nil)
	if err != nil {
		return err
	}
	var tail [8]byte
	binary.LittleEndian.PutUint32(tail[:4], uint32(size))
	copy(tail[4:], parquetMagic)
	_, err = sink.Write(tail[:])
	return err
}

// writeColumn writes column c as column chunk ordinal: a dictionary page
// if it has one, then its data page. It returns the bytes written.
func (e *pageEncoder) writeColumn(sink *tellWriter, ccb *metadata.ColumnChunkMetaDataBuilder, ordinal int16, c *column, props *parquet.WriterProperties) (int64, error) {
	// a number column of one value throughout the part (most parameters,
	// some metrics) is encoded from that value: its repeats are never
	// written out
	run := c.rep > 0 && c.defs == nil && (c.kind == engine.Int && len(c.ints) == 1 || c.kind == engine.Float && len(c.flts) == 1)
	if !run {
		c.settle()
	}
	descr := ccb.Descr()
	path := descr.Path()
	pw, err := file.NewPageWriter(sink, props.CompressionFor(path), props.CompressionLevelFor(path), ccb, 0, ordinal, props.Allocator(), false, nil, nil)
	if err != nil {
		return 0, err
	}
	var codec compress.Codec
	if pw.HasCompressor() {
		if codec, err = compress.GetCodec(props.CompressionFor(path)); err != nil {
			return 0, err
		}
	}
	stats := metadata.NewStatistics(descr, props.Allocator())
	nulls := int64(c.n - c.valid())

	// definition levels (nullable columns), then values
	e.body = e.body[:0]
	if descr.MaxDefinitionLevel() > 0 {
		e.body = appendLevels(e.body, c)
	}
	var written int64
	enc := parquet.Encodings.Plain
	// a dictionary larger than the writer's limit goes plain (encodings
	// PLAIN), where pqarrow writes the dictionary it had and then plain
	// pages (RLE_DICTIONARY and PLAIN); the values are the same
	dict := c.kind == engine.String && c.dict && int64(dictBytes(c.dvals)) <= props.DictionaryPageSizeLimit()
	switch {
	case c.kind == engine.Int && run:
		enc = parquet.Encodings.DeltaBinaryPacked
		e.body = appendDeltaRun(e.body, c.ints[0], c.n)
		st := stats.(*metadata.Int64Statistics)
		st.Update(c.ints, nulls)
		st.IncNumValues(int64(c.rep))
	case c.kind == engine.Int:
		enc = parquet.Encodings.DeltaBinaryPacked
		e.body = appendDelta(e.body, c.ints)
		stats.(*metadata.Int64Statistics).Update(c.ints, nulls)
	case c.kind == engine.Float && run:
		e.body = appendFloatRun(e.body, c.flts[0], c.n)
		st := stats.(*metadata.Float64Statistics)
		st.Update(c.flts, nulls)
		st.IncNumValues(int64(c.rep))
	case c.kind == engine.Float:
		e.body = appendFloats(e.body, c.flts)
		stats.(*metadata.Float64Statistics).Update(c.flts, nulls)
	case c.kind == engine.Bool:
		e.body = appendBools(e.body, c.bools)
		stats.(*metadata.BooleanStatistics).Update(c.bools, nulls)
	case dict:
		enc = props.DictionaryIndexEncoding()
		e.strs = e.strs[:0]
		for _, s := range c.dvals {
			e.strs = append(e.strs, byteArray(s))
		}
		// the dictionary's statistics are the values': every entry is used
		st := stats.(*metadata.ByteArrayStatistics)
		st.Update(e.strs, nulls)
		st.IncNumValues(int64(len(c.idx) - len(c.dvals)))
		clear(e.strs)
		var page []byte
		for _, s := range c.dvals {
			page = binary.LittleEndian.AppendUint32(page, uint32(len(s)))
			page = append(page, s...)
		}
		dp := file.NewDictionaryPage(memory.NewBufferBytes(page), int32(len(c.dvals)), props.DictionaryPageEncoding())
		n, err := pw.WriteDictionaryPage(dp)
		if err != nil {
			return written, err
		}
		written += n
		width := 0
		if len(c.dvals) > 0 {
			width = max(1, bits.Len32(uint32(len(c.dvals)-1)))
		}
		e.body = append(e.body, byte(width))
		e.body = appendRuns(e.body, c.idx, width)
	case !c.dict: // strings without a dictionary: DELTA_LENGTH_BYTE_ARRAY
		enc = parquet.Encodings.DeltaLengthByteArray
		e.strs, e.lens = e.strs[:0], e.lens[:0]
		start := 0
		for _, end := range c.ends {
			v := c.sbuf[start:end:end]
			if len(v) == 0 {
				v = empty
			}
			e.strs = append(e.strs, v)
			e.lens = append(e.lens, int64(len(v)))
			start = end
		}
		e.body = appendDelta(e.body, e.lens)
		e.body = append(e.body, c.sbuf...)
		stats.(*metadata.ByteArrayStatistics).Update(e.strs, nulls)
		clear(e.strs)
	default: // a dictionary too large to hand over: its values plain
		e.strs = e.strs[:0]
		for _, i := range c.idx {
			s := c.dvals[i]
			e.strs = append(e.strs, byteArray(s))
			e.body = binary.LittleEndian.AppendUint32(e.body, uint32(len(s)))
			e.body = append(e.body, s...)
		}
		stats.(*metadata.ByteArrayStatistics).Update(e.strs, nulls)
		clear(e.strs)
	}

	// the page's statistics are the chunk's: one page per chunk
	es, err := stats.Encode()
	if err != nil {
		return written, err
	}
	es.ApplyStatSizeLimits(int(props.MaxStatsSizeFor(path)))
	es.Signed = descr.SortOrder() == schema.SortSIGNED
	if len(e.body) > math.MaxInt32 {
		return written, fmt.Errorf("a page of %d bytes is more than a Parquet page can hold: write smaller parts (--flush-rows)", len(e.body))
	}
	data := e.body
	if pc, ok := codec.(*pageCodec); ok && c.kind == engine.Float && props.CompressionLevelFor(path) == pageLevel {
		e.comp = pc.EncodeFloats(e.comp[:cap(e.comp)], e.body)
		data = e.comp
	} else if codec != nil {
		e.comp = codec.EncodeLevel(e.comp[:cap(e.comp)], e.body, props.CompressionLevelFor(path))
		data = e.comp
	}
	dp := file.NewDataPageV1WithStats(memory.NewBufferBytes(data), int32(c.n), enc,
		parquet.Encodings.RLE, parquet.Encodings.RLE, int32(len(e.body)), es)
	n, err := pw.WriteDataPage(dp)
	dp.Release()
	if err != nil {
		return written, err
	}
	written += n
	if c.n > 0 && es.IsSet() {
		ccb.SetStats(es)
	}
	return written, pw.Close(dict, false)
}

// valid is the number of non-null values.
func (c *column) valid() int {
	switch {
	case c.kind == engine.Int:
		return len(c.ints) + c.rep
	case c.kind == engine.Float:
		return len(c.flts) + c.rep
	case c.kind == engine.Bool:
		return len(c.bools) + c.rep
	case c.dict:
		return len(c.idx) + c.rep
	}
	return len(c.ends)
}

func dictBytes(vals []string) int {
	size := 0
	for _, s := range vals {
		size += len(s) + 4
	}
	return size
}

// appendLevels appends the column's definition levels, RLE-encoded with a
// bit width of 1 and prefixed by their length (data page v1): one run of
// ones for a column without nulls, else a run per change.
func appendLevels(b []byte, c *column) []byte {
	at := len(b)
	b = append(b, 0, 0, 0, 0)
	if c.defs == nil {
		b = appendRun(b, c.n, 1, 1)
	} else {
		for i := 0; i < len(c.defs); {
			j := i + 1
			for j < len(c.defs) && c.defs[j] == c.defs[i] {
				j++
			}
			b = appendRun(b, j-i, uint64(c.defs[i]), 1)
			i = j
		}
	}
	binary.LittleEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	return b
}

// appendRun appends an RLE run of the RLE/bit-packed hybrid encoding: n
// repeats of v in ceil(width/8) bytes.
func appendRun(b []byte, n int, v uint64, width int) []byte {
	b = binary.AppendUvarint(b, uint64(n)<<1)
	for k := 0; k < (width+7)/8; k++ {
		b = append(b, byte(v>>(8*k)))
	}
	return b
}

// appendRuns appends dictionary indices as RLE runs of the hybrid encoding.
func appendRuns(b []byte, idx []int32, width int) []byte {
	for i := 0; i < len(idx); {
		j := i + 1
		for j < len(idx) && idx[j] == idx[i] {
			j++
		}
		b = appendRun(b, j-i, uint64(idx[i]), width)
		i = j
	}
	return b
}

// littleEndian is whether this machine stores numbers as Parquet does.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// appendFloats appends PLAIN doubles: 8 bytes each, little-endian.
func appendFloats(b []byte, v []float64) []byte {
	if littleEndian {
		return append(b, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 8*len(v))...)
	}
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, *(*uint64)(unsafe.Pointer(&x)))
	}
	return b
}

// appendBools appends PLAIN booleans: one bit each, the first in the
// lowest bit.
func appendBools(b []byte, v []bool) []byte {
	for i := 0; i < len(v); i += 8 {
		var x byte
		for k := 0; k < 8 && i+k < len(v); k++ {
			if v[i+k] {
				x |= 1 << k
			}
		}
		b = append(b, x)
	}
	return b
}

// Delta encoding's block layout: 128 values a block in 4 miniblocks of 32.
const (
	deltaBlock     = 128
	deltaMiniblock = 32
)

// appendDelta appends v DELTA_BINARY_PACKED: a header (block size,
// miniblocks per block, value count, first value), then per block of 128
// deltas the smallest delta, the bit width of each miniblock of 32, and
// each miniblock's deltas less the smallest, bit-packed (the last one
// padded with zeros; widths of miniblocks with no deltas left are 0 and
// take no bytes). A column of one value costs 5 bytes per block.
func appendDelta(b []byte, v []int64) []byte {
	var first int64
	if len(v) > 0 {
		first = v[0]
	}
	b = appendDeltaHeader(b, len(v), first)
	var d [deltaBlock]uint64
	for i := 1; i < len(v); i += deltaBlock {
		n := min(deltaBlock, len(v)-i)
		w := v[i-1 : i+n]
		// the deltas (wrapping, as the encoding defines them), their
		// smallest and largest
		minDelta, maxDelta := w[1]-w[0], w[1]-w[0]
		for k := range n {
			x := w[k+1] - w[k]
			d[k] = uint64(x)
			minDelta, maxDelta = min(minDelta, x), max(maxDelta, x)
		}
		b = binary.AppendVarint(b, minDelta)
		if minDelta == maxDelta {
			// every delta alike (a column of one value, a steady step):
			// every miniblock has width 0 and takes no bytes
			b = append(b, 0, 0, 0, 0)
			continue
		}
		clear(d[n:]) // the last block's padding, 0 after the subtraction too
		wAt := len(b)
		b = append(b, 0, 0, 0, 0)
		for m := 0; m*deltaMiniblock < n; m++ {
			mb := (*[deltaMiniblock]uint64)(d[m*deltaMiniblock:])
			var or uint64
			lim := min(deltaMiniblock, n-m*deltaMiniblock)
			for k := range mb[:lim] {
				mb[k] -= uint64(minDelta)
				or |= mb[k]
			}
			width := bits.Len64(or)
			b[wAt+m] = byte(width)
			if width == 0 {
				continue
			}
			b = appendPacked(b, mb, uint(width))
		}
	}
	return b
}

// appendDeltaHeader appends the DELTA_BINARY_PACKED header of n values
// starting with first: block size, miniblocks per block, value count, first
// value (zigzag).
func appendDeltaHeader(b []byte, n int, first int64) []byte {
	b = binary.AppendUvarint(b, deltaBlock)
	b = binary.AppendUvarint(b, deltaBlock/deltaMiniblock)
	b = binary.AppendUvarint(b, uint64(n))
	return binary.AppendVarint(b, first)
}

// appendDeltaRun appends n copies of x as DELTA_BINARY_PACKED: what
// appendDelta writes for them, without them.
func appendDeltaRun(b []byte, x int64, n int) []byte {
	b = appendDeltaHeader(b, n, x)
	// per block of deltas: the smallest delta (0, one byte) and four
	// miniblock widths of 0
	blocks := (max(n, 1) - 1 + deltaBlock - 1) / deltaBlock
	return append(b, make([]byte, 5*blocks)...)
}

// appendFloatRun appends n copies of x as PLAIN floats.
func appendFloatRun(b []byte, x float64, n int) []byte {
	start := len(b)
	b = slices.Grow(b, 8*n)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	for have := 8; have < 8*n; have = len(b) - start {
		b = append(b, b[start:start+min(have, 8*n-have)]...)
	}
	return b[:start+8*n]
}

// appendPacked appends 32 values of width bits each (1 to 64), least
// significant bit first: 4·width bytes.
func appendPacked(b []byte, v *[deltaMiniblock]uint64, width uint) []byte {
	n := 4 * int(width)
	b = slices.Grow(b, n+8) // 8 bytes of slack for the last word
	out := b[len(b) : len(b)+n+8]
	var acc uint64 // bits not yet written, in the low end
	have := uint(0)
	o := 0
	for _, x := range v {
		acc |= x << have // a shift by 64 or more gives 0
		have += width
		if have >= 64 {
			binary.LittleEndian.PutUint64(out[o:], acc)
			o += 8
			have -= 64
			acc = x >> (width - have) // the bits of x that did not fit (none when have is 0: x < 2^width)
		}
	}
	// 32·width bits end on a byte: have is 0 or 32 here
	binary.LittleEndian.PutUint64(out[o:], acc)
	return b[:len(b)+n]
}

// empty is the empty value: not nil, which the statistics take for none.
var empty = parquet.ByteArray{}

// byteArray returns the bytes of s without a copy; the encoders only read
// them.
func byteArray(s string) parquet.ByteArray {
	if s == "" {
		return empty
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
