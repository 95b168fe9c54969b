package dataset

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Compaction merges a dataset's small parts into larger ones.
//
// Merging a group of input parts is crash-safe at every instant. The steps:
//
//  1. Stream the inputs' rows into a temporary file (.tmp-part-compact-…),
//     counting the rows and summing a digest of their (point_id, status)
//     pairs (see digest); sync it.
//  2. Verify: re-read the temporary file's point IDs and statuses; the row
//     count and the digest must equal the inputs', or the temporary file is
//     removed and nothing else happens.
//  3. Write the journal .compact-journal (temporary name, sync, rename,
//     sync the folder): the merged part's name, the input names, the row
//     count and the digest.
//  4. Rename the temporary file to its part name and sync the folder. This
//     rename is the commit point.
//  5. Delete the inputs, sync the folder, delete the journal.
//
// While a journal names a merged part that exists, Parts hides that
// journal's inputs, so everything that lists parts (resume, status) sees
// either all the inputs (before the commit) or the merged part (after it),
// never both and never neither. The next compaction finishes the job (see
// RecoverCompaction): after the commit it deletes the leftover inputs,
// before it it removes the journal and the temporary file.
//
// Compaction holds the dataset lock exclusively (see LockExclusive), so it
// never runs under a sweep run of any shard.

// JournalName is the file recording a compaction in progress.
const JournalName = ".compact-journal"

// DefaultCompactTarget is the default size up to which parts are merged.
const DefaultCompactTarget = 128 << 20

// compactStem is the name stem of merged parts: part-compact-….
const compactStem = "compact"

// compactRowGroup is the row-group length of merged parts: small parts'
// row groups are merged into groups of up to this many rows.
const compactRowGroup = 1 << 17

// compactHook, when set (tests only), is called at each step of a merge
// with the step's name.
var compactHook func(step string)

func hook(step string) {
	if compactHook != nil {
		compactHook(step)
	}
}

// CompactOptions tunes Compact.
type CompactOptions struct {
	// TargetSize: parts smaller than this many bytes are merged, in groups
	// whose inputs add up to at most this size. 0 = DefaultCompactTarget.
	TargetSize int64
	// Wait is how long to wait for running sweeps to release the dataset
	// before giving up with a *BusyError (0: do not wait).
	Wait time.Duration
	// DryRun plans the merges and reports them without writing anything
	// (an interrupted compaction is still reported, not recovered).
	DryRun bool
}

// Merge is one group of parts merged into one.
type Merge struct {
	Output     string   // the merged part (planned name in a dry run)
	Inputs     []string // the parts it replaced
	Rows       int64
	InputBytes int64
	OutBytes   int64
}

// CompactResult reports what Compact did.
type CompactResult struct {
	Recovered   string // what finishing an interrupted compaction did; "" if none was pending
	Merges      []Merge
	PartsBefore int
	PartsAfter  int
	Unreadable  []string // parts left alone because they cannot be read
}

