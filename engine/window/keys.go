package window

// Keys is the key table the windows use, for other per-key state (the
// engine's learned state): byte keys mapped to small dense ids, reused
// once freed, in least-recently-used order. Not safe for concurrent use.
type Keys struct{ t *keyTable[struct{}] }

// NewKeys returns an empty table.
func NewKeys() *Keys { return &Keys{t: newKeyTable[struct{}]()} }

// Lookup returns key's id, or -1, and its hash for Insert: the key is
// hashed once and the index probed once. It does not touch the LRU order.
func (k *Keys) Lookup(key []byte) (id int32, h uint64) { return k.t.lookup(key) }

// Insert adds key (not present), whose hash Lookup returned, copying it,
// as the most recently used. It reports whether the id is past every id
// handed out before: the caller then grows its per-id state.
func (k *Keys) Insert(key []byte, h uint64) (id int32, grown bool) { return k.t.insert(key, h) }

// Touch makes id the most recently used.
func (k *Keys) Touch(id int32) { k.t.touch(id) }

// Remove drops id; its id is handed out again later.
func (k *Keys) Remove(id int32) { k.t.remove(id) }

// Len is the number of keys held.
func (k *Keys) Len() int { return k.t.n }

// Stalest returns the least recently used id, or -1.
func (k *Keys) Stalest() int32 { return k.t.tail }

// Key returns id's key, valid until id is removed.
func (k *Keys) Key(id int32) []byte { return k.t.key(id) }

// Each calls fn for every id, most recently used first.
func (k *Keys) Each(fn func(id int32, key []byte)) {
	for id := k.t.head; id >= 0; id = k.t.next(id) {
		fn(id, k.t.key(id))
	}
}
