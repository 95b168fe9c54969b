package dataset

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/sweep-dse/sweep/engine"
)

// Row is one point's result.
type Row struct {
	ID       string
	Status   string
	Error    string
	Params   []engine.Value // in the engine's parameter order
	Metrics  []engine.Value // in the engine's metric order; ignored for failed rows
	Elapsed  time.Duration
	Finished time.Time
}

// Writer buffers rows column by column and writes them as part files.
//
// It encodes the Parquet pages itself, straight from its typed buffers
// (pageEncoder), rather than through Arrow arrays or the parquet package's
// column writers: numbers go from the buffers to the page, and strings are
// dictionary-encoded as rows arrive (a column of the few values a study
// sweeps costs a comparison per row). The files are those pqarrow would
// write for the same schema and properties: same Parquet schema,
// encodings, statistics and ARROW:schema (TestWriterMatchesArrow).
type Writer struct {
	dir      string
	name     string // part name stem: part-<stem>-<seq>.parquet
	seq      int
	schema   *arrow.Schema
	pqschema *schema.Schema
	eng      engine.Engine
	kv       metadata.KeyValueMetadata // ARROW:schema, then meta in key order
	cols     []column
	rows     int
	props    *parquet.WriterProperties
	written  []string

	enc pageEncoder
	buf *bufio.Writer
}

// column is one column's buffered values. Only the non-null values are
// kept; defs holds the definition levels once a null has been seen.
type column struct {
	kind     engine.Kind // Int (also timestamps), Float, Bool or String
	nullable bool
	dict     bool    // string column written with a dictionary
	n        int     // rows, nulls included
	defs     []int16 // nil while every value is valid

	// Repeats of the last int or float value are counted in rep and kept
	// out of ints and flts until settle writes them. A row's hundred-odd
	// values go to as many buffers, and storing into that many streams of
	// memory is most of what appending costs; most columns of a part repeat
	// their last value (the study's fixed parameters, the outer axes). The
	// last value's bits are kept here, beside the fields every append
	// reads, so a repeat touches no buffer.
	rep   int
	lastV uint64 // the bits of ints' or flts' last value
	ints  []int64
	flts  []float64
	bools []bool

	// dictionary strings: indices into dvals, distinct values in order of
	// first appearance, an index of them once there are many
	idx   []int32
	dvals []string
	dmap  map[string]int32
	last  int32

	// plain strings: the bytes of all values and each value's end
	sbuf []byte
	ends []int
}

// dictScan is how many distinct values a dictionary column searches
// linearly before it indexes them with a map.
const dictScan = 8

func (c *column) reset() {
	c.n, c.rep = 0, 0
	c.ints, c.flts, c.bools = c.ints[:0], c.flts[:0], c.bools[:0]
	c.defs = nil
	c.idx = c.idx[:0]
	clear(c.dvals) // drop references to the part's strings
	c.dvals = c.dvals[:0]
	c.dmap = nil
	c.last = 0
	c.sbuf, c.ends = c.sbuf[:0], c.ends[:0]
}

// settle writes the pending repeats of the last value (rep).
func (c *column) settle() {
	if c.rep == 0 {
		return
	}
	switch {
	case c.kind == engine.Int:
		c.ints = appendRepeat(c.ints, c.rep)
	case c.kind == engine.Float:
		c.flts = appendRepeat(c.flts, c.rep)
	case c.kind == engine.Bool:
		c.bools = appendRepeat(c.bools, c.rep)
	default: // a dictionary string
		c.idx = appendRepeat(c.idx, c.rep)
	}
	c.rep = 0
}

// boolBits is a Bool value's truth as 1 or 0 (any non-zero I is true).
func boolBits(i int64) uint64 {
	if i != 0 {
		return 1
	}
	return 0
}

// appendRepeat appends n more copies of s's last value.
func appendRepeat[T any](s []T, n int) []T {
	s = slices.Grow(s, n)
	x := s[len(s)-1]
	for range n {
		s = append(s, x)
	}
	return s
}

// putStr appends a valid string.
func (c *column) putStr(s string) {
	c.n++
	if !c.dict {
		c.sbuf = append(c.sbuf, s...)
		c.ends = append(c.ends, len(c.sbuf))
		return
	}
	if len(c.dvals) > 0 && c.dvals[c.last] == s {
		c.rep++ // idx ends with last
		return
	}
	c.settle()
	c.idx = append(c.idx, c.lookup(s))
}

