package dataset

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

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
type Writer struct {
	dir     string
	name    string // part name stem: part-<stem>-<seq>.parquet
	seq     int
	schema  *arrow.Schema
	eng     engine.Engine
	meta    map[string]string
	cols    []column
	rows    int
	props   *parquet.WriterProperties
	written []string
}

// column is one column's buffered values.
type column struct {
	kind  engine.Kind
	ints  []int64
	flts  []float64
	strs  []string
	bools []bool
	valid []bool // nil while every value is valid
}

func (c *column) reset() {
	c.ints, c.flts, c.strs, c.bools = c.ints[:0], c.flts[:0], c.strs[:0], c.bools[:0]
	c.valid = nil
}

func (c *column) len() int {
	switch c.kind {
	case engine.Int:
		return len(c.ints)
	case engine.Float:
		return len(c.flts)
	case engine.Bool:
		return len(c.bools)
	}
	return len(c.strs)
}

// put appends a value; the common case (valid, no nulls so far) is inline.
func (c *column) put(v *engine.Value, ok bool) {
	if ok && c.valid == nil && v.Kind != engine.Unset {
		switch c.kind {
		case engine.Int:
			c.ints = append(c.ints, v.I)
			return
		case engine.Float:
			if v.Kind == engine.Float {
				c.flts = append(c.flts, v.F)
				return
			}
		case engine.String:
			c.strs = append(c.strs, v.S)
			return
		}
	}
	c.add(*v, ok)
}

// add appends a value; an unset value (or !ok) is null.
func (c *column) add(v engine.Value, ok bool) {
	if !ok || !v.IsSet() {
		if c.valid == nil {
			n := c.len()
			c.valid = make([]bool, n, max(2*n, 64))
			for i := range c.valid {
				c.valid[i] = true
			}
		}
		c.valid = append(c.valid, false)
		c.zero()
		return
	}
	if c.valid != nil {
		c.valid = append(c.valid, true)
	}
	switch c.kind {
	case engine.Int:
		c.ints = append(c.ints, v.I)
	case engine.Float:
		if v.Kind == engine.Int {
			c.flts = append(c.flts, float64(v.I))
		} else {
			c.flts = append(c.flts, v.F)
		}
	case engine.Bool:
		c.bools = append(c.bools, v.I != 0)
	default:
		c.strs = append(c.strs, v.S)
	}
}

func (c *column) zero() {
	switch c.kind {
	case engine.Int:
		c.ints = append(c.ints, 0)
	case engine.Float:
		c.flts = append(c.flts, 0)
	case engine.Bool:
		c.bools = append(c.bools, false)
	default:
		c.strs = append(c.strs, "")
	}
}

// build makes the column's Arrow array.
func (c *column) build(dt arrow.DataType) arrow.Array {
	mem := memory.DefaultAllocator
	var b array.Builder
	switch c.kind {
	case engine.Int:
		if c.valid == nil { // no nulls: wrap the values without a copy
			vals := c.ints
			c.ints = make([]int64, 0, len(vals)) // the array owns vals now
			return array.NewInt64Data(array.NewData(dt, len(vals), []*memory.Buffer{nil, memory.NewBufferBytes(arrow.Int64Traits.CastToBytes(vals))}, nil, 0, 0))
		}
		x := array.NewInt64Builder(mem)
		x.AppendValues(c.ints, c.valid)
		b = x
	case engine.Float:
		if c.valid == nil {
			vals := c.flts
			c.flts = make([]float64, 0, len(vals))
			return array.NewFloat64Data(array.NewData(dt, len(vals), []*memory.Buffer{nil, memory.NewBufferBytes(arrow.Float64Traits.CastToBytes(vals))}, nil, 0, 0))
		}
		x := array.NewFloat64Builder(mem)
		x.AppendValues(c.flts, c.valid)
		b = x
	case engine.Bool:
		x := array.NewBooleanBuilder(mem)
		x.AppendValues(c.bools, c.valid)
		b = x
	default:
		x := array.NewStringBuilder(mem)
		x.AppendValues(c.strs, c.valid)
		b = x
	}
	defer b.Release()
	return b.NewArray()
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
	w := &Writer{dir: dir, name: stem, schema: sc, eng: eng, meta: meta, props: writerProps(eng)}
	// point_id, status, error, params, metrics, engine, engine_version, elapsed_s, finished_at
	kinds := []engine.Kind{engine.String, engine.String, engine.String}
	for _, p := range eng.Params() {
		kinds = append(kinds, p.Kind)
	}
	for _, m := range eng.Metrics() {
		kinds = append(kinds, m.Kind)
	}
	kinds = append(kinds, engine.String, engine.String, engine.Float, engine.Int)
	for _, k := range kinds {
		if k == engine.Unset {
			k = engine.String
		}
		w.cols = append(w.cols, column{kind: k})
	}
	return w, nil
}

