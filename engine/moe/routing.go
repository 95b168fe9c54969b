package moe

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
)

// rng is SplitMix64: tiny, fast, and fully determined by its seed, so a point
// and its seed always give the same routing.
type rng struct {
	s    uint64
	bits uint64 // unused random bits for small
	left int    // 16-bit chunks left in bits
}

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn returns a uniform integer in [0, n) (Lemire's multiply-shift; the bias
// is below 2^-32 for the expert counts used here).
func (r *rng) intn(n int64) int64 {
	hi, _ := bits.Mul64(r.next(), uint64(n))
	return int64(hi)
}

// small returns a nearly uniform integer in [0, n) for n <= 65536 from 16
// random bits, four per 64-bit draw (bias below n/65536 relative; none when
// n is a power of two).
func (r *rng) small(n int64) int64 {
	if r.left == 0 {
		r.bits, r.left = r.next(), 4
	}
	x := r.bits & 0xffff
	r.bits >>= 16
	r.left--
	return int64(x) * n >> 16
}

// float returns a uniform float64 in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// routeStats summarises one routing sample of a batch over the experts.
type routeStats struct {
	assigned int64 // token-expert pairs kept
	dropped  int64 // token-expert pairs over an expert's capacity
	active   int64 // experts with at least one token
	maxLoad  int64 // most tokens on one expert
	loaded   int64 // active experts that are not resident (loaded over the link)
}

// routing is the routing of a batch in every MoE layer of an iteration.
// Each MoE layer draws its own sample, as a model's layers route
// independently, and the routing metrics are the layers' means (sum). The
// timing runs two of the sampled layers as they were drawn, blended so
// that their number of active experts, which a decode MoE layer's time
// follows most (each active expert streams its weights), is the layers'
// mean (expertFFNs): lo, a layer with the most active experts at or below
// the mean, and hi, one with the fewest at or above it, weighted 1−f and
// f. A point's figures so carry the spread of one layer's routing divided
// by about sqrt(layers), not that of one sample repeated in every layer.
type routing struct {
	layers int64      // MoE layers sampled (0: no experts)
	sum    routeStats // summed over the layers (maxLoad: of each layer's busiest expert)
	lo, hi []int32    // tokens per expert of the two layers timed; immutable (shared by the cache)
	f      float64    // hi's weight; 0: lo alone (hi is lo)
}

// mean is x, a count summed over the layers, per layer.
func (r *routing) mean(x int64) float64 {
	if r.layers == 0 {
		return 0
	}
	return float64(x) / float64(r.layers)
}

// meanInt is mean(x) rounded to the nearest integer.
func (r *routing) meanInt(x int64) int64 { return int64(math.Round(r.mean(x))) }

// route samples the routing of the batch in each of the iteration's MoE
// layers: in every layer, top_k distinct experts for each of the batch's
// tokens (sample), the tokens per expert counted into scratch[0:E].
//
// Distributions: uniform; zipf, where expert i is picked with probability
// proportional to 1/(i+1)^skew (expert 0 is the most popular, in every
// layer); trace, where token t of MoE layer l takes the top_k experts of
// row t mod rows of the trace's layer l mod its layers. With capacity_factor c > 0 an expert accepts at most
// ceil(c·batch·top_k/E) tokens of a layer, in token order; the rest are
// dropped and counted.
//
// A routing depends only on the routing inputs (experts, top_k, batch,
// capacity, distribution, skew, trace, seed, resident experts, MoE layers),
// which most sweeps repeat across many points (every sequence length,
// scaling mode or hardware setting): routings are memoised, so each
// distinct routing is drawn once per process. The result is the same
// either way.
func (c *config) route(scratch []int32) routing {
	key := routeKey{E: c.E, K: c.K, batch: c.batch, capacity: c.capacity, skew: c.skew,
		routing: c.routing, trace: c.rtrace, seed: c.seed, resident: c.resident, tokenBase: c.tokenBase,
		layers: c.moeLayers()}
	if r, ok := routes.get(&key); ok {
		return r
	}
	r := c.sampleLayers(key.layers, scratch)
	routes.put(&key, r)
	return r
}

// sampleLayers draws the routing of each of layers MoE layers (see route)
// and picks the two it times: among the layers with the chosen number of
// active experts, the first whose busiest expert is nearest the layers'
// mean (scratch holds one layer's loads).
func (c *config) sampleLayers(layers int64, scratch []int32) routing {
	if layers <= 0 {
		return routing{}
	}
	r := routing{layers: layers}
	draws := layers
	if c.rtrace != nil && len(c.rtrace.Layers) == 1 {
		draws = 1 // a trace of one layer routes every layer alike
	}
	per := make([]routeStats, draws)
	for l := range per {
		per[l] = c.sample(scratch, int64(l))
		st := &per[l]
		r.sum.assigned += st.assigned
		r.sum.dropped += st.dropped
		r.sum.active += st.active
		r.sum.maxLoad += st.maxLoad
		r.sum.loaded += st.loaded
	}
	if rep := layers / draws; rep > 1 {
		r.sum.assigned *= rep
		r.sum.dropped *= rep
		r.sum.active *= rep
		r.sum.maxLoad *= rep
		r.sum.loaded *= rep
	}
	active, maxLoad := r.mean(r.sum.active), r.mean(r.sum.maxLoad)
	// pick returns the layer of the active count nearest active on the
	// side below (or above): the most (fewest) active experts that are
	// not above (below) the mean, then the busiest expert nearest the mean
	pick := func(below bool) int {
		best := -1
		for l := range per {
			a := float64(per[l].active)
			if below && a > active || !below && a < active {
				continue
			}
			if best < 0 {
				best = l
				continue
			}
			b := float64(per[best].active)
			switch {
			case below && a > b, !below && a < b:
				best = l
			case a == b && math.Abs(float64(per[l].maxLoad)-maxLoad) < math.Abs(float64(per[best].maxLoad)-maxLoad):
				best = l
			}
		}
		return best
	}
	lo, hi := pick(true), pick(false)
	aLo, aHi := float64(per[lo].active), float64(per[hi].active)
	if aHi == aLo {
		hi = lo
	}
	// the loads of layer l: scratch still holds the last layer drawn
	loads := func(l int) []int32 {
		if l != len(per)-1 {
			c.sample(scratch, int64(l))
		}
		return slices.Clone(scratch[:c.E])
	}
	if hi == len(per)-1 { // before scratch is drawn over
		r.hi = loads(hi)
	}
	r.lo = loads(lo)
	if hi == lo {
		r.hi = r.lo
	} else if r.hi == nil {
		r.hi = loads(hi)
	}
	if aHi > aLo {
		r.f = (active - aLo) / (aHi - aLo)
	}
	return r
}

// routeKey identifies a routing sample.
type routeKey struct {
	E, K, batch, seed, resident int64
	tokenBase, layers           int64
	capacity, skew              float64
	routing                     string
	trace                       *RoutingTrace
}

type routeEntry struct {
	key routeKey
	r   routing
}

// routeCache memoises routing samples, bounded in memory. Lookups take no
// lock and write no shared memory: the table is open-addressed, its slots
// are atomic pointers to immutable entries, and a full table is replaced,
// never changed in place. (A read-write mutex here cost 2 % of a
// two-worker sweep's CPU: every lookup wrote the mutex's cache line, which
// the two cores then passed back and forth.) Insertions are rare (one per
// distinct routing) and take mu.
type routeCache struct {
	mu sync.Mutex
	t  atomic.Pointer[routeTable]
}

// routeTable is one generation of the cache: len(slots) is a power of two,
// at most half of them are used, and elems bounds the expert counts held.
type routeTable struct {
	slots []atomic.Pointer[routeEntry]
	n     int // entries (written under routeCache.mu)
	elems int // int32s held (written under routeCache.mu)
}

// The cache's bounds: 4M load counts (32 MiB) and 64Ki entries (a table
// of 1 MiB). A new table has routeCacheSlots slots and doubles when half
// full.
const (
	routeCacheElems   = 4 << 20
	routeCacheEntries = 1 << 16
	routeCacheSlots   = 1 << 10
)

var routes routeCache

// hash mixes the key's fields (SplitMix64's finaliser over a running sum);
// equal keys hash alike, and get compares whole keys.
func (k *routeKey) hash() uint64 {
	h := uint64(k.E)*0x9e3779b97f4a7c15 ^ uint64(k.K)<<32 ^ uint64(k.batch)
	for _, x := range [...]uint64{uint64(k.seed), uint64(k.resident), uint64(k.tokenBase), uint64(k.layers),
		math.Float64bits(k.capacity + 0), math.Float64bits(k.skew + 0), uint64(len(k.routing))} { // + 0: -0 hashes as 0, which it equals
		h = (h ^ x) * 0xbf58476d1ce4e5b9
		h ^= h >> 31
	}
	if k.trace != nil {
		h ^= uint64(k.trace.Experts)*0x94d049bb133111eb + uint64(len(k.trace.Layers[0]))
	}
	h *= 0x94d049bb133111eb
	return h ^ h>>29
}

func (rc *routeCache) get(k *routeKey) (routing, bool) {
	t := rc.t.Load()
	if t == nil {
		return routing{}, false
	}
	mask := uint64(len(t.slots) - 1)
	for i := k.hash() & mask; ; i = (i + 1) & mask {
		e := t.slots[i].Load()
		if e == nil {
			return routing{}, false
		}
		if e.key == *k {
			return e.r, true
		}
	}
}

func (rc *routeCache) put(k *routeKey, r routing) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	t := rc.t.Load()
	switch {
	case t == nil || t.elems+len(r.lo)+len(r.hi) > routeCacheElems || t.n >= routeCacheEntries:
		// start over: the bound holds, and a sweep's routings repeat in runs
		t = &routeTable{slots: make([]atomic.Pointer[routeEntry], routeCacheSlots)}
		rc.t.Store(t)
	case 2*(t.n+1) > len(t.slots):
		// grow: a new table with every entry, published whole
		g := &routeTable{slots: make([]atomic.Pointer[routeEntry], 2*len(t.slots)), n: t.n, elems: t.elems}
		for i := range t.slots {
			if e := t.slots[i].Load(); e != nil {
				g.insert(e)
			}
		}
		t = g
		rc.t.Store(t)
	}
	if t.insert(&routeEntry{key: *k, r: r}) {
		t.n++
		t.elems += len(r.lo) + len(r.hi)
	}
}

