package window

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
)

// keyTable maps key bytes to small dense ids and keeps the ids in
// least-recently-used order. Windows keep per-key state in slices indexed
// by id. Lookups hash the borrowed key bytes without copying them; a new
// key is copied into a buffer that is reused when its id is freed, so a
// window that evicts as fast as it inserts does not allocate.
//
// The index is open addressing with linear probing and backward-shift
// deletion; each slot packs the hash's top 32 bits (its tag) with id+1 (0
// is empty). The tag's low bits are the slot's home, so deletion and
// growth move slots without reading records. A key of up to keyInline
// bytes (IPv6 pairs and ports fit) is held in its id's 64-byte record, so
// a lookup of a key that is not in the CPU cache costs two misses: the
// slot and the record. The record also holds the window's per-key state
// V, so a window's update of a held key finds its state in the lines the
// lookup just read.
type keyTable[V any] struct {
	seed  maphash.Seed // keys longer than shortKey
	s0    uint64       // seeds of the short-key hash
	s1    uint64
	slots []uint64
	mask  uint64
	n     int // keys held

	ids  []keyEntry[V] // by id
	long [][]byte      // by id: keys longer than keyInline, or nil
	free []int32       // ids to reuse, last freed first
	head int32         // most recently used id, or -1
	tail int32         // least recently used id, or -1
}

// keyEntry is one id's record and the window's state for its key. The
// state outlives a remove: insert hands a reused id back with the state
// its last key left.
type keyEntry[V any] struct {
	keyRecord
	v V
}

// keyInline is the longest key held in its record.
const keyInline = 44

// keyRecord is one id's key, hash and LRU links.
type keyRecord struct {
	hash   uint64
	prev   int32 // LRU neighbour towards the head (more recent), or -1
	next   int32 // LRU neighbour towards the tail (staler), or -1
	n      int32 // key length
	inline [keyInline]byte
}

// val returns id's state.
func (t *keyTable[V]) val(id int32) *V { return &t.ids[id].v }

// key returns id's key.
func (t *keyTable[V]) key(id int32) []byte {
	r := &t.ids[id]
	if r.n <= keyInline {
		return r.inline[:r.n]
	}
	return t.long[id]
}

// longKey returns id's key if it is longer than keyInline, else nil.
func (t *keyTable[V]) longKey(id int32) []byte {
	if int(id) < len(t.long) {
		return t.long[id]
	}
	return nil
}

// setKey stores a copy of key as id's.
func (t *keyTable[V]) setKey(id int32, key []byte) {
	r := &t.ids[id]
	r.n = int32(len(key))
	if len(key) <= keyInline {
		copy(r.inline[:], key)
		if len(key) < shortKey {
			clear(r.inline[len(key):shortKey]) // shortWords' padding
		}
		return
	}
	for len(t.long) <= int(id) {
		t.long = append(t.long, nil)
	}
	t.long[id] = append(t.long[id][:0], key...)
}

func newKeyTable[V any]() *keyTable[V] {
	seed := maphash.MakeSeed()
	return &keyTable[V]{
		seed: seed,
		s0:   maphash.Comparable(seed, 0) | 1,
		s1:   maphash.Comparable(seed, 1),
		head: -1, tail: -1,
	}
}

// shortKey is the longest key hashed and compared as two words: every key
// of IPv4 addresses and ports up to an address pair and a port.
const shortKey = 16

// hash hashes key for find and insert. A short key is read as two
// little-endian words, zero-padded, which with its length determine it,
// and mixed with the table's random seeds by two 64x64->128-bit multiplies
// (as wyhash does for short inputs); longer keys go to maphash.
func (t *keyTable[V]) hash(key []byte) uint64 {
	if len(key) > shortKey {
		return maphash.Bytes(t.seed, key)
	}
	a, b := shortWords(key)
	return t.mix(a, b, len(key))
}

func (t *keyTable[V]) mix(a, b uint64, n int) uint64 {
	hi, lo := bits.Mul64(a^t.s0, b^t.s1)
	hi, lo = bits.Mul64(hi^t.s1^uint64(n), lo^t.s0)
	return hi ^ lo
}

// shortWords returns a key of up to shortKey bytes as two little-endian
// words, zero-padded: how a record holds it.
func shortWords(k []byte) (a, b uint64) {
	switch n := len(k); {
	case n >= 8:
		return binary.LittleEndian.Uint64(k), binary.LittleEndian.Uint64(k[n-8:]) >> ((16 - n) * 8)
	case n >= 4:
		return uint64(binary.LittleEndian.Uint32(k)) | uint64(binary.LittleEndian.Uint32(k[n-4:]))>>((8-n)*8)<<32, 0
	case n > 0:
		return uint64(k[0]) | uint64(k[n>>1])<<((n>>1)*8) | uint64(k[n-1])<<((n-1)*8), 0
	}
	return 0, 0
}

// equalKey reports whether r holds key.
func (r *keyRecord) equalKey(key []byte, long []byte) bool {
	if int(r.n) != len(key) {
		return false
	}
	if len(key) <= shortKey {
		a, b := shortWords(key)
		return r.words(a, b)
	}
	if len(key) <= keyInline {
		return string(r.inline[:len(key)]) == string(key)
	}
	return string(long) == string(key)
}

// words reports whether r's short key is the words a and b.
func (r *keyRecord) words(a, b uint64) bool {
	return binary.LittleEndian.Uint64(r.inline[:8]) == a && binary.LittleEndian.Uint64(r.inline[8:16]) == b
}