// writerProps are the Parquet settings: zstd; dictionary encoding for string
// columns (statuses, modes, names: few distinct values), plain encoding for
// numbers and IDs, where zstd compresses repeated values as well and a
// dictionary only costs time.
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
	if eng != nil {
		for _, p := range eng.Params() {
			if p.Kind == engine.String || p.Kind == engine.Unset {
				opts = append(opts, parquet.WithDictionaryFor(p.Name, true))
			}
		}
		for _, m := range eng.Metrics() {
			if m.Kind == engine.String {
				opts = append(opts, parquet.WithDictionaryFor(m.Name, true))
			}
		}
	}
	return parquet.NewWriterProperties(opts...)
}

// Rows is the number of buffered rows.
func (w *Writer) Rows() int { return w.rows }

// Written lists the parts this writer has written.
func (w *Writer) Written() []string { return w.written }

// Append buffers one row.
func (w *Writer) Append(r *Row) {
	c := w.cols
	c[0].strs = append(c[0].strs, r.ID)
	c[1].strs = append(c[1].strs, r.Status)
	c[2].strs = append(c[2].strs, r.Error)
	col := 3
	for i := range r.Params {
		c[col].put(&r.Params[i], true)
		col++
	}
	ok := r.Status == StatusOK
	nm := len(w.eng.Metrics())
	var unset engine.Value
	for i := 0; i < nm; i++ {
		v := &unset
		if ok && i < len(r.Metrics) {
			v = &r.Metrics[i]
		}
		c[col].put(v, ok)
		col++
	}
	c[col].strs = append(c[col].strs, w.eng.Name())
	c[col+1].strs = append(c[col+1].strs, w.eng.Version())
	c[col+2].flts = append(c[col+2].flts, r.Elapsed.Seconds())
	c[col+3].ints = append(c[col+3].ints, r.Finished.UTC().UnixMicro())
	w.rows++
}

// record builds the buffered rows into a record batch and resets the buffers.
func (w *Writer) record() arrow.RecordBatch {
	arrs := make([]arrow.Array, len(w.cols))
	for i := range w.cols {
		f := w.schema.Field(i)
		if ts, ok := f.Type.(*arrow.TimestampType); ok {
			b := array.NewTimestampBuilder(memory.DefaultAllocator, ts)
			for _, v := range w.cols[i].ints {
				b.Append(arrow.Timestamp(v))
			}
			arrs[i] = b.NewArray()
			b.Release()
		} else {
			arrs[i] = w.cols[i].build(f.Type)
		}
		w.cols[i].reset()
	}
	rec := array.NewRecordBatch(w.schema, arrs, int64(w.rows))
	for _, a := range arrs {
		a.Release()
	}
	w.rows = 0
	return rec
}

// Flush writes the buffered rows as one part: to a temporary file, synced,
// then renamed into place. It does nothing when no rows are buffered.
func (w *Writer) Flush() error {
	if w.rows == 0 {
		return nil
	}
	rec := w.record()
	defer rec.Release()
	for {
		w.seq++
		name := fmt.Sprintf("%s%s-%06d%s", PartPrefix, w.name, w.seq, PartExt)
		final := filepath.Join(w.dir, name)
		if _, err := os.Lstat(final); err == nil {
			continue // never overwrite a part
		}
		if err := writePart(w.dir, name, w.schema, rec, w.props, w.meta); err != nil {
			return err
		}
		w.written = append(w.written, final)
		return nil
	}
}

// WritePart writes one record batch as a part named name in dir,
// atomically (through a temporary file and a rename, which replaces an
// existing part of that name).
func WritePart(dir, name string, rec arrow.RecordBatch, meta map[string]string) error {
	props := writerProps(nil)
	return writePart(dir, name, rec.Schema(), rec, props, meta)
}

func writePart(dir, name string, sc *arrow.Schema, rec arrow.RecordBatch, props *parquet.WriterProperties, meta map[string]string) (err error) {
	tmp := filepath.Join(dir, tmpPrefix+name)
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
	fw, err := pqarrow.NewFileWriter(sc, f, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return fmt.Errorf("dataset: part %s: %w", name, err)
	}
	if err := fw.Write(rec); err != nil {
		return fmt.Errorf("dataset: part %s: %w", name, err)
	}
	for _, k := range sortedMetaKeys(meta) {
		if err := fw.AppendKeyValueMetadata(k, meta[k]); err != nil {
			return fmt.Errorf("dataset: part %s: %w", name, err)
		}
	}
	if err := fw.Close(); err != nil { // closes f too
		return fmt.Errorf("dataset: part %s: %w", name, err)
	}
	// pqarrow closed the file; reopen to sync its data before the rename
	g, err := os.OpenFile(tmp, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("dataset: part %s: %w", name, err)
	}
	if err := g.Sync(); err != nil {
		g.Close()
		return fmt.Errorf("dataset: part %s: sync: %w", name, err)
	}
	if err := g.Close(); err != nil {
		return fmt.Errorf("dataset: part %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("dataset: part %s: %w", name, err)
	}
	return syncDir(dir)
}

func sortedMetaKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}
