package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Open opens a part for reading. The caller closes the returned reader.
func Open(path string) (*file.Reader, *pqarrow.FileReader, error) {
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, nil, &CorruptError{Path: path, Err: err}
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 64 << 10}, memory.DefaultAllocator)
	if err != nil {
		pf.Close()
		return nil, nil, &CorruptError{Path: path, Err: err}
	}
	return pf, fr, nil
}

// CorruptError is a part that cannot be read.
type CorruptError struct {
	Path string
	Err  error
}

func (e *CorruptError) Error() string { return fmt.Sprintf("part %s is unreadable: %v", e.Path, e.Err) }
func (e *CorruptError) Unwrap() error { return e.Err }

// Metadata returns a part's key-value metadata.
func Metadata(path string) (map[string]string, error) {
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, &CorruptError{Path: path, Err: err}
	}
	defer pf.Close()
	m := map[string]string{}
	kv := pf.MetaData().KeyValueMetadata()
	for _, k := range kv.Keys() {
		if v := kv.FindValue(k); v != nil {
			m[k] = *v
		}
	}
	return m, nil
}

// Scan reads the named columns of a part batch by batch, calling fn with
// each record batch (columns in the order asked; a column the part lacks is
// an error). It reads nothing else.
func Scan(ctx context.Context, path string, cols []string, fn func(rec arrow.RecordBatch) error) error {
	return scan(ctx, path, cols, false, fn)
}

// ScanLoose is Scan where a column the part lacks reads as all nulls (of
// arrow's null type): parts written before a study gained a parameter (an
// external engine's new [base] key) lack its column.
func ScanLoose(ctx context.Context, path string, cols []string, fn func(rec arrow.RecordBatch) error) error {
	return scan(ctx, path, cols, true, fn)
}

func scan(ctx context.Context, path string, cols []string, loose bool, fn func(rec arrow.RecordBatch) error) error {
	pf, fr, err := Open(path)
	if err != nil {
		return err
	}
	defer pf.Close()
	sc := pf.MetaData().Schema
	idx := make([]int, 0, len(cols))
	missing := false
	for _, c := range cols {
		i := sc.ColumnIndexByName(c)
		if i < 0 {
			if !loose {
				return fmt.Errorf("part %s has no column %s", path, c)
			}
			missing = true
			continue
		}
		idx = append(idx, i)
	}
	if missing {
		inner := fn
		fn = func(rec arrow.RecordBatch) error {
			n := rec.NumRows()
			arrs := make([]arrow.Array, len(cols))
			fields := make([]arrow.Field, len(cols))
			j := 0
			for k, c := range cols {
				if sc.ColumnIndexByName(c) < 0 {
					arrs[k] = array.NewNull(int(n))
					fields[k] = arrow.Field{Name: c, Type: arrow.Null, Nullable: true}
					continue
				}
				arrs[k], fields[k] = rec.Column(j), rec.Schema().Field(j)
				j++
			}
			full := array.NewRecordBatch(arrow.NewSchema(fields, nil), arrs, n)
			defer full.Release()
			return inner(full)
		}
	}
	rr, err := fr.GetRecordReader(ctx, idx, nil)
	if err != nil {
		return &CorruptError{Path: path, Err: err}
	}
	defer rr.Release()
	for {
		rec, err := rr.Read()
		if rec != nil {
			if err := fn(rec); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && rec == nil) {
			return nil
		}
		if err != nil {
			return &CorruptError{Path: path, Err: err}
		}
	}
}

// Entry is what resume needs of one row.
type Entry struct {
	ID            string
	Failed        bool
	EngineVersion string
	Part          string
}

// Index reads point_id, status and engine_version of every part. Unreadable
// parts are returned in bad (not an error), so the caller can quarantine them.
func Index(ctx context.Context, dir string, fn func(Entry)) (bad []*CorruptError, err error) {
	parts, err := Parts(dir)
	if err != nil {
		return nil, err
	}
	// parts are read a few at a time in parallel and delivered in order
	// while the next ones are read, so memory holds the rows of at most
	// 2 × width parts
	width := max(1, runtime.GOMAXPROCS(0))
	type result struct {
		rows []Entry
		err  error
		done chan struct{}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	order := make(chan *result, len(parts)) // never blocks the reader loop
	slots := make(chan struct{}, 2*width)
	reading := make(chan struct{}, width)
	go func() {
		defer close(order)
		for _, p := range parts {
			select {
			case slots <- struct{}{}: // freed when the part is delivered
			case <-ctx.Done():
				return
			}
			reading <- struct{}{}
			r := &result{done: make(chan struct{})}
			order <- r
			go func() {
				defer func() { <-reading; close(r.done) }()
				r.err = Scan(ctx, p, []string{ColID, ColStatus, ColEngineVersion}, func(rec arrow.RecordBatch) error {
					ids := rec.Column(0).(*array.String)
					st := rec.Column(1).(*array.String)
					ev := rec.Column(2).(*array.String)
					for j := 0; j < ids.Len(); j++ {
						r.rows = append(r.rows, Entry{ID: ids.Value(j), Failed: st.Value(j) != StatusOK, EngineVersion: ev.Value(j), Part: p})
					}
					return nil
				})
			}()
		}
	}()
	for r := range order {
		<-r.done
		if err := ctx.Err(); err != nil {
			return bad, err // not a corrupt part: the reads were cancelled
		}
		var ce *CorruptError
		switch {
		case errors.Is(r.err, fs.ErrNotExist):
			// removed since it was listed: another run dropped the last
			// rows of a part (failed rows it retried or that were
			// superseded), none of which it would have kept
		case errors.As(r.err, &ce):
			bad = append(bad, ce)
		case r.err != nil:
			return bad, r.err
		default:
			for _, e := range r.rows {
				fn(e)
			}
		}
		r.rows = nil
		<-slots
	}
	if err := ctx.Err(); err != nil {
		return bad, err
	}
	return bad, nil
}

// Quarantine moves an unreadable part into the dataset's quarantine folder
// and returns its new path.
func Quarantine(path string) (string, error) {
	dir := filepath.Join(filepath.Dir(path), QuarantineDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	dst := filepath.Join(dir, filepath.Base(path))
	if err := os.Rename(path, dst); err != nil {
		return "", err
	}
	return dst, syncDir(filepath.Dir(path))
}
