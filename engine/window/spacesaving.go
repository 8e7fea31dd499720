package window

// topWindow is a Top window: a Space-Saving sketch (Metwally, Agrawal,
// El Abbadi 2005) of Spec.TopCapacity counters whose counts are bucketed
// so that they slide with the window.
//
// A key that is not tracked takes over the counter with the smallest
// value when the sketch is full, and keeps that counter's buckets: the
// inherited value is Space-Saving's overestimation error, and it expires
// with the buckets it sits in.
//
// Counters sit in a min-heap by value. Between two moves of the window's
// live range values only grow (an update adds to one counter, which sifts
// down); when the range moves every counter is recomputed from its ring
// and the heap rebuilt, O(capacity × ring) once per bucket width. So the
// heap is exact, and finding the counter to replace is O(1) and fixing the
// heap O(log capacity).
type topWindow struct {
	clk      clock // the latest update, or the watermark less lateness if later
	lateness int64
	capacity int
	keys     *keyTable[struct{}]
	ctr      []topCounter // by id
	rings    []float64    // by id: ring slots at id*clk.ring
	heap     []heapEntry  // min-heap by sum
	lo       int64        // clk.lo when every counter was last synced

	totals    []float64 // ring of every key's sums, tracked or not
	totalHead int64
	total     float64

	stats Stats
}

// topCounter is one Space-Saving counter besides its ring and sum.
type topCounter struct {
	head  int64 // newest bucket seq written
	first int64
	last  int64
	pos   int32 // index in heap
}

// heapEntry is a counter's place in the heap: its value over the live
// buckets, kept here so that sifting reads no counter.
type heapEntry struct {
	sum float64
	id  int32
}

func newTopWindow(spec Spec) *topWindow {
	w := &topWindow{
		clk:      newClock(int64(spec.Size), spec.Buckets),
		lateness: int64(spec.Lateness),
		capacity: spec.TopCapacity,
		keys:     newKeyTable[struct{}](),
	}
	w.totals = make([]float64, w.clk.ring)
	return w
}

func (w *topWindow) ring(id int32) []float64 {
	r := w.clk.ring
	return w.rings[int64(id)*r : int64(id+1)*r : int64(id+1)*r]
}

// AddTop adds v to key's counter at event time now.
func (w *topWindow) AddTop(key []byte, now int64, v float64) Result {
	started := w.clk.started
	seq, ok := w.clk.advance(now)
	if !started {
		w.lo, w.totalHead = w.clk.lo, seq
	}
	w.sync()
	id, h := w.keys.lookup(key)
	if !ok {
		w.stats.Late++
		if id < 0 {
			return Result{Total: w.total}
		}
		return w.result(id)
	}
	if id < 0 {
		id = w.track(key, h, seq, now)
	}
	c := &w.ctr[id]
	r := w.ring(id)
	ringAdvance(&w.clk, r, &c.head, seq)
	slot := w.clk.seqSlot(seq)
	r[slot] += v
	w.heap[c.pos].sum += v
	c.first = min(c.first, now)
	c.last = max(c.last, now)
	w.down(int(c.pos))

	ringAdvance(&w.clk, w.totals, &w.totalHead, seq)
	w.totals[slot] += v
	w.total += v
	return w.result(id)
}

// track gives key a counter: a new one while the sketch has room, else
// the one with the smallest value.
func (w *topWindow) track(key []byte, h uint64, seq, now int64) int32 {
	if w.keys.n < w.capacity {
		id, grown := w.keys.insert(key, h)
		if grown {
			w.ctr = append(w.ctr, topCounter{})
			w.rings = append(w.rings, make([]float64, w.clk.ring)...)
		}
		clear(w.ring(id))
		w.ctr[id] = topCounter{head: seq, first: now, last: now, pos: int32(len(w.heap))}
		w.heap = append(w.heap, heapEntry{id: id})
		w.up(len(w.heap) - 1)
		return id
	}
	id := w.heap[0].id
	c := &w.ctr[id]
	if c.head >= w.clk.lo { // a counter with nothing left is expired, not evicted
		w.stats.Evicted++
	}
	w.keys.rename(id, key, h)
	c.first, c.last = now, now
	return id
}

// sync recomputes every counter and the total when the live range moved.
func (w *topWindow) sync() {
	if w.lo == w.clk.lo {
		return
	}
	w.lo = w.clk.lo
	for i := range w.heap {
		e := &w.heap[i]
		c := &w.ctr[e.id]
		e.sum = ringSum(&w.clk, w.ring(e.id), w.clk.lo, c.head, c.head)
	}
	w.total = ringSum(&w.clk, w.totals, w.clk.lo, w.totalHead, w.totalHead)
	w.heapify()
}

func (w *topWindow) result(id int32) Result {
	c := &w.ctr[id]
	if c.first < w.clk.windowStart() && c.head >= w.clk.lo {
		c.first = ringFirst(&w.clk, w.ring(id), w.clk.lo, c.head, w.clk.windowStart())
	}
	return Result{Value: w.heap[c.pos].sum, First: c.first, Last: c.last, Total: w.total}
}

// Rank returns key's 1-based rank by value among the tracked keys, or 0
// when key is not tracked. It is O(capacity).
func (w *topWindow) Rank(key []byte) int {
	id, _ := w.keys.lookup(key)
	if id < 0 {
		return 0
	}
	v := w.heap[w.ctr[id].pos].sum
	rank := 1
	for _, o := range w.heap {
		if o.sum > v {
			rank++
		}
	}
	return rank
}

// Advance moves the window's clock to the watermark now less the allowed
// lateness, if that is later.
func (w *topWindow) Advance(now int64) {
	if !w.clk.started {
		return // the first update starts the clock
	}
	w.clk.advance(now - w.lateness)
}

// Expire advances the clock as Advance does and drops counters with
// nothing left in the window.
func (w *topWindow) Expire(now int64) int {
	started := w.clk.started
	w.clk.advance(now - w.lateness)
	if !started {
		w.lo, w.totalHead = w.clk.lo, w.clk.hi
		return 0
	}
	w.sync()
	kept := w.heap[:0]
	dropped := 0
	for _, e := range w.heap {
		if w.ctr[e.id].head < w.clk.lo {
			w.keys.remove(e.id)
			dropped++
			continue
		}
		kept = append(kept, e)
	}
	w.heap = kept
	if dropped > 0 {
		w.heapify()
	}
	return dropped
}

// Stats counts the tracked keys, replaced counters and late updates.
func (w *topWindow) Stats() Stats {
	s := w.stats
	s.Keys = w.keys.n
	return s
}

func (w *topWindow) less(i, j int) bool {
	return w.heap[i].sum < w.heap[j].sum
}

func (w *topWindow) swap(i, j int) {
	h := w.heap
	h[i], h[j] = h[j], h[i]
	w.ctr[h[i].id].pos = int32(i)
	w.ctr[h[j].id].pos = int32(j)
}

func (w *topWindow) heapify() {
	for i, e := range w.heap {
		w.ctr[e.id].pos = int32(i)
	}
	for i := len(w.heap)/2 - 1; i >= 0; i-- {
		w.down(i)
	}
}

func (w *topWindow) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !w.less(i, p) {
			return
		}
		w.swap(i, p)
		i = p
	}
}

func (w *topWindow) down(i int) {
	n := len(w.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && w.less(r, l) {
			m = r
		}
		if !w.less(m, i) {
			return
		}
		w.swap(i, m)
		i = m
	}
}
