package window

// Exchanger is a window shared with other instances, which learns their
// totals now and then (a Redis flush) rather than with each update. A
// group whose combined value crosses its threshold only through the others'
// part would otherwise be noticed on the group's next local update, and a
// burst split across instances has none. The engine pulls the changes
// through Exchanger from the goroutine that updates the window.
type Exchanger interface {
	// Changed appends to dst the keys whose other instances' part rose
	// with the answers received since the last call, each with its
	// combined Result as an update would return it now, and forgets them.
	// How many a window keeps between calls is bounded by its store.
	Changed(dst []Change) []Change
}

// Change is one key whose value rose through other instances' updates.
type Change struct {
	Key    string
	Result Result
}

// Peek returns key's Result as it stands, without an update: ok is false
// when the window holds nothing of key in the window. Not part of Window:
// stores that combine a local window with other state (Redis) find it by
// a type assertion.
func (w *sumWindow) Peek(key []byte) (r Result, ok bool) {
	id, _ := w.keys.lookup(key)
	if id < 0 || w.keys.val(id).head < w.clk.lo {
		return Result{}, false
	}
	return w.result(id), true
}

// Peek returns key's Result as it stands, without an update: ok is false
// when the window holds nothing of key in the window. Not part of Window.
func (w *distinctWindow) Peek(key []byte) (r Result, ok bool) {
	id, _ := w.keys.lookup(key)
	if id < 0 || w.keys.val(id).head < w.clk.lo {
		return Result{}, false
	}
	return w.result(id), true
}

// Thresholder is a shared window told the smallest value at which its
// rule fires, so that it can keep to itself the groups whose local value
// cannot matter (see the Redis store). The engine calls SetThreshold when
// it loads the rule, and again when a reload changes its threshold; a
// threshold of zero or less asks for every update to be shared. share is
// a Top rule's smallest fraction of the window's total (0: none).
type Thresholder interface {
	SetThreshold(v, share float64)
}

// SumBuckets calls fn with each nonzero bucket key holds, oldest first:
// the bucket's seq and sum. It reports false when the window holds
// nothing of key. Not part of Window: a shared store uses it to send a
// group's whole local part once the group starts to matter.
func (w *sumWindow) SumBuckets(key []byte, fn func(seq int64, v float64)) bool {
	id, _ := w.keys.lookup(key)
	if id < 0 {
		return false
	}
	k := w.keys.val(id)
	r := w.ring(id)
	w.flush(k, r)
	for q := k.head - w.clk.ring + 1; q <= k.head; q++ {
		if v := r[w.clk.slot(q)]; v != 0 {
			fn(q, v)
		}
	}
	return true
}

// ExactItems calls fn with each item key holds and the seq of the bucket
// of its latest occurrence, for the items of the window ending at key's
// latest update. It reports false, without calling fn, when the window
// holds nothing of key or holds it as a HyperLogLog (past
// Spec.DistinctExact items), whose items are gone. Not part of Window.
func (w *distinctWindow) ExactItems(key []byte, fn func(seq int64, item uint64)) bool {
	id, _ := w.keys.lookup(key)
	if id < 0 || w.keys.val(id).sketch != nil {
		return false
	}
	k := w.keys.val(id)
	for it, p := range k.items {
		if p >= k.lo {
			fn(p, it)
		}
	}
	return true
}

// SumBuckets calls fn with each nonzero bucket of key's counter, oldest
// first, and reports false when the sketch does not track key. A counter
// that took over another key's keeps its buckets: they are part of the
// estimate (Space-Saving's overestimation). Not part of Window.
func (w *topWindow) SumBuckets(key []byte, fn func(seq int64, v float64)) bool {
	id, _ := w.keys.lookup(key)
	if id < 0 {
		return false
	}
	c := &w.ctr[id]
	r := w.ring(id)
	for q := c.head - w.clk.ring + 1; q <= c.head; q++ {
		if v := r[w.clk.slot(q)]; v != 0 {
			fn(q, v)
		}
	}
	return true
}

// EachValue calls fn with every key the window holds and its value over
// the window ending at the key's latest update (a key past the exact
// limit: DistinctExact+1, a floor). It changes nothing, and fn must not
// keep key. Not part of Window: a shared store scans its groups with it
// when its share of the threshold falls.
func (w *sumWindow) EachValue(fn func(key []byte, v float64)) {
	for id := w.keys.head; id >= 0; id = w.keys.next(id) {
		fn(w.keys.key(id), w.keys.val(id).sum)
	}
}

// EachValue: see the Sum window's.
func (w *distinctWindow) EachValue(fn func(key []byte, v float64)) {
	for id := w.keys.head; id >= 0; id = w.keys.next(id) {
		k := w.keys.val(id)
		v := float64(k.count)
		if k.sketch != nil {
			v = float64(w.exact + 1)
		}
		fn(w.keys.key(id), v)
	}
}

// EachValue: see the Sum window's; a Top key's value is its counter's.
func (w *topWindow) EachValue(fn func(key []byte, v float64)) {
	for id := w.keys.head; id >= 0; id = w.keys.next(id) {
		fn(w.keys.key(id), w.heap[w.ctr[id].pos].sum)
	}
}