// lookup returns the dictionary index of s, adding it if new.
func (c *column) lookup(s string) int32 {
	if c.dmap == nil {
		for i, v := range c.dvals {
			if v == s {
				c.last = int32(i)
				return c.last
			}
		}
		if len(c.dvals) >= dictScan {
			c.dmap = make(map[string]int32, 2*dictScan)
			for i, v := range c.dvals {
				c.dmap[v] = int32(i)
			}
		}
	} else if i, ok := c.dmap[s]; ok {
		c.last = i
		return i
	}
	c.last = int32(len(c.dvals))
	c.dvals = append(c.dvals, s)
	if c.dmap != nil {
		c.dmap[s] = c.last
	}
	return c.last
}

// null appends a null.
func (c *column) null() {
	c.settle()
	if c.defs == nil {
		c.defs = make([]int16, c.n, max(2*c.n, 64))
		for i := range c.defs {
			c.defs[i] = 1
		}
	}
	c.defs = append(c.defs, 0)
	c.n++
}

// put appends a value; an unset value (or !ok) is null.
func (c *column) put(v *engine.Value, ok bool) {
	if !ok || v.Kind == engine.Unset {
		c.null()
		return
	}
	c.settle()
	if c.defs != nil {
		c.defs = append(c.defs, 1)
	}
	switch c.kind {
	case engine.Int:
		c.ints = append(c.ints, v.I)
		c.lastV = uint64(v.I)
		c.n++
	case engine.Float:
		f := v.F
		if v.Kind == engine.Int {
			f = float64(v.I)
		}
		c.flts = append(c.flts, f)
		c.lastV = math.Float64bits(f)
		c.n++
	case engine.Bool:
		c.bools = append(c.bools, v.I != 0)
		c.lastV = boolBits(v.I)
		c.n++
	default:
		c.putStr(v.S)
	}
}

// appendValues appends vals[i] to cols[i]: the common cases (a valid value
// of the column's kind in a column without nulls so far, a string equal to
// the dictionary column's last one) in the loop, the others through put.
func appendValues(cols []column, vals []engine.Value) {
	cols = cols[:len(vals)]
	for i := range vals {
		c, v := &cols[i], &vals[i]
		if c.defs == nil && v.Kind == c.kind {
			switch v.Kind {
			case engine.Int:
				if c.lastV == uint64(v.I) && c.n > 0 {
					c.rep++
				} else {
					c.settle()
					c.ints = append(c.ints, v.I)
					c.lastV = uint64(v.I)
				}
				c.n++
				continue
			case engine.Float:
				// the same bits: -0 is not 0, and a NaN repeats
				if b := math.Float64bits(v.F); c.lastV == b && c.n > 0 {
					c.rep++
				} else {
					c.settle()
					c.flts = append(c.flts, v.F)
					c.lastV = b
				}
				c.n++
				continue
			case engine.Bool:
				if b := boolBits(v.I); c.lastV == b && c.n > 0 {
					c.rep++
				} else {
					c.settle()
					c.bools = append(c.bools, b != 0)
					c.lastV = b
				}
				c.n++
				continue
			case engine.String:
				if c.dict && len(c.dvals) > 0 && c.dvals[c.last] == v.S {
					c.rep++ // idx ends with last
					c.n++
					continue
				}
			}
		}
		c.put(v, true)
	}
}