// lookup hashes key and returns its id, or -1: hash and find in one.
func (t *keyTable[V]) lookup(key []byte) (id int32, h uint64) {
	if len(key) > shortKey {
		h = maphash.Bytes(t.seed, key)
		return t.find(key, h), h
	}
	var a, b uint64 // shortWords(key), spelled out: it is too big to inline
	switch n := len(key); {
	case n >= 8:
		a, b = binary.LittleEndian.Uint64(key), binary.LittleEndian.Uint64(key[n-8:])>>((16-n)*8)
	case n >= 4:
		a = uint64(binary.LittleEndian.Uint32(key)) | uint64(binary.LittleEndian.Uint32(key[n-4:]))>>((8-n)*8)<<32
	case n > 0:
		a = uint64(key[0]) | uint64(key[n>>1])<<((n>>1)*8) | uint64(key[n-1])<<((n-1)*8)
	}
	h = t.mix(a, b, len(key))
	if t.n == 0 {
		return -1, h
	}
	tag, n := h>>32, int32(len(key))
	for i := h >> 32 & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s == 0 {
			return -1, h
		}
		if s>>32 == tag {
			id := int32(uint32(s)) - 1
			if r := &t.ids[id].keyRecord; r.n == n && r.words(a, b) {
				return id, h
			}
		}
	}
}

// find returns key's id, or -1.
func (t *keyTable[V]) find(key []byte, h uint64) int32 {
	if t.n == 0 {
		return -1
	}
	tag := h >> 32
	for i := h >> 32 & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s == 0 {
			return -1
		}
		if s>>32 == tag {
			id := int32(uint32(s)) - 1
			if t.ids[id].equalKey(key, t.longKey(id)) {
				return id
			}
		}
	}
}

// insert adds key, which must not be present, copying it, and makes it the
// most recently used. It reports whether the id is new (past every id
// handed out before), in which case the caller grows its per-id slices.
func (t *keyTable[V]) insert(key []byte, h uint64) (id int32, grown bool) {
	if (t.n+1)*2 > len(t.slots) {
		t.rehash(max(16, len(t.slots)*2))
	}
	if n := len(t.free); n > 0 {
		id = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		id = int32(len(t.ids))
		t.ids = append(t.ids, keyEntry[V]{keyRecord: keyRecord{prev: -1, next: -1}})
		grown = true
	}
	t.setKey(id, key)
	t.ids[id].hash = h
	t.place(id, h)
	t.n++
	t.pushFront(id)
	return id, grown
}

// rename gives id, which is held, the key key (which must not be present),
// keeping id's place in the LRU list.
func (t *keyTable[V]) rename(id int32, key []byte, h uint64) {
	t.unplace(id)
	t.setKey(id, key)
	t.ids[id].hash = h
	t.place(id, h)
}

// remove drops id and frees it for reuse.
func (t *keyTable[V]) remove(id int32) {
	t.unplace(id)
	t.unlink(id)
	t.free = append(t.free, id)
	t.n--
}

// touch makes id the most recently used.
func (t *keyTable[V]) touch(id int32) {
	h := t.head
	if h == id {
		return
	}
	// unlink and pushFront, knowing that id is held and not the head: it
	// has a previous id, and the head is another one.
	ids := t.ids
	r := &ids[id]
	p, n := r.prev, r.next
	ids[p].next = n
	if n >= 0 {
		ids[n].prev = p
	} else {
		t.tail = p
	}
	r.prev, r.next = -1, h
	ids[h].prev = id
	t.head = id
}

func (t *keyTable[V]) place(id int32, h uint64) {
	i := h >> 32 & t.mask
	for t.slots[i] != 0 {
		i = (i + 1) & t.mask
	}
	t.slots[i] = h>>32<<32 | uint64(uint32(id+1))
}

// unplace removes id from the index, shifting later entries of its probe
// run back so that lookups need no tombstones.
func (t *keyTable[V]) unplace(id int32) {
	want := uint64(uint32(id + 1))
	i := t.ids[id].hash >> 32 & t.mask
	for uint64(uint32(t.slots[i])) != want {
		i = (i + 1) & t.mask
	}
	for j := (i + 1) & t.mask; ; j = (j + 1) & t.mask {
		s := t.slots[j]
		if s == 0 {
			break
		}
		home := s >> 32 & t.mask
		// Move s back into the hole at i unless its home lies in (i, j].
		if (j-home)&t.mask >= (j-i)&t.mask {
			t.slots[i] = s
			i = j
		}
	}
	t.slots[i] = 0
}

func (t *keyTable[V]) rehash(size int) {
	old := t.slots
	t.slots = make([]uint64, size)
	t.mask = uint64(size - 1)
	for _, s := range old {
		if s != 0 {
			i := s >> 32 & t.mask
			for t.slots[i] != 0 {
				i = (i + 1) & t.mask
			}
			t.slots[i] = s
		}
	}
}

func (t *keyTable[V]) pushFront(id int32) {
	t.ids[id].prev = -1
	t.ids[id].next = t.head
	if t.head >= 0 {
		t.ids[t.head].prev = id
	}
	t.head = id
	if t.tail < 0 {
		t.tail = id
	}
}

func (t *keyTable[V]) unlink(id int32) {
	r := &t.ids[id]
	p, n := r.prev, r.next
	if p >= 0 {
		t.ids[p].next = n
	} else {
		t.head = n
	}
	if n >= 0 {
		t.ids[n].prev = p
	} else {
		t.tail = p
	}
	r.prev, r.next = -1, -1
}

// next returns the id after id in LRU order (staler), or -1.
func (t *keyTable[V]) next(id int32) int32 { return t.ids[id].next }