// insert stores e in its first free slot; false if the key is present
// (another goroutine drew the same routing first).
func (t *routeTable) insert(e *routeEntry) bool {
	mask := uint64(len(t.slots) - 1)
	for i := e.key.hash() & mask; ; i = (i + 1) & mask {
		old := t.slots[i].Load()
		if old == nil {
			t.slots[i].Store(e)
			return true
		}
		if old.key == e.key {
			return false
		}
	}
}

// sample draws the routing of the batch in MoE layer layer (see route)
// into load[0:E].
func (c *config) sample(load []int32, layer int64) routeStats {
	E, K := c.E, c.K
	for i := range load[:E] {
		load[i] = 0
	}
	capTokens := int64(math.MaxInt64)
	if c.capacity > 0 {
		capTokens = int64(math.Ceil(c.capacity * float64(c.batch*K) / float64(E)))
	}
	var st routeStats
	// tokens after the first tokenBase of the whole batch, and each layer,
	// draw from their own stream
	r := rng{s: (uint64(c.seed)+uint64(c.tokenBase)*0xbf58476d1ce4e5b9+uint64(layer)*0x94d049bb133111eb)*0x9e3779b97f4a7c15 ^ 0x5851f42d4c957f2d}
	var picked [maxTraceK]int64
	var perm []int64
	var cdf []float64
	var cdfBuf [256]float64
	zipf := c.routing == "zipf" && c.skew > 0
	if zipf {
		if E <= int64(len(cdfBuf)) {
			cdf = cdfBuf[:E]
		} else {
			cdf = make([]float64, E)
		}
		acc := 0.0
		for i := range cdf {
			acc += math.Pow(float64(i+1), -c.skew)
			cdf[i] = acc
		}
	}
	pickedSlice := picked[:0]
	if K > maxTraceK {
		pickedSlice = make([]int64, 0, K)
	}
	if !zipf && c.rtrace == nil && K > 4 && 2*K > E {
		// uniform with top_k near E: rejection would retry too often
		perm = make([]int64, E)
	}
	if !zipf && c.rtrace == nil && perm == nil && K <= maxTraceK {
		// fast path: uniform routing by rejection of repeats
		var pk [maxTraceK]int32
		for t := int64(0); t < c.batch; t++ {
			n := int64(0)
		draw:
			for n < K {
				x := int32(r.small(E))
				for _, y := range pk[:n] {
					if y == x {
						continue draw
					}
				}
				pk[n] = x
				n++
				if int64(load[x]) >= capTokens {
					st.dropped++
				} else {
					load[x]++
					st.assigned++
				}
			}
		}
		c.summarise(load, &st, layer)
		return st
	}
	for t := int64(0); t < c.batch; t++ {
		var chosen []int64
		switch {
		case c.rtrace != nil:
			rows := c.rtrace.Layers[layer%int64(len(c.rtrace.Layers))]
			row := &rows[(c.tokenBase+t)%int64(len(rows))]
			pickedSlice = pickedSlice[:K]
			for j := range pickedSlice {
				pickedSlice[j] = int64(row[j])
			}
			chosen = pickedSlice
		case perm != nil:
			// partial Fisher-Yates
			for i := range perm {
				perm[i] = int64(i)
			}
			for j := int64(0); j < K; j++ {
				x := j + r.intn(E-j)
				perm[j], perm[x] = perm[x], perm[j]
			}
			chosen = perm[:K]
		default:
			pickedSlice = pickedSlice[:0]
			for int64(len(pickedSlice)) < K {
				var x int64
				if zipf {
					x = sampleCDF(cdf, &r, pickedSlice)
				} else {
					x = r.small(E)
				}
				dup := false
				for _, y := range pickedSlice {
					if y == x {
						dup = true
						break
					}
				}
				if !dup {
					pickedSlice = append(pickedSlice, x)
				}
			}
			chosen = pickedSlice
		}
		for _, x := range chosen {
			if int64(load[x]) >= capTokens {
				st.dropped++
				continue
			}
			load[x]++
			st.assigned++
		}
	}
	c.summarise(load, &st, layer)
	return st
}