// NewWriter returns a writer of parts named part-<stem>-NNNNNN.parquet in
// dir. meta is stored in every part's key-value metadata.
func NewWriter(dir, stem string, eng engine.Engine, meta map[string]string) (*Writer, error) {
	sc, err := Schema(eng)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("dataset %s: %w", dir, err)
	}
	props := writerProps(eng)
	pqs, err := pqarrow.ToParquet(sc, props, arrowProps())
	if err != nil {
		return nil, fmt.Errorf("dataset: schema: %w", err)
	}
	kv := make(metadata.KeyValueMetadata, 0, 1+len(meta))
	kv.Append("ARROW:schema", base64.StdEncoding.EncodeToString(flight.SerializeSchema(sc, memory.DefaultAllocator)))
	for _, k := range sortedMetaKeys(meta) {
		kv.Append(k, meta[k])
	}
	w := &Writer{dir: dir, name: stem, schema: sc, pqschema: pqs, eng: eng, kv: kv, props: props}
	for i, f := range sc.Fields() {
		c := column{nullable: f.Nullable}
		switch f.Type.ID() {
		case arrow.INT64, arrow.TIMESTAMP:
			c.kind = engine.Int
		case arrow.FLOAT64:
			c.kind = engine.Float
		case arrow.BOOL:
			c.kind = engine.Bool
		case arrow.STRING:
			c.kind = engine.String
			c.dict = props.DictionaryEnabledFor(pqs.Column(i).Path())
		default:
			return nil, fmt.Errorf("dataset: column %s: unexpected type %s", f.Name, f.Type)
		}
		w.cols = append(w.cols, c)
	}
	return w, nil
}

func arrowProps() pqarrow.ArrowWriterProperties {
	return pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema())
}

// writerProps are the Parquet settings: zstd; dictionary encoding for string
// columns (statuses, modes, names: few distinct values); delta encoding
// (DELTA_BINARY_PACKED) for integer and timestamp columns; plain encoding
// for floats and IDs, where zstd compresses repeated values as well and a
// dictionary only costs time.
//
// Why delta for integers: a plain integer column that varies within a part
// (cycles, bytes, FLOPs, sequence lengths, timestamps) costs zstd most of
// its time, as zstd finds many short matches in it, and delta encoding
// first shrinks it to a few bits per value; a column of one value becomes
// a few bytes, cheaper than copying it plain. Measured on the 1M-point
// benchmark study: zstd 1.37 s -> 0.54 s of CPU, wall 4.6 s -> 4.4 s, files
// 63 -> 53 MB. (Delta only for the columns that vary within a part, the
// others plain, measured slower; byte-stream-split floats measured no gain.)
func writerProps(eng engine.Engine) *parquet.WriterProperties {
	opts := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithCompressionLevel(1), // zstd's fastest level: a few % larger files, half the time
		parquet.WithDictionaryDefault(false),
		parquet.WithMaxRowGroupLength(1 << 20),
	}
	for _, c := range []string{ColStatus, ColError, ColEngine, ColEngineVersion} {
		opts = append(opts, parquet.WithDictionaryFor(c, true))
	}
	opts = append(opts, parquet.WithEncodingFor(ColFinished, parquet.Encodings.DeltaBinaryPacked),
		parquet.WithEncodingFor(ColID, parquet.Encodings.DeltaLengthByteArray))
	if eng != nil {
		for _, p := range eng.Params() {
			opts = columnOptions(opts, p.Name, p.Kind)
		}
		for _, m := range eng.Metrics() {
			opts = columnOptions(opts, m.Name, m.Kind)
		}
	}
	return parquet.NewWriterProperties(opts...)
}

// columnOptions adds the settings of a parameter or metric column of kind k.
func columnOptions(opts []parquet.WriterProperty, name string, k engine.Kind) []parquet.WriterProperty {
	switch k {
	case engine.String, engine.Unset: // Unset: a string column (arrowType)
		return append(opts, parquet.WithDictionaryFor(name, true))
	case engine.Int:
		return append(opts, parquet.WithEncodingFor(name, parquet.Encodings.DeltaBinaryPacked))
	}
	return opts
}

// Rows is the number of buffered rows.
func (w *Writer) Rows() int { return w.rows }

// Written lists the parts this writer has written.
func (w *Writer) Written() []string { return w.written }

// Append buffers one row. It keeps no reference to r.ID (the point_id
// column has no dictionary: its bytes are copied), so the caller may reuse
// the ID's memory.
func (w *Writer) Append(r *Row) {
	c := w.cols
	c[0].putStr(r.ID)
	c[1].putStr(r.Status)
	c[2].putStr(r.Error)
	col := 3
	appendValues(c[col:col+len(r.Params)], r.Params)
	col += len(r.Params)
	nm := len(w.eng.Metrics())
	if r.Status == StatusOK && len(r.Metrics) >= nm {
		appendValues(c[col:col+nm], r.Metrics[:nm])
		col += nm
	} else {
		ok := r.Status == StatusOK
		var unset engine.Value
		for i := 0; i < nm; i++ {
			v := &unset
			if ok && i < len(r.Metrics) {
				v = &r.Metrics[i]
			}
			c[col].put(v, ok)
			col++
		}
	}
	c[col].putStr(w.eng.Name())
	c[col+1].putStr(w.eng.Version())
	c[col+2].flts = append(c[col+2].flts, r.Elapsed.Seconds())
	c[col+2].n++
	c[col+3].ints = append(c[col+3].ints, r.Finished.UnixMicro())
	c[col+3].n++
	w.rows++
}

