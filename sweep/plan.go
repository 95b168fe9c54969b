package sweep

import (
	"context"
	"fmt"
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/sweep-dse/sweep/dataset"
	"github.com/sweep-dse/sweep/engine"
)

// Plan is a study expanded into points, checked against a dataset. Its
// memory does not grow with the study: pending points are one bit per
// combination, and the dataset's points one 8-byte key per row.
type Plan struct {
	Study        *Study
	Combinations int64   // grid size before constraints
	Dropped      int64   // combinations the constraints removed
	Points       int64   // points (of the shard)
	OtherShards  int64   // points that belong to other shards
	Pending      *Bitset // combination indexes still to run
	Done         int64   // points with an ok row
	Failed       int64   // points whose row is failed
	Retry        bool    // failed points are pending
	Shard        Shard
	Stale        map[string]int64 // rows per other engine version found
	Bad          []*dataset.CorruptError
	FailedParts  []string // parts holding failed rows of this engine version
	// Superseded counts the failed rows of points that also have an ok row
	// (an interrupted --retry-failed run wrote the ok row but was stopped
	// before it dropped the failed one); SupersededParts hold them. Run
	// drops them (DropSuperseded).
	Superseded      int64
	SupersededParts []string
	superseded      map[uint64]bool
	// NoEffect lists the study keys whose parameter has no effect on some
	// points (engine.Ignorer), in the order of the study file. Expand
	// refuses a study with a key that no point uses, unless Lenient.
	NoEffect []NoEffect
	first    []int64 // first few points' combination indexes, for display
}

// Notes are the notes of the plan for the user: one per axis that some
// points ignore (they repeat each other's results there). A key that
// only [base] sets repeats nothing and gets none.
func (pl *Plan) Notes() []string {
	var out []string
	for i := range pl.NoEffect {
		if x := &pl.NoEffect[i]; x.Varied && !x.All() {
			out = append(out, x.Note(pl.Study.Path))
		}
	}
	return out
}

// IsSuperseded reports whether the point id has an ok row beside a failed
// one.
func (pl *Plan) IsSuperseded(id string) bool {
	k, ok := ParseKey(id)
	return ok && pl.superseded[k]
}

// PlanOptions tunes Expand.
type PlanOptions struct {
	Shard       Shard
	RetryFailed bool
	Force       bool // run even above the study's max_points
	Preview     int  // how many points to keep for display
	Jobs        int  // parallel workers; 0 = CPU count
	// Lenient lists a parameter that no point uses in Plan.NoEffect instead
	// of failing (sweep status reads studies that have run already).
	Lenient bool
}

// PendingList returns the pending combination indexes in order.
func (pl *Plan) PendingList() []int64 {
	var out []int64
	pl.Pending.Each(func(i int64) bool { out = append(out, i); return true })
	return out
}

// keySet is a set of point-ID keys: an open-addressing table with linear
// probing, each key at the slot its top bits name (IDs are uniform hashes),
// so a lookup reads one cache line in the common case. Zero marks an empty
// slot; the key 0 is kept aside.
type keySet struct {
	slots []uint64
	shift uint // 64 - log2(len(slots))
	mask  uint64
	zero  bool // the key 0 is in the set
	n     int
}

func newKeySet(keys []uint64) keySet {
	b := uint(4)
	for 1<<b < len(keys)+len(keys)/3+1 { // load at most 3/4
		b++
	}
	ks := keySet{slots: make([]uint64, 1<<b), shift: 64 - b, mask: 1<<b - 1}
	for _, k := range keys {
		ks.add(k)
	}
	return ks
}

func (k *keySet) add(x uint64) {
	if x == 0 {
		if !k.zero {
			k.zero = true
			k.n++
		}
		return
	}
	for i := x >> k.shift; ; i = (i + 1) & k.mask {
		switch k.slots[i] {
		case 0:
			k.slots[i] = x
			k.n++
			return
		case x:
			return
		}
	}
}

