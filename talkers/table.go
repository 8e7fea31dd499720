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
// probing, at most half full). When it is full, prune keeps the keep keys
// with the most bytes and the keep with the most packets and forgets the
// rest, so a heavy talker stays however many light ones pass (a key that
// returns counts again from zero: totals are lower bounds). Nothing
// allocates after newTable; a flow costs one probe.
type table struct {
	ents   []entry
	slots  []int32  // entry index + 1; 0: empty
	weight []uint64 // scratch of cut: each entry's weight in a ranking
	mask   uint64
	seed   uint64
	seed2  uint64
	n      int
	keep   int // keys a prune keeps by each ranking, less than half of cap
	// pruned counts keys forgotten to make room.
	pruned uint64
}

// newTable returns a table of capacity keys (at least 8) whose prunes keep
// keep keys by each ranking (0: a quarter of the capacity).
func newTable(capacity, keep int, seed uint64) *table {
	capacity = max(capacity, 8)
	if keep <= 0 || 2*keep >= capacity {
		keep = capacity / 4
	}
	size := 1 << bits.Len(uint(2*capacity-1)) // a power of two >= 2*capacity
	return &table{
		ents: make([]entry, capacity), slots: make([]int32, size), weight: make([]uint64, capacity),
		mask: uint64(size - 1), seed: seed, seed2: bits.RotateLeft64(seed, 32) * 0xbf58476d1ce4e5b9, keep: keep,
	}
}

func (t *table) reset() {
	if t.n > 0 {
		clear(t.slots)
		t.n = 0
	}
}

// hash mixes k with the table's secret seeds: the two halves of each
// 128-bit product folded together, twice, so that every bit of the key
// reaches the low bits the index takes, and a sender cannot choose keys
// that collide without knowing the seeds.
func (t *table) hash(k key) uint64 {
	hi, lo := bits.Mul64(k.hi^t.seed, k.lo^t.seed2)
	hi, lo = bits.Mul64(hi^lo^0x9e3779b97f4a7c15, t.seed|1)
	return hi ^ lo
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

// prune keeps the keep heaviest keys by bytes and the keep by packets.
func (t *table) prune() {
	c := t.cut(t.keep)
	ents, m := t.ents[:t.n], 0
	for i := range ents {
		if c.keeps(&ents[i].counts) {
			ents[m] = ents[i]
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

// copyTop copies into dst the keys a prune keeping keep by each ranking
// would keep (all of them when there are no more than 2*keep) and returns
// them; dst must have room for 2*keep. It returns the number of keys left
// out as well.
func (t *table) copyTop(dst []entry, keep int) (kept []entry, forgotten uint64) {
	dst = dst[:2*keep]
	c, m := t.cut(keep), 0
	for i := range t.ents[:t.n] {
		if e := &t.ents[i]; c.keeps(&e.counts) {
			dst[m] = *e
			m++
		}
	}
	return dst[:m], uint64(t.n - m)
}

// cut tells which keys are among the keep heaviest by bytes or by packets:
// those above the lightest weight of the keep, and of those equal to it,
// as many as the keep have (the first ones met).
type cut struct {
	all              bool // no more than 2*keep keys: all of them
	bytes, packets   uint64
	tieBytes, tiePkt int
}

func (c *cut) keeps(e *counts) bool {
	switch {
	case c.all, e.bytes > c.bytes, e.packets > c.packets:
		return true
	case e.bytes == c.bytes && c.tieBytes > 0:
		c.tieBytes--
		return true
	case e.packets == c.packets && c.tiePkt > 0:
		c.tiePkt--
		return true
	}
	return false
}

// cut finds the lightest weights of the keep heaviest keys by each ranking
// (in the scratch; the entries are left as they are).
func (t *table) cut(keep int) cut {
	if t.n <= 2*keep {
		return cut{all: true}
	}
	var c cut
	ents := t.ents[:t.n]
	w := t.weight[:len(ents)]
	for i := range ents {
		w[i] = ents[i].bytes
	}
	c.bytes, c.tieBytes = kth(w, keep)
	for i := range ents {
		w[i] = ents[i].packets
	}
	c.packets, c.tiePkt = kth(w, keep)
	return c
}

// kth returns the k-th largest of w and how many of the k largest equal it,
// reordering w.
func kth(w []uint64, k int) (v uint64, ties int) {
	selectTop(w, k)
	v = w[0]
	for _, x := range w[:k] {
		v = min(v, x)
	}
	for _, x := range w[:k] {
		if x == v {
			ties++
		}
	}
	return v, ties
}

// selectTop reorders w so that its first k are the k largest (quickselect,
// Hoare partition; no allocation).
func selectTop(w []uint64, k int) {
	lo, hi := 0, len(w)-1
	for lo < hi {
		p := w[lo+(hi-lo)/2]
		i, j := lo, hi
		for i <= j {
			for w[i] > p {
				i++
			}
			for w[j] < p {
				j--
			}
			if i <= j {
				w[i], w[j] = w[j], w[i]
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