// Flush writes the buffered rows as one part: to a temporary file, synced,
// then renamed into place. It does nothing when no rows are buffered.
func (w *Writer) Flush() error {
	if w.rows == 0 {
		return nil
	}
	for {
		w.seq++
		name := fmt.Sprintf("%s%s-%06d%s", PartPrefix, w.name, w.seq, PartExt)
		final := filepath.Join(w.dir, name)
		if _, err := os.Lstat(final); err == nil {
			continue // never overwrite a part
		}
		if err := w.writePart(name); err != nil {
			return err
		}
		for i := range w.cols {
			w.cols[i].reset()
		}
		w.rows = 0
		w.written = append(w.written, final)
		return nil
	}
}

// writePart writes the buffered rows as part name (writeAtomic).
func (w *Writer) writePart(name string) error {
	return writeAtomic(w.dir, name, func(f io.Writer) error {
		if w.buf == nil {
			w.buf = bufio.NewWriterSize(f, 1<<20)
		} else {
			w.buf.Reset(f)
		}
		defer w.buf.Reset(nil)
		if err := w.encode(w.buf); err != nil {
			return err
		}
		return w.buf.Flush()
	})
}

// writeAtomic writes part name in dir with write: into a temporary file,
// synced, then renamed into place (replacing a part of that name) and the
// folder synced. On failure the temporary file is removed and nothing else
// changes.
func writeAtomic(dir, name string, write func(io.Writer) error) (err error) {
	return writeAtomicVia(dir, name, tmpPrefix+name, write)
}

// writeAtomicVia is writeAtomic through the temporary file tmpName.
func writeAtomicVia(dir, name, tmpName string, write func(io.Writer) error) (err error) {
	tmp := filepath.Join(dir, tmpName)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := write(f); err != nil {
		return fmt.Errorf("dataset: part %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("dataset: part %s: sync: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("dataset: part %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("dataset: part %s: %w", name, err)
	}
	return syncDir(dir)
}

// encode writes the buffered rows as a Parquet file of one row group
// (pageEncoder).
func (w *Writer) encode(out io.Writer) (err error) {
	defer func() { // the parquet package reports some failures by panicking
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return w.enc.encodeFile(out, w.pqschema, w.props, w.kv, w.cols, w.rows)
}

// WritePart writes one record batch as a part named name in dir,
// atomically (through a temporary file and a rename, which replaces an
// existing part of that name).
func WritePart(dir, name string, rec arrow.RecordBatch, meta map[string]string) error {
	props := writerProps(nil)
	return writePart(dir, name, rec.Schema(), rec, props, meta)
}

func writePart(dir, name string, sc *arrow.Schema, rec arrow.RecordBatch, props *parquet.WriterProperties, meta map[string]string) error {
	return writePartVia(dir, name, tmpPrefix+name, sc, rec, props, meta)
}

// writePartVia is writePart through the temporary file tmpName.
func writePartVia(dir, name, tmpName string, sc *arrow.Schema, rec arrow.RecordBatch, props *parquet.WriterProperties, meta map[string]string) error {
	return writeAtomicVia(dir, name, tmpName, func(f io.Writer) error {
		// the file writer closes a sink that can be closed; writeAtomic
		// syncs and closes the file itself
		fw, err := pqarrow.NewFileWriter(sc, struct{ io.Writer }{f}, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
		if err != nil {
			return err
		}
		if err := fw.Write(rec); err != nil {
			return err
		}
		for _, k := range sortedMetaKeys(meta) {
			if err := fw.AppendKeyValueMetadata(k, meta[k]); err != nil {
				return err
			}
		}
		return fw.Close()
	})
}

func sortedMetaKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
