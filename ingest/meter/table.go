package meter

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
)

// table maps flow keys to slab indices. It is an open-addressing hash table
// with linear probing and backward-shift deletion: the meter deletes as
// often as it inserts, and Go's map slows down under that churn (deleted
// slots linger until it grows), which a flood of one-packet flows such as a
// port scan would turn into a slow path.
//
// A slot holds the low 32 bits of the key's hash (which also give the home
// position) and the slab index + 1; 0 is empty. The table is kept at most
// half full.
type table struct {
	slots []uint64
	mask  uint32
	n     int
	seed  [3]uint64 // random per meter: traffic cannot choose colliding keys
}

func newTable(hint int) table {
	size := 1 << 15
	for size < 2*hint {
		size <<= 1
	}
	return table{
		slots: make([]uint64, size),
		mask:  uint32(size - 1),
		seed:  [3]uint64{rand.Uint64() | 1, rand.Uint64() | 1, rand.Uint64() | 1},
	}
}

func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// hash returns the key's 32-bit hash.
func (t *table) hash(k *key) uint32 {
	s, d := &k.src, &k.dst
	h := mix(binary.LittleEndian.Uint64(s[:8])^t.seed[0], binary.LittleEndian.Uint64(s[8:])^t.seed[1])
	h ^= mix(binary.LittleEndian.Uint64(d[:8])^t.seed[1], binary.LittleEndian.Uint64(d[8:])^t.seed[2])
	h = mix(h^k.meta, t.seed[0]^k.meta<<7)
	return uint32(h) ^ uint32(h>>32)
}

// find returns the slot position holding k, or the empty slot where it
// would go, and whether it was found.
func (t *table) find(s *slab, k *key, h uint32) (uint32, bool) {
	for p := h & t.mask; ; p = (p + 1) & t.mask {
		v := t.slots[p]
		if v == 0 {
			return p, false
		}
		if uint32(v>>32) == h && s.at(int32(uint32(v)-1)).key == *k {
			return p, true
		}
	}
}

// insert puts slab index i for hash h at position p, an empty slot that find
// returned, growing the table when it gets more than half full.
func (t *table) insert(p, h uint32, i int32) {
	t.slots[p] = uint64(h)<<32 | uint64(i+1)
	t.n++
	if 2*t.n > len(t.slots) {
		t.grow()
	}
}

func (t *table) grow() {
	old := t.slots
	t.slots = make([]uint64, 2*len(old))
	t.mask = uint32(len(t.slots) - 1)
	for _, s := range old {
		if s == 0 {
			continue
		}
		p := uint32(s>>32) & t.mask
		for t.slots[p] != 0 {
			p = (p + 1) & t.mask
		}
		t.slots[p] = s
	}
}

// remove deletes the entry at position p, shifting later entries of the
// same probe run back so that no tombstone is left.
func (t *table) remove(p uint32) {
	t.n--
	for j := (p + 1) & t.mask; ; j = (j + 1) & t.mask {
		s := t.slots[j]
		if s == 0 {
			break
		}
		home := uint32(s>>32) & t.mask
		// The entry at j may move to p unless its home lies cyclically in (p, j].
		if (j-home)&t.mask >= (j-p)&t.mask {
			t.slots[p] = s
			p = j
		}
	}
	t.slots[p] = 0
}
