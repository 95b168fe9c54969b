package sweep

import (
	"context"
	"fmt"
	"slices"

	"github.com/sweep-dse/sweep/dataset"
	"github.com/sweep-dse/sweep/engine"
)

// Plan is a study expanded into points, checked against a dataset.
type Plan struct {
	Study        *Study
	Combinations int64   // grid size before constraints
	Dropped      int64   // combinations the constraints removed
	Duplicates   int64   // combinations that resolve to a point already listed
	Points       int64   // distinct points (of the shard)
	OtherShards  int64   // points that belong to other shards
	Pending      []int64 // combination indexes still to run, ascending
	Done         int64   // points with an ok row
	Failed       int64   // points whose row is failed
	Retry        bool    // failed points are pending
	Shard        Shard
	Stale        map[string]int64 // rows per other engine version found
	Bad          []*dataset.CorruptError
	FailedParts  []string // parts holding failed rows of this engine version
	first        []int64  // first few combination indexes, for display
}

// PlanOptions tunes Expand.
type PlanOptions struct {
	Shard       Shard
	RetryFailed bool
	Force       bool // run even above the study's max_points
	Preview     int  // how many points to keep for display
}

// Expand resolves every point of the study, computes IDs, and compares them
// with the dataset in dir (which may not exist). Invalid points are an
// *InputError naming the key; nothing is written.
func Expand(ctx context.Context, s *Study, dir string, o PlanOptions) (*Plan, error) {
	if o.Shard.N == 0 {
		o.Shard = All
	}
	pl := &Plan{Study: s, Combinations: s.Combinations(), Shard: o.Shard, Retry: o.RetryFailed, Stale: map[string]int64{}}
	if pl.Combinations > s.MaxPoints && !o.Force {
		return nil, &InputError{File: s.Path, Line: locate(s.Text, []string{"axes"}), Key: "axes",
			Msg: fmt.Sprintf("the study expands to %d combinations, more than max_points = %d; pass --force or raise [study] max_points", pl.Combinations, s.MaxPoints)}
	}
	// what the dataset holds
	status := map[uint64]bool{} // key -> failed
	bad, err := dataset.Index(ctx, dir, func(e dataset.Entry) {
		if e.EngineVersion != s.Engine.Version() {
			pl.Stale[e.EngineVersion]++
			return
		}
		id, err := ParseID(e.ID)
		if err != nil {
			return
		}
		if e.Failed && (len(pl.FailedParts) == 0 || pl.FailedParts[len(pl.FailedParts)-1] != e.Part) {
			pl.FailedParts = append(pl.FailedParts, e.Part)
		}
		k := id.Key()
		if prevFailed, ok := status[k]; ok && !prevFailed {
			return // an ok row wins over a failed one
		}
		status[k] = e.Failed
	})
	if err != nil {
		return nil, err
	}
	pl.Bad = bad
	// expand
	p := make([]engine.Value, len(s.Engine.Params()))
	f := s.NewFilter()
	h := NewHasher(s.Engine)
	type kv struct {
		key uint64
		idx int64
	}
	var keys []kv
	for idx := int64(0); idx < pl.Combinations; idx++ {
		if idx&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		s.Fill(idx, p)
		if len(s.Where) > 0 {
			ok, err := f.Keep(p)
			if err != nil {
				return nil, err
			}
			if !ok {
				pl.Dropped++
				continue
			}
		}
		if err := s.Engine.Resolve(s.Dir, p); err != nil {
			return nil, s.ErrorAt(err, s.Describe(p))
		}
		id := h.ID(p)
		if !o.Shard.Has(id) {
			pl.OtherShards++
			continue
		}
		keys = append(keys, kv{id.Key(), idx})
	}
	// duplicates: the same resolved point from two combinations
	slices.SortFunc(keys, func(a, b kv) int {
		if a.key != b.key {
			if a.key < b.key {
				return -1
			}
			return 1
		}
		return int(a.idx - b.idx)
	})
	out := keys[:0]
	for i, k := range keys {
		if i > 0 && k.key == keys[i-1].key {
			pl.Duplicates++
			continue
		}
		out = append(out, k)
	}
	keys = out
	pl.Points = int64(len(keys))
	for _, k := range keys {
		failed, ok := status[k.key]
		switch {
		case ok && !failed:
			pl.Done++
		case ok && failed:
			pl.Failed++
			if o.RetryFailed {
				pl.Pending = append(pl.Pending, k.idx)
			}
		default:
			pl.Pending = append(pl.Pending, k.idx)
		}
		if len(pl.first) < o.Preview {
			pl.first = append(pl.first, k.idx)
		}
	}
	slices.Sort(pl.Pending)
	slices.Sort(pl.first)
	return pl, nil
}

// Preview returns the first points of the plan (by combination order) as
// resolved parameter vectors.
func (pl *Plan) Preview() [][]engine.Value {
	var out [][]engine.Value
	for _, idx := range pl.first {
		p := make([]engine.Value, len(pl.Study.Engine.Params()))
		pl.Study.Fill(idx, p)
		pl.Study.Engine.Resolve(pl.Study.Dir, p)
		out = append(out, p)
	}
	return out
}
