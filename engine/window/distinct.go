package window

// distinctWindow is a Distinct window. A key starts exact: a map from
// item to the bucket seq of its latest occurrence, and a ring of counts of
// the items whose latest occurrence is in each bucket, so the distinct
// count is the sum of the live counts and a repeated item just moves from
// one count to another. Past Spec.DistinctExact items the key switches to
// a sliding HyperLogLog (hll.go), carrying its live items over.
type distinctWindow struct {
	kindOnly
	clk     clock
	maxKeys int
	exact   int
	keys    *keyTable
	state   []distinctKey // by id
	// counts holds a ring per id at id*clk.ring. Exact keys: items whose
	// latest occurrence is in the bucket. HyperLogLog keys: nonzero when
	// the bucket holds anything.
	counts []int32
	spare  []*hll  // sketches of dropped keys, for reuse
	live   []int64 // scratch: live slots for hll.rebuild
	stats  Stats
}

// distinctKey is one key's state besides its ring of counts.
type distinctKey struct {
	head    int64 // newest bucket seq written
	lo      int64 // clk.lo when count (or sketch) was last synced
	count   int64 // exact mode: distinct items in the live buckets
	first   int64
	last    int64
	items   map[uint64]int64 // exact mode: item → seq of its latest bucket
	pruneAt int              // prune items of dead buckets at this length
	sketch  *hll             // non-nil once the key went past exact
}

// maxSpareSketches bounds the sketches kept for reuse.
const maxSpareSketches = 16

func newDistinctWindow(spec Spec) *distinctWindow {
	return &distinctWindow{
		kindOnly: kindOnly{Distinct},
		clk:      newClock(int64(spec.Size), spec.Buckets),
		maxKeys:  spec.MaxKeys,
		exact:    spec.DistinctExact,
		keys:     newKeyTable(),
	}
}

func (w *distinctWindow) ring(id int32) []int32 {
	r := w.clk.ring
	return w.counts[int64(id)*r : int64(id+1)*r : int64(id+1)*r]
}

// AddDistinct records item for key at event time now.
func (w *distinctWindow) AddDistinct(key []byte, now int64, item uint64) Result {
	r, _ := w.AddDistinctNew(key, now, item)
	return r
}

// AddDistinctNew is AddDistinct that also reports whether item may be new
// to key's bucket of event time now: false only when the key is exact and
// already holds item in that very bucket. A store that copies updates
// elsewhere per bucket (Redis) copies only those, and drops the repeats
// of a flood without a lookup of its own. Not part of Window: stores find
// it by a type assertion.
func (w *distinctWindow) AddDistinctNew(key []byte, now int64, item uint64) (Result, bool) {
	seq, ok := w.clk.advance(now)
	h := w.keys.hash(key)
	id := w.keys.find(key, h)
	if !ok {
		w.stats.Late++
		if id < 0 {
			return Result{}, false
		}
		return w.result(id), false
	}
	if id < 0 {
		id = w.insert(key, h, seq, now)
	} else {
		w.keys.touch(id)
		w.sync(id)
		if w.state[id].head < w.clk.lo { // all expired: start afresh
			w.release(id)
			w.state[id].first, w.state[id].last = now, now
		}
	}
	k := &w.state[id]
	counts := w.ring(id)
	w.advanceHead(k, counts, seq)
	slot := w.clk.slot(seq)
	fresh := true
	if k.sketch != nil {
		counts[slot] = 1
		k.sketch.add(slot, item)
	} else {
		fresh = w.addExact(k, counts, seq, slot, item)
	}
	k.first = min(k.first, now)
	k.last = max(k.last, now)
	return w.result(id), fresh
}

// addExact adds item to an exact key and reports whether it may be new to
// bucket seq: false when seq is already the bucket of its latest
// occurrence. (An item seen in a newer bucket and now out of order in an
// older one may be new to that one: true.)
func (w *distinctWindow) addExact(k *distinctKey, counts []int32, seq, slot int64, item uint64) bool {
	if p, found := k.items[item]; found && p >= w.clk.lo {
		if seq > p { // the item's latest occurrence moves to a newer bucket
			counts[w.clk.slot(p)]--
			counts[slot]++
			k.items[item] = seq
		}
		return seq != p
	}
	if k.items == nil {
		k.items = make(map[uint64]int64)
	}
	k.items[item] = seq
	counts[slot]++
	k.count++
	if k.count > int64(w.exact) {
		w.toSketch(k)
		return true
	}
	if len(k.items) >= k.pruneAt {
		for it, p := range k.items {
			if p < w.clk.lo {
				delete(k.items, it)
			}
		}
		k.pruneAt = max(2*len(k.items), 16)
	}
	return true
}

