package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"

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
	pf, fr, err := Open(path)
	if err != nil {
		return err
	}
	defer pf.Close()
	sc := pf.MetaData().Schema
	idx := make([]int, len(cols))
	for i, c := range cols {
		idx[i] = sc.ColumnIndexByName(c)
		if idx[i] < 0 {
			return fmt.Errorf("part %s has no column %s", path, c)
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
	// parts are read a few at a time in parallel and delivered in order,
	// so memory holds the rows of at most `width` parts
	width := max(1, runtime.GOMAXPROCS(0))
	type result struct {
		rows []Entry
		err  error
	}
	for lo := 0; lo < len(parts); lo += width {
		batch := parts[lo:min(lo+width, len(parts))]
		res := make([]result, len(batch))
		var wg sync.WaitGroup
		for i, p := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i].err = Scan(ctx, p, []string{ColID, ColStatus, ColEngineVersion}, func(rec arrow.RecordBatch) error {
					ids := rec.Column(0).(*array.String)
					st := rec.Column(1).(*array.String)
					ev := rec.Column(2).(*array.String)
					for j := 0; j < ids.Len(); j++ {
						res[i].rows = append(res[i].rows, Entry{ID: ids.Value(j), Failed: st.Value(j) != StatusOK, EngineVersion: ev.Value(j), Part: p})
					}
					return nil
				})
			}()
		}
		wg.Wait()
		for _, r := range res {
			var ce *CorruptError
			if errors.As(r.err, &ce) {
				bad = append(bad, ce)
				continue
			}
			if r.err != nil {
				return bad, r.err
			}
			for _, e := range r.rows {
				fn(e)
			}
		}
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
