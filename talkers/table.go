package talkers

import "math/bits"

// key is one value of a dimension in a fixed size: an address in 16
// bytes, a protocol and port, or an AS number.
type key struct{ hi, lo uint64 }

// counts are one key's totals since it entered its table.
type counts struct{ bytes, packets, flows uint64 }

// entry is a key and its counts.
type entry struct {
	k key
	counts
}

// table counts the keys of one dimension in one bucket of time, in a fixed
// space: at most cap keys, found through an open-addressing index (linear
// probing, at most half full). When it is full, prune keeps the quarter of
// the keys with the most bytes and the quarter with the most packets and
// forgets the rest, so a heavy talker stays however many light ones pass
// (a key that returns counts again from zero: totals are lower bounds).
// Nothing allocates after newTable; a flow costs one probe.
type table struct {
	ents   []entry
	slots  []int32  // entry index + 1; 0: empty
	keep   []bool   // scratch of prune
	order  []int32  // scratch of prune
	weight []uint64 // scratch of prune: each entry's weight in the ranking
	mask   uint64
	seed   uint64
	n      int
	// pruned counts keys forgotten to make room.
	pruned uint64
}

func newTable(capacity int, seed uint64) *table {
	capacity = max(capacity, 8)
	size := 1 << bits.Len(uint(2*capacity-1)) // a power of two >= 2*capacity
	return &table{
		ents: make([]entry, capacity), slots: make([]int32, size),
		keep: make([]bool, capacity), order: make([]int32, capacity), weight: make([]uint64, capacity),
		mask: uint64(size - 1), seed: seed | 1,
	}
}

func (t *table) reset() {
	if t.n > 0 {
		clear(t.slots)
		t.n = 0
	}
}

func (t *table) hash(k key) uint64 {
	h := (k.hi ^ t.seed) * 0x9e3779b97f4a7c15
	h ^= k.lo + (h << 6) + (h >> 2)
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 31
	h *= 0x94d049bb133111eb
	return h ^ h>>29
}

// add counts one flow of key k.
func (t *table) add(k key, bytes, packets uint64) {
	t.merge(k, counts{bytes: bytes, packets: packets, flows: 1})
}

// merge adds c to key k's counts.
func (t *table) merge(k key, c counts) {
	i := t.hash(k) & t.mask
	for {
		e := t.slots[i]
		if e == 0 {
			break
		}
		if en := &t.ents[e-1]; en.k == k {
			en.bytes += c.bytes
			en.packets += c.packets
			en.flows += c.flows
			return
		}
		i = (i + 1) & t.mask
	}
	if t.n == len(t.ents) {
		t.prune()
		i = t.hash(k) & t.mask
		for t.slots[i] != 0 {
			i = (i + 1) & t.mask
		}
	}
	t.ents[t.n] = entry{k: k, counts: c}
	t.n++
	t.slots[i] = int32(t.n)
}

// prune keeps the top quarter by bytes and the top quarter by packets.
func (t *table) prune() {
	clear(t.keep[:t.n])
	top := max(1, len(t.ents)/4)
	for _, byPackets := range []bool{false, true} {
		order, weight := t.order[:t.n], t.weight[:t.n]
		for i := range order {
			order[i] = int32(i)
			if byPackets {
				weight[i] = t.ents[i].packets
			} else {
				weight[i] = t.ents[i].bytes
			}
		}
		selectTop(order, top, weight)
		for _, i := range order[:top] {
			t.keep[i] = true
		}
	}
	m := 0
	for i := range t.n {
		if t.keep[i] {
			t.ents[m] = t.ents[i]
			m++
		}
	}
	t.pruned += uint64(t.n - m)
	t.n = m
	clear(t.slots)
	for e := range m {
		i := t.hash(t.ents[e].k) & t.mask
		for t.slots[i] != 0 {
			i = (i + 1) & t.mask
		}
		t.slots[i] = int32(e + 1)
	}
}

// selectTop reorders idx so that its first k hold the k largest weights,
// weight[i] being entry i's (quickselect, Hoare partition; no allocation).
func selectTop(idx []int32, k int, weight []uint64) {
	lo, hi := 0, len(idx)-1
	for lo < hi {
		p := weight[idx[lo+(hi-lo)/2]]
		i, j := lo, hi
		for i <= j {
			for weight[idx[i]] > p {
				i++
			}
			for weight[idx[j]] < p {
				j--
			}
			if i <= j {
				idx[i], idx[j] = idx[j], idx[i]
				i++
				j--
			}
		}
		switch {
		case k-1 <= j:
			hi = j
		case k-1 >= i:
			lo = i
		default:
			return
		}
	}
}
