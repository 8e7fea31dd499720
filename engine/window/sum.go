package window

// sumWindow is a Sum window: per key, a ring of bucket sums relative to
// the key's newest bucket, and a cached total over the buckets of the
// window ending at the key's latest update. The total is kept by adding
// each update to it and is recomputed from the ring when that window's
// oldest bucket has moved since (once per bucket width per active key),
// so it never drifts. Only an update out of order sums the ring for the
// older window it asks about.
//
// The newest bucket's sum is kept beside the key's other state (cur), and
// written to its ring slot only when something reads the ring (flush), so
// an update in the key's current bucket, the common case, touches no ring.
type sumWindow struct {
	clk     clock // geometry only: a Sum window has no clock of its own
	at      span  // the buckets of the latest update's time
	wm      watermark
	maxKeys int
	keys    *keyTable[sumKey] // with each key's state
	rings   []float64         // by id: ring slots at id*clk.ring
	stats   Stats
}

// sumKey is one key's state besides its ring.
type sumKey struct {
	head  int64   // bucket seq of last: the ring holds (head-ring, head]
	lo    int64   // oldest bucket of the window ending at last
	sum   float64 // sum of buckets [lo, head]
	cur   float64 // sum of bucket head; its ring slot is stale until flush
	first int64   // earliest update, or an estimate once it left the window
	last  int64   // latest update
}

// flush writes the sum of k's newest bucket to its ring slot r.
func (w *sumWindow) flush(k *sumKey, r []float64) { r[w.clk.slot(k.head)] = k.cur }

func newSumWindow(spec Spec) *sumWindow {
	return &sumWindow{
		clk:     newClock(int64(spec.Size), spec.Buckets),
		wm:      watermark{span: int64(spec.Size) + int64(spec.Lateness)},
		maxKeys: spec.MaxKeys,
		keys:    newKeyTable[sumKey](),
	}
}

func (w *sumWindow) ring(id int32) []float64 {
	r := w.clk.ring
	return w.rings[int64(id)*r : int64(id+1)*r : int64(id+1)*r]
}

// Add adds v to key's sum at event time now.
func (w *sumWindow) Add(key []byte, now int64, v float64) Result {
	id, h := w.keys.lookup(key)
	seq, lo := w.clk.locate(&w.at, now)
	if w.wm.late(now) || (id >= 0 && seq <= w.keys.val(id).head-w.clk.ring) {
		w.stats.Late++
		if id < 0 {
			return Result{}
		}
		return w.result(id)
	}
	if id < 0 {
		id = w.insert(key, h, seq, lo, now)
	} else {
		w.keys.touch(id)
	}
	k := w.keys.val(id)
	if now < k.last { // out of order: its own bucket, the window it falls in
		if seq == k.head {
			k.cur += v
		} else {
			w.ring(id)[w.clk.slot(seq)] += v
		}
		if seq >= k.lo {
			k.sum += v
		}
		k.first = min(k.first, now)
		if e := now + w.clk.size - 1; e < k.last {
			return w.resultAt(id, e)
		}
		return w.result(id)
	}
	if lo > k.head { // nothing of the key left in the window: start afresh
		k.first = now
	}
	if seq != k.head || lo != k.lo {
		r := w.ring(id)
		w.flush(k, r)
		if seq > k.head {
			ringAdvance(&w.clk, r, &k.head, seq)
			k.cur = 0
		}
		if lo != k.lo {
			k.lo = lo
			k.sum = ringSum(&w.clk, r, lo, seq, seq)
		}
	}
	k.cur += v
	k.sum += v
	k.first = min(k.first, now)
	k.last = now
	return w.result(id)
}

// insert adds a new key, evicting the stalest one when the window is full.
func (w *sumWindow) insert(key []byte, h uint64, seq, lo, now int64) int32 {
	if w.keys.n >= w.maxKeys {
		if !w.wm.expired(w.keys.val(w.keys.tail).last) {
			w.stats.Evicted++
		}
		w.keys.remove(w.keys.tail)
	}
	id, grown := w.keys.insert(key, h)
	if grown {
		w.rings = append(w.rings, make([]float64, w.clk.ring)...)
	}
	clear(w.ring(id))
	*w.keys.val(id) = sumKey{head: seq, lo: lo, first: now, last: now}
	return id
}

// result is key id's value over the window ending at its latest update.
func (w *sumWindow) result(id int32) Result {
	k := w.keys.val(id)
	if start := k.last - w.clk.size + 1; k.first < start {
		r := w.ring(id)
		w.flush(k, r)
		k.first = ringFirst(&w.clk, r, k.lo, k.head, start)
	}
	return Result{Value: k.sum, First: k.first, Last: k.last}
}

// resultAt is key id's value over the window ending at e, before its
// latest update.
func (w *sumWindow) resultAt(id int32, e int64) Result {
	k := w.keys.val(id)
	r := w.ring(id)
	w.flush(k, r)
	lo := w.clk.liveLo(e)
	hi := floorDiv(e, w.clk.width)
	first := k.first
	if start := e - w.clk.size + 1; first < start {
		first = ringFirst(&w.clk, r, lo, hi, start)
	}
	return Result{Value: ringSum(&w.clk, r, lo, hi, k.head), First: first, Last: k.last}
}

// Advance moves the window's watermark to now if that is later.
func (w *sumWindow) Advance(now int64) { w.wm.advance(now) }

// Expire advances the watermark to now and drops the keys whose every
// update is late at it.
func (w *sumWindow) Expire(now int64) int {
	w.wm.advance(now)
	dropped := 0
	for id := w.keys.head; id >= 0; {
		next := w.keys.next(id)
		if w.wm.expired(w.keys.val(id).last) {
			w.keys.remove(id)
			dropped++
		}
		id = next
	}
	return dropped
}

// Stats counts the window's keys, evictions and late updates.
func (w *sumWindow) Stats() Stats {
	s := w.stats
	s.Keys = w.keys.n
	return s
}
