package dataset

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// DropFailedRows rewrites a part without the failed rows whose point_id
// drop reports (ok rows are always kept: a compacted part may hold a
// point's ok row beside its failed one), atomically: the new content is
// written to a temporary file and renamed over the part, so a crash leaves
// the old part or the new one, never both or neither. The temporary of a
// rewrite that crashed is replaced (the caller holds LockRewrite). A part
// left empty is removed, unless it is the merged part of an interrupted
// compaction (its journal still names inputs that it hides), which is kept
// with no rows. It returns the rows dropped.
func DropFailedRows(ctx context.Context, path string, drop func(id string) bool) (int, error) {
	meta, err := Metadata(path)
	if err != nil {
		return 0, err
	}
	pf, fr, err := Open(path)
	if err != nil {
		return 0, err
	}
	tbl, err := fr.ReadTable(ctx)
	pf.Close()
	if err != nil {
		return 0, &CorruptError{Path: path, Err: err}
	}
	defer tbl.Release()
	rec := tableToRecord(tbl)
	defer rec.Release()
	ci := rec.Schema().FieldIndices(ColID)
	if len(ci) == 0 {
		return 0, fmt.Errorf("part %s has no %s column", path, ColID)
	}
	ids := rec.Column(ci[0]).(*array.String)
	si := rec.Schema().FieldIndices(ColStatus)
	if len(si) == 0 {
		return 0, fmt.Errorf("part %s has no %s column", path, ColStatus)
	}
	status, ok := rec.Column(si[0]).(*array.String)
	if !ok {
		return 0, fmt.Errorf("part %s: column %s is not a string column", path, ColStatus)
	}
	mask := array.NewBooleanBuilder(memory.DefaultAllocator)
	defer mask.Release()
	dropped := 0
	for i := 0; i < ids.Len(); i++ {
		d := status.Value(i) == StatusFailed && drop(ids.Value(i))
		if d {
			dropped++
		}
		mask.Append(!d)
	}
	if dropped == 0 {
		return 0, nil
	}
	dir, name := filepath.Dir(path), filepath.Base(path)
	if dropped == ids.Len() && !isCompactionOutput(dir, name) {
		if err := os.Remove(path); err != nil {
			return 0, err
		}
		return dropped, syncDir(filepath.Dir(path))
	}
	m := mask.NewBooleanArray()
	defer m.Release()
	out, err := compute.FilterRecordBatch(ctx, rec, m, compute.DefaultFilterOptions())
	if err != nil {
		return 0, fmt.Errorf("part %s: %w", path, err)
	}
	defer out.Release()
	// its own temporary name: a run's clean-up of its shard's temporaries
	// (.tmp-part-<shard>-…) must not take another run's rewrite of one of
	// its parts
	tmp := rewriteTmpPrefix + name
	if err := os.Remove(filepath.Join(dir, tmp)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	// the encodings of run and merged parts, and a schema without the
	// reader's field ids, so the part still compacts with its siblings
	sc := plainSchema(out.Schema())
	plain := array.NewRecordBatch(sc, out.Columns(), out.NumRows())
	defer plain.Release()
	if err := writePartVia(dir, name, tmp, sc, plain, mergedProps(sc), meta); err != nil {
		return 0, err
	}
	return dropped, nil
}

// isCompactionOutput reports whether name is the merged part of an
// interrupted compaction's journal in dir.
func isCompactionOutput(dir, name string) bool {
	j, err := readJournal(dir)
	return err == nil && j.Output == name
}

// tableToRecord concatenates a table's chunks into one record batch.
func tableToRecord(tbl arrow.Table) arrow.RecordBatch {
	cols := make([]arrow.Array, tbl.NumCols())
	for i := range cols {
		chunks := tbl.Column(i).Data().Chunks()
		if len(chunks) == 1 {
			chunks[0].Retain()
			cols[i] = chunks[0]
			continue
		}
		a, err := array.Concatenate(chunks, memory.DefaultAllocator)
		if err != nil {
			panic(err)
		}
		cols[i] = a
	}
	rec := array.NewRecordBatch(tbl.Schema(), cols, tbl.NumRows())
	for _, c := range cols {
		c.Release()
	}
	return rec
}

// rewriteTmpPrefix starts the temporary names of rewritten parts.
const rewriteTmpPrefix = tmpPrefix + "rewrite-"

// RewriteLockName is the file whose flock(2) serialises part rewrites
// (DropFailedRows) between runs of different shards of one dataset.
const RewriteLockName = ".lock-rewrite"

// LockRewrite takes the rewrite lock exclusively, waiting while another run
// rewrites parts, until ctx is done. Two shards retrying failed points may
// both rewrite one part (a compacted part holds rows of every shard); one
// after the other, each filters what the other wrote.
func LockRewrite(ctx context.Context, dir string) (*DatasetLock, error) {
	path := filepath.Join(dir, RewriteLockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &DatasetLock{f: f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(lockPoll):
		}
	}
}
