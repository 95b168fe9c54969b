package moe

import (
	"math"
	"sync"
	"testing"
)

// TestRouteCache holds the lock-free routing memo to a map's behaviour:
// every entry put is found with its counts while the table grows, a key put
// twice keeps its first entry, and the bounds start a new table.
func TestRouteCache(t *testing.T) {
	var rc routeCache
	key := func(i int) routeKey {
		return routeKey{E: int64(i%7 + 1), K: 1, batch: int64(i), seed: int64(i / 3), routing: "uniform"}
	}
	const n = 5 * routeCacheSlots // several doublings
	for i := range n {
		k := key(i)
		rc.put(&k, routing{layers: 1, sum: routeStats{assigned: int64(i)}, lo: []int32{int32(i), int32(-i)}})
	}
	for i := range n {
		k := key(i)
		r, ok := rc.get(&k)
		if !ok || r.sum.assigned != int64(i) || r.lo[0] != int32(i) || r.lo[1] != int32(-i) {
			t.Fatalf("entry %d: ok %v, routing %+v", i, ok, r)
		}
	}
	k := key(n)
	if _, ok := rc.get(&k); ok {
		t.Fatal("a key never put was found")
	}
	k = key(3)
	rc.put(&k, routing{sum: routeStats{assigned: -1}, lo: []int32{9, 9}})
	if r, _ := rc.get(&k); r.sum.assigned != 3 {
		t.Fatalf("a second put replaced the entry: %+v", r)
	}
	if tb := rc.t.Load(); tb.n != n || 2*tb.n > len(tb.slots) {
		t.Fatalf("table holds %d entries in %d slots, want %d in at least %d", tb.n, len(tb.slots), n, 2*n)
	}
	// the entry bound starts over
	for i := n; i < routeCacheEntries+10; i++ {
		k := key(i)
		rc.put(&k, routing{lo: []int32{1}})
	}
	if tb := rc.t.Load(); tb.n != 10 {
		t.Fatalf("after the entry bound the table holds %d entries, want 10", tb.n)
	}
	// and so does the bound on expert counts
	big := make([]int32, routeCacheElems/2+1)
	for i := range 3 {
		k := routeKey{E: int64(len(big)), seed: int64(i), routing: "uniform"}
		rc.put(&k, routing{lo: big})
	}
	if tb := rc.t.Load(); tb.n != 1 || tb.elems != len(big) {
		t.Fatalf("after the element bound the table holds %d entries, %d counts", tb.n, tb.elems)
	}
}

// TestRouteCacheConcurrent reads and writes from many goroutines (run with
// -race): readers see whole entries or none.
func TestRouteCacheConcurrent(t *testing.T) {
	var rc routeCache
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 3000 {
				k := routeKey{E: 3, K: 1, batch: int64(i % 700), seed: int64(g % 2), routing: "zipf"}
				if r, ok := rc.get(&k); ok {
					if r.sum.assigned != k.batch || r.lo[2] != int32(k.batch) {
						t.Errorf("key %+v: routing %+v", k, r)
						return
					}
					continue
				}
				rc.put(&k, routing{sum: routeStats{assigned: k.batch}, lo: []int32{0, 1, int32(k.batch)}})
			}
		})
	}
	wg.Wait()
}

// TestRouteKeyZero checks that keys equal under == hash alike: -0 and 0.
func TestRouteKeyZero(t *testing.T) {
	a := routeKey{E: 4, K: 1, routing: "zipf", capacity: 0, skew: 1}
	b := a
	b.capacity = math.Copysign(0, -1)
	if a != b || a.hash() != b.hash() {
		t.Fatalf("keys equal %v, hashes %x and %x", a == b, a.hash(), b.hash())
	}
}
