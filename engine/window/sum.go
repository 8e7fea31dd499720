package window

// sumWindow is a Sum window: per key, a ring of bucket sums and a cached
// total over the live buckets. The total is kept by adding each update to
// it and is recomputed from the ring when the live range has moved since
// (once per bucket width per active key), so it never drifts.
type sumWindow struct {
	kindOnly
	clk     clock
	maxKeys int
	keys    *keyTable
	state   []sumKey  // by id
	rings   []float64 // by id: ring slots at id*clk.ring
	stats   Stats
}

// sumKey is one key's state besides its ring.
type sumKey struct {
	head  int64   // newest bucket seq written to the ring
	lo    int64   // clk.lo when sum was last made from the ring
	sum   float64 // sum of live buckets as of lo
	first int64   // earliest update, or an estimate once it expired
	last  int64   // latest update
}

func newSumWindow(spec Spec) *sumWindow {
	return &sumWindow{
		kindOnly: kindOnly{Sum},
		clk:      newClock(int64(spec.Size), spec.Buckets),
		maxKeys:  spec.MaxKeys,
		keys:     newKeyTable(),
	}
}

func (w *sumWindow) ring(id int32) []float64 {
	r := w.clk.ring
	return w.rings[int64(id)*r : int64(id+1)*r : int64(id+1)*r]
}

// Add adds v to key's sum at event time now.
func (w *sumWindow) Add(key []byte, now int64, v float64) Result {
	seq, ok := w.clk.advance(now)
	h := w.keys.hash(key)
	id := w.keys.find(key, h)
	if !ok {
		w.stats.Late++
		if id < 0 {
			return Result{}
		}
		return w.result(id)
	}
	if id < 0 {
		id = w.insert(key, h, seq, now)
	} else {
		w.keys.touch(id)
		w.sync(id)
		if k := &w.state[id]; k.head < w.clk.lo { // all expired: start afresh
			k.first, k.last = now, now
		}
	}
	k := &w.state[id]
	r := w.ring(id)
	ringAdvance(&w.clk, r, &k.head, seq)
	r[w.clk.slot(seq)] += v
	k.sum += v
	k.first = min(k.first, now)
	k.last = max(k.last, now)
	return w.result(id)
}

// insert adds a new key, evicting the stalest one when the window is full.
func (w *sumWindow) insert(key []byte, h uint64, seq, now int64) int32 {
	if w.keys.n >= w.maxKeys {
		if old := w.keys.tail; w.state[old].head >= w.clk.lo {
			w.stats.Evicted++
		}
		w.keys.remove(w.keys.tail)
	}
	id, grown := w.keys.insert(key, h)
	if grown {
		w.state = append(w.state, sumKey{})
		w.rings = append(w.rings, make([]float64, w.clk.ring)...)
	}
	clear(w.ring(id))
	w.state[id] = sumKey{head: seq, lo: w.clk.lo, first: now, last: now}
	return id
}

// sync brings key id's cached sum up to the clock.
func (w *sumWindow) sync(id int32) {
	k := &w.state[id]
	if k.lo == w.clk.lo {
		return
	}
	k.lo = w.clk.lo
	k.sum = ringSum(&w.clk, w.ring(id), k.head)
}

func (w *sumWindow) result(id int32) Result {
	w.sync(id)
	k := &w.state[id]
	if k.first < w.clk.windowStart() && k.head >= w.clk.lo {
		k.first = ringFirst(&w.clk, w.ring(id), k.head)
	}
	return Result{Value: k.sum, First: k.first, Last: k.last}
}

// Expire drops keys with nothing left in the window at event time now.
func (w *sumWindow) Expire(now int64) int {
	w.clk.advance(now)
	dropped := 0
	for id := w.keys.head; id >= 0; {
		next := w.keys.next(id)
		if w.state[id].head < w.clk.lo {
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