func (k *keySet) has(x uint64) bool {
	if k.n == 0 {
		return false
	}
	if x == 0 {
		return k.zero
	}
	for i := x >> k.shift; ; i = (i + 1) & k.mask {
		switch k.slots[i] {
		case 0:
			return false
		case x:
			return true
		}
	}
}

// block is how many combinations one expansion task covers; a multiple of
// 64, so tasks write disjoint words of the pending bitset.
const block = 1 << 12

// Expand resolves every point of the study, computes IDs, and compares them
// with the dataset in dir (which may not exist), in parallel. Invalid points
// are an *InputError naming the key (the first by combination order);
// nothing is written.
func Expand(ctx context.Context, s *Study, dir string, o PlanOptions) (*Plan, error) {
	if o.Shard.N == 0 {
		o.Shard = All
	}
	if o.Jobs <= 0 {
		o.Jobs = runtime.NumCPU()
	}
	pl := &Plan{Study: s, Combinations: s.Combinations(), Shard: o.Shard, Retry: o.RetryFailed, Stale: map[string]int64{}}
	if pl.Combinations > s.MaxPoints && !o.Force {
		return nil, &InputError{File: s.Path, Line: locate(s.Text, []string{"axes"}), Key: "axes",
			Msg: fmt.Sprintf("the study expands to %d combinations, more than max_points = %d; pass --force or raise [study] max_points", pl.Combinations, s.MaxPoints)}
	}
	// what the dataset holds: an ok row wins over failed ones
	var okKeys, failedKeys []uint64
	var failedIn []int // index in pl.FailedParts of each failed key
	bad, err := dataset.Index(ctx, dir, func(e dataset.Entry) {
		if e.EngineVersion != s.Engine.Version() {
			pl.Stale[e.EngineVersion]++
			return
		}
		key, valid := ParseKey(e.ID)
		if !valid {
			return
		}
		if e.Failed {
			if len(pl.FailedParts) == 0 || pl.FailedParts[len(pl.FailedParts)-1] != e.Part {
				pl.FailedParts = append(pl.FailedParts, e.Part)
			}
			failedKeys = append(failedKeys, key)
			failedIn = append(failedIn, len(pl.FailedParts)-1)
		} else {
			okKeys = append(okKeys, key)
		}
	})
	if err != nil {
		return nil, err
	}
	pl.Bad = bad
	ok, failed := newKeySet(okKeys), newKeySet(failedKeys)
	for i, k := range failedKeys {
		if !ok.has(k) {
			continue
		}
		if pl.superseded == nil {
			pl.superseded = map[uint64]bool{}
		}
		pl.superseded[k] = true
		pl.Superseded++
		if p := pl.FailedParts[failedIn[i]]; !slices.Contains(pl.SupersededParts, p) {
			pl.SupersededParts = append(pl.SupersededParts, p)
		}
	}
	okKeys, failedKeys, failedIn = nil, nil, nil
	// IDs are needed to look points up in the dataset and to place them in
	// shards; a first run of a whole study needs neither, unless its points
	// name files: their IDs read them, and a file that cannot be read is
	// bad input, found here before anything runs
	needID := ok.n > 0 || failed.n > 0 || o.Shard != All || len(s.fileParams()) > 0

	pl.Pending = NewBitset(pl.Combinations)
	var (
		next                                  atomic.Int64 // next block
		dropped, points, other, done, nfailed atomic.Int64
		mu                                    sync.Mutex
		firstErr                              error
		firstErrIdx                           int64 = -1
		firsts                                []int64
		wg                                    sync.WaitGroup
	)
	nblocks := (pl.Combinations + block - 1) / block
	resolve, axesOnly := s.Resolver()
	// with a prepared resolution a point needs only its axis values;
	// constraints that are not tabulated need the whole point. The sample
	// the contract is checked on is resolved the same way, and compared
	// with Resolve of the whole point.
	whole := !axesOnly || !s.whereByIndex()
	// which given parameters each point ignores, counted per parameter
	ignoring := s.ignoring()
	var ignored []ignoredCount
	if ignoring != nil {
		ignored = make([]ignoredCount, len(s.Engine.Params()))
	}
	for w := 0; w < o.Jobs; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ign []engine.Ignored
			var counts []ignoredCount
			if ignoring != nil {
				counts = make([]ignoredCount, len(ignored))
				defer func() {
					mu.Lock()
					defer mu.Unlock()
					for i := range counts {
						ignored[i] = mergeIgnored(ignored[i], counts[i])
					}
				}()
			}
			p := make([]engine.Value, len(s.Engine.Params()))
			f := s.NewFilter()
			h := NewHasher(s)
			given, long := make([]engine.Value, len(p)), make([]engine.Value, len(p))
			bIdx, bKey := make([]int64, 0, 64), make([]uint64, 0, 64)
			for {
				b := next.Add(1) - 1
				if b >= nblocks || ctx.Err() != nil {
					return
				}
				mu.Lock()
				stop := firstErrIdx >= 0 && firstErrIdx < b*block
				mu.Unlock()
				if stop {
					return
				}
				var cDropped, cPoints, cOther, cDone, cFailed int64
				var local []int64
				// lookup looks the batched keys up in the dataset: a batch of
				// independent lookups lets their cache misses overlap
				lookup := func() {
					for j, k := range bKey {
						switch {
						case ok.has(k):
							cDone++
						case failed.has(k):
							cFailed++
							if o.RetryFailed {
								pl.Pending.set(bIdx[j])
							}
						default:
							pl.Pending.set(bIdx[j])
						}
					}
					bIdx, bKey = bIdx[:0], bKey[:0]
				}
				for idx := b * block; idx < min((b+1)*block, pl.Combinations); idx++ {
					sample := idx < block || idx%251 == 0
					if whole {
						s.Fill(idx, p)
					} else {
						s.FillAxes(idx, p)
					}
					if len(s.Where) > 0 {
						keep, err := f.KeepIndex(idx, p)
						if err != nil {
							setErr(&mu, &firstErr, &firstErrIdx, idx, err)
							return
						}
						if !keep {
							cDropped++
							continue
						}
					}
					if sample {
						s.Fill(idx, given)
					}
					if err := resolve(p); err != nil {
						setErr(&mu, &firstErr, &firstErrIdx, idx, s.ErrorAt(err, s.Describe(p)))
						return
					}
					// the contract is checked on the first block and a
					// sample after it: a broken engine breaks it everywhere
					if sample {
						err := checkGiven(s, p, given)
						if err == nil {
							copy(long, given)
							err = checkResolver(s, p, long)
						}
						if err != nil {
							setErr(&mu, &firstErr, &firstErrIdx, idx, err)
							return
						}
					}
					if ignoring != nil {
						ign = ignoring(p, ign[:0])
						for k := range ign {
							counts[ign[k].Param].add(idx, &ign[k], p)
						}
					}
					if !needID {
						cPoints++
						pl.Pending.set(idx)
						if len(local) < o.Preview {
							local = append(local, idx)
						}
						continue
					}
					id, err := h.ID(p)
					if err != nil {
						setErr(&mu, &firstErr, &firstErrIdx, idx, s.ErrorAt(err, s.Describe(p)))
						return
					}
					if !o.Shard.Has(id) {
						cOther++
						continue
					}
					cPoints++
					if len(local) < o.Preview {
						local = append(local, idx)
					}
					bIdx = append(bIdx, idx)
					bKey = append(bKey, id.Key())
					if len(bKey) == cap(bKey) {
						lookup()
					}
				}
				lookup()
				dropped.Add(cDropped)
				points.Add(cPoints)
				other.Add(cOther)
				done.Add(cDone)
				nfailed.Add(cFailed)
				if len(local) > 0 {
					mu.Lock()
					firsts = append(firsts, local...)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	pl.Dropped, pl.Points, pl.OtherShards = dropped.Load(), points.Load(), other.Load()
	if pl.Combinations > 0 && pl.Dropped == pl.Combinations {
		return nil, &InputError{File: s.Path, Line: locate(s.Text, []string{"study", "where"}), Key: "study.where",
			Msg: fmt.Sprintf("the constraints drop every one of the %d combinations of the axes: the study has no points", pl.Combinations)}
	}
	if ignoring != nil {
		pl.NoEffect = s.ignoredKeys(ignored, pl.Points+pl.OtherShards)
		if err := s.ignoredError(pl.NoEffect); err != nil && !o.Lenient {
			return nil, err
		}
	}
	pl.Done, pl.Failed = done.Load(), nfailed.Load()
	slices.Sort(firsts)
	pl.first = firsts[:min(len(firsts), o.Preview)]
	return pl, nil
}

// setErr keeps the error of the lowest combination index.
func setErr(mu *sync.Mutex, first *error, firstIdx *int64, idx int64, err error) {
	mu.Lock()
	defer mu.Unlock()
	if *firstIdx < 0 || idx < *firstIdx {
		*first, *firstIdx = err, idx
	}
}

// checkGiven enforces the engine contract that makes point IDs unique: Resolve
// fills unset parameters and never changes a given one (an Int given for a
// Float parameter may widen), so two different combinations never resolve
// to one point.
func checkGiven(s *Study, p, given []engine.Value) error {
	for i := range given {
		g := given[i]
		if !g.IsSet() || p[i] == g {
			continue
		}
		if g.Kind == engine.Int && p[i].Kind == engine.Float && p[i].F == float64(g.I) {
			continue
		}
		return fmt.Errorf("engine %s changed the given parameter %s from %s to %s", s.Engine.Name(), s.Engine.Params()[i].Name, g, p[i])
	}
	return nil
}

// checkResolver holds the study's resolver (Study.Resolver) to the
// engine's Resolve: long is the point as filled, p as the resolver left it.
func checkResolver(s *Study, p, long []engine.Value) error {
	if err := s.Engine.Resolve(s.Dir, long); err != nil {
		return fmt.Errorf("engine %s: the point %s resolves by Resolve with %v, but not by its prepared resolution", s.Engine.Name(), s.Describe(long), err)
	}
	for i := range p {
		if a, b := p[i], long[i]; !a.Identical(b) {
			return fmt.Errorf("engine %s: the point %s resolves to %s = %s by Resolve, %s by its prepared resolution", s.Engine.Name(), s.Describe(long), s.Engine.Params()[i].Name, b, a)
		}
	}
	return nil
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

// Bitset is a fixed-size set of combination indexes.
type Bitset struct {
	words []uint64
	n     int64
}

// NewBitset returns an empty set over [0, n).
func NewBitset(n int64) *Bitset { return &Bitset{words: make([]uint64, (n+63)/64), n: n} }

func (b *Bitset) set(i int64) { b.words[i>>6] |= 1 << (i & 63) }

// Has reports whether i is in the set.
func (b *Bitset) Has(i int64) bool { return b.words[i>>6]&(1<<(i&63)) != 0 }

// Count is the number of members.
func (b *Bitset) Count() int64 {
	var n int64
	for _, w := range b.words {
		n += int64(popcount(w))
	}
	return n
}

// Each calls fn with every member in ascending order until fn returns false.
func (b *Bitset) Each(fn func(int64) bool) {
	for wi, w := range b.words {
		for w != 0 {
			t := w & -w
			i := int64(wi)*64 + int64(trailingZeros(w))
			if !fn(i) {
				return
			}
			w ^= t
		}
	}
}

func popcount(x uint64) int      { return bits.OnesCount64(x) }
func trailingZeros(x uint64) int { return bits.TrailingZeros64(x) }
