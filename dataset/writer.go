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

// Writer buffers rows and writes them as part files.
type Writer struct {
	dir     string
	name    string // part name stem: part-<stem>-<seq>.parquet
	seq     int
	schema  *arrow.Schema
	eng     engine.Engine
	meta    map[string]string
	bld     *array.RecordBuilder
	nParams int
	rows    int
	props   *parquet.WriterProperties
	written []string
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
	props := parquet.NewWriterProperties(
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithDictionaryDefault(true),
		parquet.WithMaxRowGroupLength(1<<20),
	)
	return &Writer{
		dir: dir, name: stem, schema: sc, eng: eng, meta: meta,
		bld:     array.NewRecordBuilder(memory.DefaultAllocator, sc),
		nParams: len(eng.Params()),
		props:   props,
	}, nil
}

// Rows is the number of buffered rows.
func (w *Writer) Rows() int { return w.rows }

// Written lists the parts this writer has written.
func (w *Writer) Written() []string { return w.written }

// Append buffers one row.
func (w *Writer) Append(r *Row) {
	b := w.bld
	b.Field(0).(*array.StringBuilder).Append(r.ID)
	b.Field(1).(*array.StringBuilder).Append(r.Status)
	b.Field(2).(*array.StringBuilder).Append(r.Error)
	col := 3
	for i := range r.Params {
		appendValue(b.Field(col), r.Params[i], true)
		col++
	}
	ok := r.Status == StatusOK
	for i := 0; i < len(w.eng.Metrics()); i++ {
		var v engine.Value
		if ok && i < len(r.Metrics) {
			v = r.Metrics[i]
		}
		appendValue(b.Field(col), v, ok)
		col++
	}
	b.Field(col).(*array.StringBuilder).Append(w.eng.Name())
	b.Field(col + 1).(*array.StringBuilder).Append(w.eng.Version())
	b.Field(col + 2).(*array.Float64Builder).Append(r.Elapsed.Seconds())
	b.Field(col + 3).(*array.TimestampBuilder).Append(arrow.Timestamp(r.Finished.UTC().UnixMicro()))
	w.rows++
}

func appendValue(b array.Builder, v engine.Value, valid bool) {
	if !valid || !v.IsSet() {
		b.AppendNull()
		return
	}
	switch x := b.(type) {
	case *array.Int64Builder:
		x.Append(v.I)
	case *array.Float64Builder:
		if v.Kind == engine.Int {
			x.Append(float64(v.I))
		} else {
			x.Append(v.F)
		}
	case *array.BooleanBuilder:
		x.Append(v.I != 0)
	case *array.StringBuilder:
		x.Append(v.S)
	default:
		b.AppendNull()
	}
}

// Flush writes the buffered rows as one part: to a temporary file, synced,
// then renamed into place. It does nothing when no rows are buffered.
func (w *Writer) Flush() error {
	if w.rows == 0 {
		return nil
	}
	rec := w.bld.NewRecordBatch()
	defer rec.Release()
	w.rows = 0
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

// WritePart writes one record batch as a part named name in dir, atomically.
func WritePart(dir, name string, rec arrow.RecordBatch, meta map[string]string) error {
	props := parquet.NewWriterProperties(
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithDictionaryDefault(true),
		parquet.WithMaxRowGroupLength(1<<20),
	)
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
