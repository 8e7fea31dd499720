package rediswindow

import (
	"bytes"
	"hash/maphash"
)

// batchSeed hashes group keys in batches' indexes. Hashes never leave
// the process.
var batchSeed = maphash.MakeSeed()

// batch is the deltas one window gathered between two flushes, per group
// and bucket, already aggregated: a group's updates to one bucket are one
// sum, or the bucket's items new to it. Groups sit in a dense slice found
// through an open-addressing index on the key's hash, their keys in one
// arena, so a batch that is recycled from flush to flush allocates nothing
// once it has grown to the groups of an interval.
type batch struct {
	clock   int64   // the window's clock when last written
	slots   []int32 // open addressing, linear probing: group index+1, 0 empty
	groups  []group // [:n] in use; the rest keep their slices for reuse
	n       int
	keys    []byte   // arena of the groups' keys
	last    int32    // the latest group written, or -1: flows of a group come in runs
	entries int64    // groups and items: what MaxPending bounds
	updates uint64   // updates recorded
	held    uint64   // updates of groups kept local (below their share)
	totals  []seqSum // Top: per bucket, the sum of every update, sent or held
}

// group is one key's deltas: per bucket, sums (Sum, Top) or items
// (Distinct).
type group struct {
	hash   uint64
	off    int32 // key at keys[off:off+klen]
	klen   int32
	newest int64 // newest bucket written: a group with nothing live is not sent
	sums   []seqSum
	items  []seqItems
}

type seqSum struct {
	seq int64
	v   float64
}

type seqItems struct {
	seq   int64
	items []uint64
}

func newBatch() *batch { return &batch{last: -1} }

// key returns group i's key, valid until the batch is reset.
func (b *batch) key(i int32) []byte {
	g := &b.groups[i]
	return b.keys[g.off : g.off+g.klen : g.off+g.klen]
}

// find returns key's group index, or -1, using the run of the latest
// group first.
func (b *batch) find(key []byte) (int32, uint64) {
	if b.last >= 0 && bytes.Equal(b.key(b.last), key) {
		return b.last, b.groups[b.last].hash
	}
	h := maphash.Bytes(batchSeed, key)
	if b.n == 0 {
		return -1, h
	}
	mask := uint64(len(b.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := b.slots[i]
		if s == 0 {
			return -1, h
		}
		if g := &b.groups[s-1]; g.hash == h && bytes.Equal(b.key(s-1), key) {
			return s - 1, h
		}
	}
}

// add appends a group for key, which find did not find, with hash h.
func (b *batch) add(key []byte, h uint64, newest int64) int32 {
	if (b.n+1)*2 > len(b.slots) {
		b.rehash(max(64, 2*len(b.slots)))
	}
	i := int32(b.n)
	if b.n == len(b.groups) {
		b.groups = append(b.groups, group{})
	}
	b.n++
	g := &b.groups[i]
	g.hash, g.off, g.klen, g.newest = h, int32(len(b.keys)), int32(len(key)), newest
	g.sums = g.sums[:0]
	g.items = g.items[:0]
	b.keys = append(b.keys, key...)
	b.place(i)
	return i
}

func (b *batch) place(i int32) {
	mask := uint64(len(b.slots) - 1)
	j := b.groups[i].hash & mask
	for b.slots[j] != 0 {
		j = (j + 1) & mask
	}
	b.slots[j] = i + 1
}

func (b *batch) rehash(size int) {
	b.slots = make([]int32, size)
	for i := range int32(b.n) {
		b.place(i)
	}
}

// reset empties the batch, keeping its memory; an index grown for a burst
// far larger than what it now holds is let go.
func (b *batch) reset() {
	if len(b.slots) > 64 && b.n*16 < len(b.slots) {
		b.slots = nil
	} else {
		clear(b.slots)
	}
	b.n = 0
	b.keys = b.keys[:0]
	b.last = -1
	b.entries, b.updates, b.held, b.clock = 0, 0, 0, 0
	b.totals = b.totals[:0]
}

// addSum adds v to bucket seq; buckets older than lo, dead, are dropped
// when a new one is opened, so a group holds at most a window of them.
func (g *group) addSum(seq, lo int64, v float64) { g.sums = addSeqSum(g.sums, seq, lo, v) }

// addTotal adds v to the Top total of bucket seq, dropping dead buckets
// (before lo) when a new one opens.
func (b *batch) addTotal(seq, lo int64, v float64) { b.totals = addSeqSum(b.totals, seq, lo, v) }

// addSeqSum adds v to bucket seq of sums; buckets older than lo are
// dropped when a new one opens, in place.
func addSeqSum(sums []seqSum, seq, lo int64, v float64) []seqSum {
	for i := len(sums) - 1; i >= 0; i-- {
		if sums[i].seq == seq {
			sums[i].v += v
			return sums
		}
	}
	live := sums[:0]
	for _, d := range sums {
		if d.seq >= lo {
			live = append(live, d)
		}
	}
	return append(live, seqSum{seq, v})
}

func (g *group) itemsAt(seq int64) *seqItems {
	for i := len(g.items) - 1; i >= 0; i-- {
		if g.items[i].seq == seq {
			return &g.items[i]
		}
	}
	return nil
}

// addItems opens bucket seq, dropping the dead buckets (before lo) and
// returning how many items went with them.
func (g *group) addItems(seq, lo int64) (*seqItems, int) {
	dropped, n := 0, 0
	for i := range g.items {
		if g.items[i].seq < lo {
			dropped += len(g.items[i].items)
			continue
		}
		g.items[n], g.items[i] = g.items[i], g.items[n] // keep both slices' memory
		n++
	}
	g.items = g.items[:n]
	if n < cap(g.items) {
		g.items = g.items[:n+1]
		e := &g.items[n]
		e.seq, e.items = seq, e.items[:0]
		return e, dropped
	}
	g.items = append(g.items, seqItems{seq: seq})
	return &g.items[n], dropped
}
