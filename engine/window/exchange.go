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
	id := w.keys.find(key, w.keys.hash(key))
	if id < 0 || w.state[id].head < w.clk.lo {
		return Result{}, false
	}
	return w.result(id), true
}

// Peek returns key's Result as it stands, without an update: ok is false
// when the window holds nothing of key in the window. Not part of Window.
func (w *distinctWindow) Peek(key []byte) (r Result, ok bool) {
	id := w.keys.find(key, w.keys.hash(key))
	if id < 0 || w.state[id].head < w.clk.lo {
		return Result{}, false
	}
	return w.result(id), true
}
