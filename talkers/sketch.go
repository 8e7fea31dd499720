package talkers

import "math/bits"

// key is one value of a dimension in a fixed size: an address in 16
// bytes, a protocol and port, or an AS number.
type key struct{ hi, lo uint64 }

// entry is one monitored key of a sketch: its totals since it took its
// place, and over, the weight it inherited from the key it replaced (the
// most its weight may overstate).
type entry struct {
	k                     key
	bytes, packets, flows uint64
	weight, over          uint64
}

// sketch is a space-saving summary (Metwally, Agrawal, El Abbadi 2005):
// at most cap keys; a new key, when full, takes the place of the key of
// least weight and inherits that weight. Every key whose true weight
// exceeds total/cap is held. Entries never move; a min-heap of their
// indexes finds the least, and an open-addressing table (linear probing,
// at most half full) finds a key. Nothing allocates after newSketch.
type sketch struct {
	ents  []entry
	heap  []int32 // entry indexes, least weight first
	pos   []int32 // entry index -> heap position
	slots []int32 // entry index + 1; 0: empty
	mask  uint64
	seed  uint64
	n     int
	// replaced counts keys that took another's place.
	replaced uint64
}

func newSketch(capacity int, seed uint64) *sketch {
	size := 1 << bits.Len(uint(2*capacity-1)) // a power of two >= 2*capacity
	return &sketch{
		ents: make([]entry, capacity), heap: make([]int32, capacity), pos: make([]int32, capacity),
		slots: make([]int32, size), mask: uint64(size - 1), seed: seed | 1,
	}
}

func (s *sketch) reset() {
	clear(s.slots)
	s.n = 0
}

func (s *sketch) hash(k key) uint64 {
	h := (k.hi ^ s.seed) * 0x9e3779b97f4a7c15
	h ^= k.lo + (h << 6) + (h >> 2)
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 31
	h *= 0x94d049bb133111eb
	return h ^ h>>29
}

// find returns the slot holding k, or the empty slot where it would go.
func (s *sketch) find(k key) uint64 {
	i := s.hash(k) & s.mask
	for {
		e := s.slots[i]
		if e == 0 || s.ents[e-1].k == k {
			return i
		}
		i = (i + 1) & s.mask
	}
}

// remove empties slot i and shifts later keys of its cluster back, so
// that probing never needs tombstones.
func (s *sketch) remove(i uint64) {
	for {
		s.slots[i] = 0
		j := i
		for {
			j = (j + 1) & s.mask
			e := s.slots[j]
			if e == 0 {
				return
			}
			home := s.hash(s.ents[e-1].k) & s.mask
			// Move e back to i unless its home lies cyclically in (i, j].
			if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
				s.slots[i] = e
				i = j
				break
			}
		}
	}
}

// add counts one flow of weight w (bytes or packets, as the sketch ranks).
func (s *sketch) add(k key, w, bytes, packets uint64) {
	i := s.find(k)
	var e int32
	switch {
	case s.slots[i] != 0:
		e = s.slots[i] - 1
	case s.n < len(s.ents):
		e = int32(s.n)
		s.ents[e] = entry{k: k}
		s.heap[s.n], s.pos[e] = e, int32(s.n)
		s.n++
		s.slots[i] = e + 1
	default:
		e = s.heap[0]
		old := &s.ents[e]
		s.remove(s.find(old.k))
		*old = entry{k: k, weight: old.weight, over: old.weight}
		s.slots[s.find(k)] = e + 1
		s.replaced++
	}
	en := &s.ents[e]
	en.weight += w
	en.bytes += bytes
	en.packets += packets
	en.flows++
	s.down(int(s.pos[e]))
	s.up(int(s.pos[e]))
}

// up restores the heap above position p (a new entry starts as a leaf).
func (s *sketch) up(p int) {
	for p > 0 {
		q := (p - 1) / 2
		if s.ents[s.heap[q]].weight <= s.ents[s.heap[p]].weight {
			return
		}
		s.heap[p], s.heap[q] = s.heap[q], s.heap[p]
		s.pos[s.heap[p]], s.pos[s.heap[q]] = int32(p), int32(q)
		p = q
	}
}

// down restores the heap below position p after its weight grew.
func (s *sketch) down(p int) {
	for {
		l := 2*p + 1
		if l >= s.n {
			return
		}
		c := l
		if r := l + 1; r < s.n && s.ents[s.heap[r]].weight < s.ents[s.heap[l]].weight {
			c = r
		}
		if s.ents[s.heap[p]].weight <= s.ents[s.heap[c]].weight {
			return
		}
		s.heap[p], s.heap[c] = s.heap[c], s.heap[p]
		s.pos[s.heap[p]], s.pos[s.heap[c]] = int32(p), int32(c)
		p = c
	}
}
