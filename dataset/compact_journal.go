package dataset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// journal records one merge in progress (see compact.go).
type journal struct {
	Version int      `json:"version"`
	Output  string   `json:"output"` // merged part, a name in the dataset folder
	Inputs  []string `json:"inputs"` // parts it replaces, names in the folder
	Rows    int64    `json:"rows"`
	Digest  string   `json:"ids_digest"` // see digest
}

// validPartName reports whether n is a plain part name in the folder (no
// path), so that a damaged journal can never name another file.
func validPartName(n string) bool {
	return strings.HasPrefix(n, PartPrefix) && strings.HasSuffix(n, PartExt) &&
		!strings.ContainsAny(n, `/\`) && n == filepath.Base(n)
}

func readJournal(dir string) (*journal, error) {
	b, err := os.ReadFile(filepath.Join(dir, JournalName))
	if err != nil {
		return nil, err
	}
	j := &journal{}
	if err := json.Unmarshal(b, j); err != nil {
		return nil, fmt.Errorf("compaction journal %s is damaged: %w", filepath.Join(dir, JournalName), err)
	}
	ok := j.Version == 1 && validPartName(j.Output) && len(j.Inputs) > 0
	for _, in := range j.Inputs {
		ok = ok && validPartName(in) && in != j.Output
	}
	if !ok {
		return nil, fmt.Errorf("compaction journal %s is damaged: unexpected content", filepath.Join(dir, JournalName))
	}
	return j, nil
}

// writeJournal writes the journal durably: temporary name, sync, rename,
// sync the folder.
func writeJournal(dir string, j *journal) error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, tmpPrefix+JournalName[1:])
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("compact: journal: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, JournalName))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("compact: journal: %w", err)
	}
	return nil
}

func removeJournal(dir string) error {
	if err := os.Remove(filepath.Join(dir, JournalName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("compact: journal: %w", err)
	}
	return syncDir(dir)
}

// dropSuperseded removes from parts (paths in dir) the inputs of an
// interrupted compaction whose merged part is among them: those rows are in
// the merged part, and listing both would show them twice.
func dropSuperseded(dir string, parts []string) []string {
	j, err := readJournal(dir)
	if err != nil {
		return parts
	}
	out := filepath.Join(dir, j.Output)
	if !slices.Contains(parts, out) {
		return parts // not committed: the inputs are the live copy
	}
	gone := map[string]bool{}
	for _, in := range j.Inputs {
		gone[filepath.Join(dir, in)] = true
	}
	kept := parts[:0:0]
	for _, p := range parts {
		if !gone[p] {
			kept = append(kept, p)
		}
	}
	return kept
}

// PendingCompaction describes an interrupted compaction of the dataset in
// dir ("" if there is none): until `sweep compact` finishes it, the files of
// its superseded inputs are still on disk, and tools that read every
// *.parquet file directly would count their rows twice.
func PendingCompaction(dir string) string {
	j, err := readJournal(dir)
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		return err.Error()
	}
	if _, err := os.Stat(filepath.Join(dir, j.Output)); err != nil {
		return fmt.Sprintf("an interrupted compaction into %s never committed; sweep compact will clean it up", j.Output)
	}
	left := 0
	for _, in := range j.Inputs {
		if _, err := os.Stat(filepath.Join(dir, in)); err == nil {
			left++
		}
	}
	return fmt.Sprintf("an interrupted compaction merged %d parts into %s but %d of them are still on disk (sweep ignores them; readers of *.parquet would see their rows twice); run sweep compact to finish it", len(j.Inputs), j.Output, left)
}

// RecoverCompaction finishes or rolls back a compaction of dir that was
// interrupted, and says what it did ("" if none was pending). The caller
// must hold the dataset lock exclusively (Compact does).
//
// If the merged part was never committed (renamed into place), the journal
// and any temporary are removed: the inputs are the data. If it was, it had
// been verified before the commit, so the remaining inputs are deleted,
// provided the merged part can still be read; if it cannot, it is removed
// instead when every input is still there, and otherwise nothing is touched
// and an error explains why.
func RecoverCompaction(ctx context.Context, dir string) (string, error) {
	j, err := readJournal(dir)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("%w; inspect the parts it names, then delete it", err)
	}
	final := filepath.Join(dir, j.Output)
	if _, err := os.Stat(final); errors.Is(err, os.ErrNotExist) {
		if err := os.Remove(filepath.Join(dir, tmpPrefix+j.Output)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("compact: %w", err)
		}
		if err := removeJournal(dir); err != nil {
			return "", err
		}
		return fmt.Sprintf("rolled back an interrupted compaction: its merged part %s was never committed; the %d input parts are unchanged", j.Output, len(j.Inputs)), nil
	}
	var present []string
	for _, in := range j.Inputs {
		p := filepath.Join(dir, in)
		if _, err := os.Stat(p); err == nil {
			present = append(present, p)
		}
	}
	// The merged part was verified before its commit. A later run may have
	// rewritten it (dropping failed rows it retried), so its digest is not
	// compared again; it must only still be readable.
	if _, derr := digestPart(ctx, final); derr != nil {
		if len(present) < len(j.Inputs) {
			return "", fmt.Errorf("compact: an interrupted compaction left %s, which cannot be read (%v), and %d of its %d input parts are already deleted; nothing was changed; the rows of the deleted inputs are only in %s", final, derr, len(j.Inputs)-len(present), len(j.Inputs), final)
		}
		if err := os.Remove(final); err != nil {
			return "", fmt.Errorf("compact: %w", err)
		}
		if err := syncDir(dir); err != nil {
			return "", err
		}
		if err := removeJournal(dir); err != nil {
			return "", err
		}
		return fmt.Sprintf("rolled back an interrupted compaction: its merged part %s cannot be read (%v); removed it, the %d input parts are unchanged", j.Output, derr, len(j.Inputs)), nil
	}
	for _, p := range present {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("compact: %w", err)
		}
	}
	if err := syncDir(dir); err != nil {
		return "", err
	}
	if err := removeJournal(dir); err != nil {
		return "", err
	}
	return fmt.Sprintf("finished an interrupted compaction into %s (%d rows): removed %d of its %d input parts that were still on disk", j.Output, j.Rows, len(present), len(j.Inputs)), nil
}
