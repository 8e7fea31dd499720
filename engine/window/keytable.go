package window

import (
	"bytes"
	"hash/maphash"
)

// keyTable maps key bytes to small dense ids and keeps the ids in
// least-recently-used order. Windows keep per-key state in slices indexed
// by id. Lookups hash the borrowed key bytes without copying them; a new
// key is copied into a buffer that is reused when its id is freed, so a
// window that evicts as fast as it inserts does not allocate.
//
// The index is open addressing with linear probing and backward-shift
// deletion; each slot packs a 32-bit hash tag with id+1 (0 is empty). A
// key of up to keyInline bytes (IPv6 pairs and ports fit) is held in its
// id's 64-byte record, so a lookup of a key that is not in the CPU cache
// costs two misses: the slot and the record.
type keyTable struct {
	seed  maphash.Seed
	slots []uint64
	mask  uint64
	n     int // keys held

	ids  []keyRecord // by id
	long [][]byte    // by id: keys longer than keyInline, or nil
	free []int32     // ids to reuse, last freed first
	head int32       // most recently used id, or -1
	tail int32       // least recently used id, or -1
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

// key returns id's key.
func (t *keyTable) key(id int32) []byte {
	r := &t.ids[id]
	if r.n <= keyInline {
		return r.inline[:r.n]
	}
	return t.long[id]
}

// setKey stores a copy of key as id's.
func (t *keyTable) setKey(id int32, key []byte) {
	r := &t.ids[id]
	r.n = int32(len(key))
	if len(key) <= keyInline {
		copy(r.inline[:], key)
		return
	}
	for len(t.long) <= int(id) {
		t.long = append(t.long, nil)
	}
	t.long[id] = append(t.long[id][:0], key...)
}

func newKeyTable() *keyTable {
	return &keyTable{seed: maphash.MakeSeed(), head: -1, tail: -1}
}

// hash hashes key for find and insert.
func (t *keyTable) hash(key []byte) uint64 { return maphash.Bytes(t.seed, key) }

// find returns key's id, or -1.
func (t *keyTable) find(key []byte, h uint64) int32 {
	if t.n == 0 {
		return -1
	}
	tag := h >> 32
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s == 0 {
			return -1
		}
		if s>>32 == tag {
			id := int32(uint32(s)) - 1
			if bytes.Equal(t.key(id), key) {
				return id
			}
		}
	}
}

// insert adds key, which must not be present, copying it, and makes it the
// most recently used. It reports whether the id is new (past every id
// handed out before), in which case the caller grows its per-id slices.
func (t *keyTable) insert(key []byte, h uint64) (id int32, grown bool) {
	if (t.n+1)*2 > len(t.slots) {
		t.rehash(max(16, len(t.slots)*2))
	}
	if n := len(t.free); n > 0 {
		id = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		id = int32(len(t.ids))
		t.ids = append(t.ids, keyRecord{prev: -1, next: -1})
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
func (t *keyTable) rename(id int32, key []byte, h uint64) {
	t.unplace(id)
	t.setKey(id, key)
	t.ids[id].hash = h
	t.place(id, h)
}

// remove drops id and frees it for reuse.
func (t *keyTable) remove(id int32) {
	t.unplace(id)
	t.unlink(id)
	t.free = append(t.free, id)
	t.n--
}

// touch makes id the most recently used.
func (t *keyTable) touch(id int32) {
	if t.head == id {
		return
	}
	t.unlink(id)
	t.pushFront(id)
}

func (t *keyTable) place(id int32, h uint64) {
	i := h & t.mask
	for t.slots[i] != 0 {
		i = (i + 1) & t.mask
	}
	t.slots[i] = h>>32<<32 | uint64(uint32(id+1))
}

// unplace removes id from the index, shifting later entries of its probe
// run back so that lookups need no tombstones.
func (t *keyTable) unplace(id int32) {
	want := uint64(uint32(id + 1))
	i := t.ids[id].hash & t.mask
	for uint64(uint32(t.slots[i])) != want {
		i = (i + 1) & t.mask
	}
	for j := (i + 1) & t.mask; ; j = (j + 1) & t.mask {
		s := t.slots[j]
		if s == 0 {
			break
		}
		home := t.ids[int32(uint32(s))-1].hash & t.mask
		// Move s back into the hole at i unless its home lies in (i, j].
		if (j-home)&t.mask >= (j-i)&t.mask {
			t.slots[i] = s
			i = j
		}
	}
	t.slots[i] = 0
}

func (t *keyTable) rehash(size int) {
	t.slots = make([]uint64, size)
	t.mask = uint64(size - 1)
	for id := t.head; id >= 0; id = t.ids[id].next {
		t.place(id, t.ids[id].hash)
	}
}

func (t *keyTable) pushFront(id int32) {
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

func (t *keyTable) unlink(id int32) {
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
func (t *keyTable) next(id int32) int32 { return t.ids[id].next }