// Compact merges the small parts of the dataset in dir. It first finishes
// or rolls back a compaction that was interrupted. Parts are merged only
// with parts of identical metadata and schema (same study text, engine,
// model version and tool version); rows are copied unchanged, duplicates
// included. On ctx cancellation it stops between merges.
func Compact(ctx context.Context, dir string, o CompactOptions) (*CompactResult, error) {
	if o.TargetSize <= 0 {
		o.TargetSize = DefaultCompactTarget
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("compact: %s is not a dataset folder", dir)
	}
	res := &CompactResult{}
	if o.DryRun {
		if j, err := readJournal(dir); err == nil {
			res.Recovered = fmt.Sprintf("an interrupted compaction into %s is pending (it would be finished first)", j.Output)
		}
	} else {
		lock, err := LockExclusive(ctx, dir, o.Wait)
		if err != nil {
			return nil, err
		}
		defer lock.Release()
		if res.Recovered, err = RecoverCompaction(ctx, dir); err != nil {
			return res, err
		}
		if err := removeCompactTemps(dir); err != nil {
			return res, err
		}
	}
	start := time.Now().UTC().Format("20060102T150405")
	seq := 0
	// Merged parts are smaller than the sum of their inputs, so a pass can
	// leave parts that merge further: plan again until nothing merges. Each
	// pass removes parts, so this ends.
	for pass := 0; ; pass++ {
		parts, err := Parts(dir)
		if err != nil {
			return res, err
		}
		if pass == 0 {
			res.PartsBefore = len(parts)
			res.PartsAfter = len(parts)
		}
		groups, unreadable := planCompaction(parts, o.TargetSize)
		if pass == 0 {
			res.Unreadable = unreadable
		}
		if len(groups) == 0 {
			return res, nil
		}
		for _, g := range groups {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			// named by its newest input's run time, so that the rows keep
			// their place among the dataset's parts (NewestFirst)
			stamp := start
			var newest time.Time
			for _, in := range g.inputs {
				if t := RunTime(filepath.Base(in)); t.After(newest) {
					newest = t
				}
			}
			if !newest.IsZero() {
				stamp = newest.Format("20060102T150405")
			}
			var name string
			for {
				seq++
				name = fmt.Sprintf("%s%s-%s-%d-%06d%s", PartPrefix, compactStem, stamp, os.Getpid(), seq, PartExt)
				if _, err := os.Lstat(filepath.Join(dir, name)); errors.Is(err, os.ErrNotExist) {
					break
				}
			}
			m := Merge{Output: filepath.Join(dir, name), Inputs: g.inputs, InputBytes: g.size}
			if !o.DryRun {
				if err := mergeGroup(ctx, dir, name, g, &m); err != nil {
					return res, err
				}
			}
			res.Merges = append(res.Merges, m)
			res.PartsAfter -= len(g.inputs) - 1
		}
		if o.DryRun {
			return res, nil
		}
	}
}

// group is a set of parts that can be merged into one.
type group struct {
	inputs []string
	meta   map[string]string // without ARROW:schema
	size   int64
}

// arrowSchemaKey is the metadata key under which pqarrow stores the schema.
const arrowSchemaKey = "ARROW:schema"

// planCompaction groups the parts smaller than target by metadata (which
// includes the stored Arrow schema) and packs each kind, in name order,
// into groups of at most target bytes. Groups of one part are dropped.
func planCompaction(parts []string, target int64) (groups []group, unreadable []string) {
	type kind struct {
		meta  map[string]string
		parts []string
		sizes []int64
	}
	var order []string
	kinds := map[string]*kind{}
	for _, p := range parts {
		st, err := os.Stat(p)
		if err != nil || st.Size() >= target {
			continue
		}
		m, err := Metadata(p)
		if err != nil {
			unreadable = append(unreadable, p)
			continue
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, "%d:%s=%d:%s;", len(k), k, len(m[k]), m[k])
		}
		key := b.String()
		kd := kinds[key]
		if kd == nil {
			delete(m, arrowSchemaKey)
			kd = &kind{meta: m}
			kinds[key] = kd
			order = append(order, key)
		}
		kd.parts = append(kd.parts, p)
		kd.sizes = append(kd.sizes, st.Size())
	}
	for _, key := range order {
		kd := kinds[key]
		cur := group{meta: kd.meta}
		flush := func() {
			if len(cur.inputs) > 1 {
				groups = append(groups, cur)
			}
			cur = group{meta: kd.meta}
		}
		for i, p := range kd.parts {
			if len(cur.inputs) > 0 && cur.size+kd.sizes[i] > target {
				flush()
			}
			cur.inputs = append(cur.inputs, p)
			cur.size += kd.sizes[i]
		}
		flush()
	}
	return groups, unreadable
}

