package window

// distinctWindow is a Distinct window. A key starts exact: a map from
// item to the bucket seq of its latest occurrence, and a ring of counts of
// the items whose latest occurrence is in each bucket, so the distinct
// count is the sum of the live counts and a repeated item just moves from
// one count to another. Past Spec.DistinctExact items the key switches to
// a sliding HyperLogLog (hll.go), carrying its live items over.
type distinctWindow struct {
	clk     clock // geometry only: a Distinct window has no clock of its own
	at      span  // the buckets of the latest update's time
	wm      watermark
	maxKeys int
	exact   int
	keys    *keyTable[distinctKey] // with each key's state
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
	head    int64 // bucket seq of last: the ring holds (head-ring, head]
	lo      int64 // oldest bucket of the window ending at last
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
		clk:     newClock(int64(spec.Size), spec.Buckets),
		wm:      watermark{span: int64(spec.Size) + int64(spec.Lateness)},
		maxKeys: spec.MaxKeys,
		exact:   spec.DistinctExact,
		keys:    newKeyTable[distinctKey](),
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
	id, h := w.keys.lookup(key)
	seq, lo := w.clk.locate(&w.at, now)
	slot := w.at.slot
	// Out of order, an update counts while its bucket is in the window
	// ending at the key's latest update: a distinct item's latest
	// occurrence is all a key keeps.
	if w.wm.late(now) || (id >= 0 && seq < w.keys.val(id).lo) {
		w.stats.Late++
		if id < 0 {
			return Result{}, false
		}
		return w.result(id), false
	}
	if id < 0 {
		id = w.insert(key, h, seq, lo, now)
	} else {
		w.keys.touch(id)
		if k := w.keys.val(id); now > k.last {
			if lo > k.head { // nothing of the key left in the window: start afresh
				w.release(id)
				k.first = now
			}
			if lo != k.lo {
				w.sync(id, lo)
			}
			if seq > k.head {
				w.advanceHead(k, w.ring(id), seq)
			}
			k.last = now
		}
	}
	k := w.keys.val(id)
	counts := w.ring(id)
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
	if p, found := k.items[item]; found && p >= k.lo {
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
			if p < k.lo {
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
		if p >= k.lo {
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

// sync brings key id's count or sketch to the window whose oldest bucket
// is lo, once its head has moved.
func (w *distinctWindow) sync(id int32, lo int64) {
	k := w.keys.val(id)
	if k.lo == lo {
		return
	}
	old := k.lo
	k.lo = lo
	counts := w.ring(id)
	if k.sketch == nil {
		k.count = int64(ringSum(&w.clk, counts, lo, k.head, k.head))
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

// result is key id's count over the window ending at its latest update.
func (w *distinctWindow) result(id int32) Result {
	k := w.keys.val(id)
	if start := k.last - w.clk.size + 1; k.first < start {
		k.first = ringFirst(&w.clk, w.ring(id), k.lo, k.head, start)
	}
	v := float64(k.count)
	if k.sketch != nil {
		v = k.sketch.estimate()
	}
	return Result{Value: v, First: k.first, Last: k.last}
}

// insert adds a new key, evicting the stalest one when the window is full.
func (w *distinctWindow) insert(key []byte, h uint64, seq, lo, now int64) int32 {
	if w.keys.n >= w.maxKeys {
		if !w.wm.expired(w.keys.val(w.keys.tail).last) {
			w.stats.Evicted++
		}
		w.drop(w.keys.tail)
	}
	id, grown := w.keys.insert(key, h)
	if grown {
		w.counts = append(w.counts, make([]int32, w.clk.ring)...)
	}
	clear(w.ring(id))
	k := w.keys.val(id)
	items := k.items // kept from the id's last key, emptied by drop
	*k = distinctKey{head: seq, lo: lo, first: now, last: now, items: items, pruneAt: 16}
	return id
}

// release empties key id's items, recycling its sketch.
func (w *distinctWindow) release(id int32) {
	k := w.keys.val(id)
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

// Advance moves the window's watermark to now if that is later.
func (w *distinctWindow) Advance(now int64) { w.wm.advance(now) }

// Expire advances the watermark to now and drops the keys whose every
// update is late at it.
func (w *distinctWindow) Expire(now int64) int {
	w.wm.advance(now)
	dropped := 0
	for id := w.keys.head; id >= 0; {
		next := w.keys.next(id)
		if w.wm.expired(w.keys.val(id).last) {
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
