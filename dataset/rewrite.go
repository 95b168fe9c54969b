package dataset

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// DropRows rewrites a part without the rows whose point_id drop reports,
// atomically: the new content is written to a temporary file and renamed over
// the part, so a crash leaves the old part or the new one, never both or
// neither. A part left empty is removed. It returns the rows dropped.
func DropRows(ctx context.Context, path string, drop func(id string) bool) (int, error) {
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
	mask := array.NewBooleanBuilder(memory.DefaultAllocator)
	defer mask.Release()
	dropped := 0
	for i := 0; i < ids.Len(); i++ {
		d := drop(ids.Value(i))
		if d {
			dropped++
		}
		mask.Append(!d)
	}
	if dropped == 0 {
		return 0, nil
	}
	if dropped == ids.Len() {
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
	if err := WritePart(filepath.Dir(path), filepath.Base(path), out, meta); err != nil {
		return 0, err
	}
	return dropped, nil
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