// mergeGroup merges g's inputs into the part name in dir, following the
// journal protocol described at the top of this file.
func mergeGroup(ctx context.Context, dir, name string, g group, m *Merge) error {
	final := filepath.Join(dir, name)
	tmp := filepath.Join(dir, tmpPrefix+name)
	sum, err := writeMerged(ctx, tmp, g.inputs, g.meta)
	if err != nil {
		return err
	}
	hook("temp-written")
	// verify before committing: re-read what will become the part
	got, err := digestPart(ctx, tmp)
	if err != nil || !got.same(sum) {
		os.Remove(tmp)
		if err == nil {
			err = fmt.Errorf("it holds %d rows (ID digest %s), the inputs %d rows (ID digest %s)", got.rows, got, sum.rows, sum)
		}
		return fmt.Errorf("compact: the merged part failed verification, nothing was changed: %w", err)
	}
	hook("verified")
	j := &journal{Version: 1, Output: name, Rows: sum.rows, Digest: sum.String()}
	for _, in := range g.inputs {
		j.Inputs = append(j.Inputs, filepath.Base(in))
	}
	if err := writeJournal(dir, j); err != nil {
		os.Remove(tmp)
		return err
	}
	hook("journal-written")
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		removeJournal(dir)
		return fmt.Errorf("compact: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("compact: %w (run sweep compact again to finish)", err)
	}
	hook("committed")
	for i, in := range g.inputs {
		if err := os.Remove(in); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("compact: %w (run sweep compact again to finish)", err)
		}
		hook(fmt.Sprintf("deleted-%d", i+1))
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("compact: %w (run sweep compact again to finish)", err)
	}
	hook("inputs-deleted")
	if err := removeJournal(dir); err != nil {
		return err
	}
	hook("done")
	if st, err := os.Stat(final); err == nil {
		m.OutBytes = st.Size()
	}
	m.Rows = sum.rows
	return nil
}

// mergedProps are the settings of a merged part: the encodings of the
// parts sweep run writes (writerProps: dictionaries for strings but
// point_id, which is DELTA_LENGTH_BYTE_ARRAY, and DELTA_BINARY_PACKED for
// integers and timestamps) at zstd's default level
// (a compaction runs once, so it compresses harder than a run), in row
// groups of compactRowGroup rows.
func mergedProps(sc *arrow.Schema) *parquet.WriterProperties {
	opts := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithDictionaryDefault(false),
		parquet.WithMaxRowGroupLength(compactRowGroup),
	}
	for _, f := range sc.Fields() {
		switch f.Type.ID() {
		case arrow.STRING:
			if f.Name == ColID {
				opts = append(opts, parquet.WithEncodingFor(f.Name, parquet.Encodings.DeltaLengthByteArray))
			} else {
				opts = append(opts, parquet.WithDictionaryFor(f.Name, true))
			}
		case arrow.INT64, arrow.TIMESTAMP:
			opts = append(opts, parquet.WithEncodingFor(f.Name, parquet.Encodings.DeltaBinaryPacked))
		}
	}
	return parquet.NewWriterProperties(opts...)
}

// writeMerged streams the rows of inputs, in order, into a new part at tmp
// (synced, not renamed) and returns their digest. It removes tmp on error.
func writeMerged(ctx context.Context, tmp string, inputs []string, meta map[string]string) (sum digest, err error) {
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return sum, fmt.Errorf("compact: %w", err)
	}
	var fw *pqarrow.FileWriter
	defer func() {
		if err != nil {
			if fw != nil {
				fw.Close()
			}
			f.Close()
			os.Remove(tmp)
		}
	}()
	var props *parquet.WriterProperties
	var idCol, stCol int
	var schema *arrow.Schema
	for _, in := range inputs {
		err := func() error {
			pf, fr, err := Open(in)
			if err != nil {
				return err
			}
			defer pf.Close()
			rr, err := fr.GetRecordReader(ctx, nil, nil)
			if err != nil {
				return &CorruptError{Path: in, Err: err}
			}
			defer rr.Release()
			sc := plainSchema(rr.Schema())
			if fw == nil {
				props = mergedProps(sc)
				if fw, err = pqarrow.NewFileWriter(sc, f, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema())); err != nil {
					return fmt.Errorf("compact: %w", err)
				}
				schema = sc
				idCol, stCol = columnIndex(sc, ColID), columnIndex(sc, ColStatus)
				if idCol < 0 || stCol < 0 {
					return fmt.Errorf("compact: part %s lacks the %s or %s column", in, ColID, ColStatus)
				}
			} else if !sc.Equal(schema) {
				return fmt.Errorf("compact: part %s has another schema than %s", in, inputs[0])
			}
			for {
				rec, err := rr.Read()
				if rec != nil && rec.NumRows() > 0 {
					if err := sum.addBatch(rec, idCol, stCol); err != nil {
						return fmt.Errorf("compact: part %s: %w", in, err)
					}
					rec := array.NewRecordBatch(schema, rec.Columns(), rec.NumRows())
					err := fw.WriteBuffered(rec)
					rec.Release()
					if err != nil {
						return fmt.Errorf("compact: writing %s: %w", tmp, err)
					}
				}
				if errors.Is(err, io.EOF) || (err == nil && rec == nil) {
					return nil
				}
				if err != nil {
					return &CorruptError{Path: in, Err: err}
				}
			}
		}()
		if err != nil {
			return sum, err
		}
	}
	if fw == nil {
		return sum, fmt.Errorf("compact: nothing to merge")
	}
	for _, k := range sortedMetaKeys(meta) {
		if err := fw.AppendKeyValueMetadata(k, meta[k]); err != nil {
			return sum, fmt.Errorf("compact: %w", err)
		}
	}
	err = fw.Close() // closes f too
	fw = nil
	if err != nil {
		return sum, fmt.Errorf("compact: writing %s: %w", tmp, err)
	}
	g, err := os.OpenFile(tmp, os.O_RDWR, 0)
	if err != nil {
		return sum, fmt.Errorf("compact: %w", err)
	}
	if err = g.Sync(); err != nil {
		g.Close()
		return sum, fmt.Errorf("compact: sync %s: %w", tmp, err)
	}
	if err = g.Close(); err != nil {
		return sum, fmt.Errorf("compact: %w", err)
	}
	return sum, nil
}