// toSketch switches k to HyperLogLog, carrying its live items over.
func (w *distinctWindow) toSketch(k *distinctKey) {
	var s *hll
	if n := len(w.spare); n > 0 {
		s = w.spare[n-1]
		w.spare = w.spare[:n-1]
	} else {
		s = newHLL(w.clk.ring)
	}
	for it, p := range k.items {
		if p >= w.clk.lo {
			s.add(w.clk.slot(p), it)
		}
	}
	k.sketch = s
	k.items = nil
	k.count = 0
}

// advanceHead moves k's head to seq, emptying the buckets it skips.
func (w *distinctWindow) advanceHead(k *distinctKey, counts []int32, seq int64) {
	if seq <= k.head {
		return
	}
	from := max(k.head+1, seq-w.clk.ring+1)
	for q := from; q <= seq; q++ {
		s := w.clk.slot(q)
		counts[s] = 0
		if k.sketch != nil {
			k.sketch.clearSlot(s)
		}
	}
	k.head = seq
}

// sync brings key id's count or sketch up to the clock.
func (w *distinctWindow) sync(id int32) {
	k := &w.state[id]
	if k.lo == w.clk.lo {
		return
	}
	old := k.lo
	k.lo = w.clk.lo
	counts := w.ring(id)
	if k.sketch == nil {
		k.count = int64(ringSum(&w.clk, counts, k.head))
		return
	}
	// Rebuild the merged registers only if a bucket with items left.
	dropped := false
	for q := max(old, k.head-w.clk.ring+1); q < k.lo && q <= k.head; q++ {
		if counts[w.clk.slot(q)] != 0 {
			dropped = true
			break
		}
	}
	if !dropped {
		return
	}
	w.live = w.live[:0]
	for q := max(k.lo, k.head-w.clk.ring+1); q <= k.head; q++ {
		if s := w.clk.slot(q); counts[s] != 0 {
			w.live = append(w.live, s)
		}
	}
	k.sketch.rebuild(w.live)
}

func (w *distinctWindow) result(id int32) Result {
	w.sync(id)
	k := &w.state[id]
	if k.first < w.clk.windowStart() && k.head >= w.clk.lo {
		k.first = ringFirst(&w.clk, w.ring(id), k.head)
	}
	v := float64(k.count)
	if k.sketch != nil {
		v = k.sketch.estimate()
	}
	return Result{Value: v, First: k.first, Last: k.last}
}

// insert adds a new key, evicting the stalest one when the window is full.
func (w *distinctWindow) insert(key []byte, h uint64, seq, now int64) int32 {
	if w.keys.n >= w.maxKeys {
		if old := w.keys.tail; w.state[old].head >= w.clk.lo {
			w.stats.Evicted++
		}
		w.drop(w.keys.tail)
	}
	id, grown := w.keys.insert(key, h)
	if grown {
		w.state = append(w.state, distinctKey{})
		w.counts = append(w.counts, make([]int32, w.clk.ring)...)
	}
	clear(w.ring(id))
	items := w.state[id].items // kept from the id's last key, emptied by drop
	w.state[id] = distinctKey{head: seq, lo: w.clk.lo, first: now, last: now, items: items, pruneAt: 16}
	return id
}

// release empties key id's items, recycling its sketch.
func (w *distinctWindow) release(id int32) {
	k := &w.state[id]
	if k.sketch != nil {
		if len(w.spare) < maxSpareSketches {
			k.sketch.reset()
			w.spare = append(w.spare, k.sketch)
		}
		k.sketch = nil
	}
	if k.pruneAt > 512 {
		k.items = nil // let a big map go rather than hold it for a small key
	} else {
		clear(k.items)
	}
	k.count = 0
	k.pruneAt = 16
}

// drop removes key id.
func (w *distinctWindow) drop(id int32) {
	w.release(id)
	w.keys.remove(id)
}

// Expire drops keys with nothing left in the window at event time now.
func (w *distinctWindow) Expire(now int64) int {
	w.clk.advance(now)
	dropped := 0
	for id := w.keys.head; id >= 0; {
		next := w.keys.next(id)
		if w.state[id].head < w.clk.lo {
			w.drop(id)
			dropped++
		}
		id = next
	}
	return dropped
}

// Stats counts the window's keys, evictions and late updates.
func (w *distinctWindow) Stats() Stats {
	s := w.stats
	s.Keys = w.keys.n
	return s
}