// summarise counts active, loaded and the maximum load. The resident
// experts are the resident_experts most popular ones: the lowest-numbered
// for uniform routing (all are alike) and zipf (expert 0 is the most
// popular), and for a trace those the rows of the MoE layer's trace layer
// pick most often (RoutingTrace.popular).
func (c *config) summarise(load []int32, st *routeStats, layer int64) {
	var resident []bool
	if c.rtrace != nil && c.resident > 0 && c.resident < c.E {
		resident = c.rtrace.popular(c.E, c.K, c.resident, layer%int64(len(c.rtrace.Layers)))
	}
	for i, n := range load[:c.E] {
		if n > 0 {
			st.active++
			if resident != nil && !resident[i] || resident == nil && int64(i) >= c.resident {
				st.loaded++
			}
			st.maxLoad = max(st.maxLoad, int64(n))
		}
	}
}

// popular reports, per expert of E, whether it is among the n experts the
// rows of the trace's layer pick most often in their first k ranks (ties:
// the lower number), kept per (E, k, n, layer).
func (t *RoutingTrace) popular(E, k, n, layer int64) []bool {
	key := [4]int64{E, k, n, layer}
	t.mu.Lock()
	defer t.mu.Unlock()
	if m, ok := t.resident[key]; ok {
		return m
	}
	count := make([]int64, E)
	rows := t.Layers[layer]
	for r := range rows {
		for j := int64(0); j < min(k, int64(t.K)); j++ {
			if x := int64(rows[r][j]); x < E {
				count[x]++
			}
		}
	}
	order := make([]int64, E)
	for i := range order {
		order[i] = int64(i)
	}
	slices.SortStableFunc(order, func(a, b int64) int { return cmp.Compare(count[b], count[a]) })
	m := make([]bool, E)
	for _, x := range order[:min(n, E)] {
		m[x] = true
	}
	if t.resident == nil {
		t.resident = map[[4]int64][]bool{}
	}
	t.resident[key] = m
	return m
}

// sampleCDF draws an expert from the cumulative weights cdf. After a few
// rejected draws of already chosen experts it draws exactly from the
// remaining ones, so high skews stay fast.
func sampleCDF(cdf []float64, r *rng, chosen []int64) int64 {
	total := cdf[len(cdf)-1]
	for try := 0; try < 8; try++ {
		u := r.float() * total
		lo, hi := 0, len(cdf)-1
		for lo < hi {
			mid := (lo + hi) / 2
			if cdf[mid] > u {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		x := int64(lo)
		taken := false
		for _, y := range chosen {
			if y == x {
				taken = true
				break
			}
		}
		if !taken {
			return x
		}
	}
	weight := func(i int) float64 {
		if i == 0 {
			return cdf[0]
		}
		return cdf[i] - cdf[i-1]
	}
	rest := total
	for _, y := range chosen {
		rest -= weight(int(y))
	}
	u := r.float() * rest
	last := int64(-1)
	for i := range cdf {
		taken := false
		for _, y := range chosen {
			if y == int64(i) {
				taken = true
				break
			}
		}
		if taken {
			continue
		}
		last = int64(i)
		u -= weight(i)
		if u < 0 {
			return last
		}
	}
	return last
}