// plainSchema drops the field ids the Parquet reader attaches to each
// field, so a merged part stores the same schema as the parts the dataset
// writer writes (and merges with them again later).
func plainSchema(sc *arrow.Schema) *arrow.Schema {
	fields := sc.Fields()
	for i := range fields {
		md := fields[i].Metadata
		if md.FindKey("PARQUET:field_id") < 0 {
			continue
		}
		var keys, vals []string
		for j, k := range md.Keys() {
			if k != "PARQUET:field_id" {
				keys, vals = append(keys, k), append(vals, md.Values()[j])
			}
		}
		fields[i].Metadata = arrow.NewMetadata(keys, vals)
	}
	md := sc.Metadata()
	return arrow.NewSchema(fields, &md)
}

func columnIndex(sc *arrow.Schema, name string) int {
	if ix := sc.FieldIndices(name); len(ix) == 1 {
		return ix[0]
	}
	return -1
}

// digest is an order-independent fingerprint of a multiset of rows'
// (point_id, status) pairs: the row count and four 64-bit lanes, each the
// sum (mod 2^64) over the rows of one quarter of SHA-256(id NUL status).
// Losing, duplicating or changing a row changes it.
type digest struct {
	rows  int64
	lanes [4]uint64
	buf   []byte
}

func (d *digest) add(id, status string) {
	d.buf = append(append(append(d.buf[:0], id...), 0), status...)
	h := sha256.Sum256(d.buf)
	for i := range d.lanes {
		d.lanes[i] += binary.BigEndian.Uint64(h[8*i:])
	}
	d.rows++
}

func (d *digest) addBatch(rec arrow.RecordBatch, idCol, stCol int) error {
	ids, ok1 := rec.Column(idCol).(*array.String)
	st, ok2 := rec.Column(stCol).(*array.String)
	if !ok1 || !ok2 {
		return fmt.Errorf("%s and %s must be string columns", ColID, ColStatus)
	}
	for i := 0; i < ids.Len(); i++ {
		d.add(ids.Value(i), st.Value(i))
	}
	return nil
}

// String is the lanes in hex.
func (d digest) String() string {
	var b [32]byte
	for i, l := range d.lanes {
		binary.BigEndian.PutUint64(b[8*i:], l)
	}
	return hex.EncodeToString(b[:])
}

// same reports whether two digests cover the same rows.
func (d digest) same(o digest) bool { return d.rows == o.rows && d.lanes == o.lanes }

// digestPart reads a part's point IDs and statuses.
func digestPart(ctx context.Context, path string) (digest, error) {
	var d digest
	err := Scan(ctx, path, []string{ColID, ColStatus}, func(rec arrow.RecordBatch) error {
		return d.addBatch(rec, 0, 1)
	})
	return d, err
}

// removeCompactTemps deletes temporaries of interrupted merges. Only the
// holder of the exclusive dataset lock may call it.
func removeCompactTemps(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, tmpPrefix+PartPrefix+compactStem+"-") || n == tmpPrefix+JournalName[1:] {
			if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}
