// Package dataset writes and reads sweep datasets: a folder of Parquet part
// files, one row per point.
//
// A part is written under a temporary name, synced, and renamed into place,
// so a crash leaves either a whole part or none. Parts are the resume state:
// there is no other index and no file per point.
//
// Columns: point_id, status, error, every engine parameter, every metric,
// engine, engine_version, elapsed_s, finished_at. Each part's key-value
// metadata holds the study text (sweep.study), the study name, the engine and
// its version, and the tool version (sweep.version).
package dataset

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/sweep-dse/sweep/engine"
)

// Fixed column names.
const (
	ColID            = "point_id"
	ColStatus        = "status"
	ColError         = "error"
	ColEngine        = "engine"
	ColEngineVersion = "engine_version"
	ColElapsed       = "elapsed_s"
	ColFinished      = "finished_at"
)

// Row statuses.
const (
	StatusOK     = "ok"
	StatusFailed = "failed"
)

// Metadata keys of every part.
const (
	MetaStudy         = "sweep.study"
	MetaStudyName     = "sweep.study_name"
	MetaEngine        = "sweep.engine"
	MetaEngineVersion = "sweep.engine_version"
	MetaToolVersion   = "sweep.version"
)

// PartExt is the extension of part files; PartPrefix starts their names.
const (
	PartExt    = ".parquet"
	PartPrefix = "part-"
	tmpPrefix  = ".tmp-"
)

// QuarantineDir is the subfolder where unreadable parts are moved. Like
// every non-part folder in a dataset, its name starts with an underscore, so
// pyarrow and pandas skip it when they read the dataset folder.
const QuarantineDir = "_quarantine"

// ArchiveDir is the subfolder that keeps parts of older engine versions.
const ArchiveDir = "_archive"

// Schema returns the Arrow schema of a dataset for an engine.
func Schema(eng engine.Engine) (*arrow.Schema, error) {
	fields := []arrow.Field{
		{Name: ColID, Type: arrow.BinaryTypes.String},
		{Name: ColStatus, Type: arrow.BinaryTypes.String},
		{Name: ColError, Type: arrow.BinaryTypes.String},
	}
	seen := map[string]string{ColID: "column", ColStatus: "column", ColError: "column",
		ColEngine: "column", ColEngineVersion: "column", ColElapsed: "column", ColFinished: "column"}
	add := func(name string, k engine.Kind, what string) error {
		if prev, ok := seen[name]; ok {
			return fmt.Errorf("dataset: %s %q clashes with a %s of the same name", what, name, prev)
		}
		seen[name] = what
		fields = append(fields, arrow.Field{Name: name, Type: arrowType(k), Nullable: true})
		return nil
	}
	for _, p := range eng.Params() {
		if err := add(p.Name, p.Kind, "parameter"); err != nil {
			return nil, err
		}
	}
	for _, m := range eng.Metrics() {
		if err := add(m.Name, m.Kind, "metric"); err != nil {
			return nil, err
		}
	}
	fields = append(fields,
		arrow.Field{Name: ColEngine, Type: arrow.BinaryTypes.String},
		arrow.Field{Name: ColEngineVersion, Type: arrow.BinaryTypes.String},
		arrow.Field{Name: ColElapsed, Type: arrow.PrimitiveTypes.Float64},
		arrow.Field{Name: ColFinished, Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	)
	return arrow.NewSchema(fields, nil), nil
}

func arrowType(k engine.Kind) arrow.DataType {
	switch k {
	case engine.Int:
		return arrow.PrimitiveTypes.Int64
	case engine.Float:
		return arrow.PrimitiveTypes.Float64
	case engine.Bool:
		return arrow.FixedWidthTypes.Boolean
	}
	return arrow.BinaryTypes.String
}

// Parts lists the dataset's part files (sorted), ignoring temporaries and
// subfolders, and the inputs of an interrupted compaction that committed
// its merged part (see Compact). A missing folder has no parts.
func Parts(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dataset %s: %w", dir, err)
	}
	var parts []string
	for _, e := range ents {
		n := e.Name()
		if e.Type().IsRegular() && strings.HasSuffix(n, PartExt) && !strings.HasPrefix(n, ".") {
			parts = append(parts, filepath.Join(dir, n))
		}
	}
	sort.Strings(parts)
	return dropSuperseded(dir, parts), nil
}

// NewestFirst returns parts ordered by the time their rows were computed,
// the most recent first: the order in which to look for the study a
// dataset was last written from. That time is the run's start in the
// part's name (part-<shard>-<yyyymmddThhmmss>-…); a merged part carries its
// newest input's (Compact). Names sort by shard, not time, and
// modification times change when a part is compacted or rewritten, so
// neither orders parts alone; the modification time only breaks ties (and
// orders parts named otherwise).
func NewestFirst(parts []string) []string {
	type pt struct {
		path    string
		run, mt time.Time
	}
	ps := make([]pt, len(parts))
	for i, p := range parts {
		ps[i] = pt{path: p, run: RunTime(filepath.Base(p))}
		if st, err := os.Stat(p); err == nil {
			ps[i].mt = st.ModTime()
		}
	}
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		switch {
		case !a.run.Equal(b.run):
			return a.run.After(b.run)
		case !a.mt.Equal(b.mt):
			return a.mt.After(b.mt)
		}
		return a.path > b.path
	})
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.path
	}
	return out
}

// runTimeRE finds the run time in a part's name.
var runTimeRE = regexp.MustCompile(`-(\d{8}T\d{6})-`)

// RunTime is the run start time in a part's name (UTC, whole seconds), zero
// if the name has none.
func RunTime(name string) time.Time {
	m := runTimeRE.FindStringSubmatch(name)
	if m == nil {
		return time.Time{}
	}
	t, err := time.Parse("20060102T150405", m[1])
	if err != nil {
		return time.Time{}
	}
	return t
}

// RemoveTemps deletes temporaries left by a crashed writer. Only the caller
// holding the dataset's lock may call it.
func RemoveTemps(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
