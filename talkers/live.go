package talkers

import "github.com/flowguard/flowguard/flow"

// LiveFactor is how many times more keys the current bucket's tables hold
// than a closed bucket's: the current bucket takes every flow, so its
// tables are made large enough that ordinary traffic rarely fills them,
// and a prune, when keys that keep coming new fill one, frees seven
// eighths of it.
const LiveFactor = 8

// live is the current bucket. Its tables hold LiveFactor times the
// capacity; a full one keeps what a closed bucket keeps (half the
// capacity by bytes, half by packets), and so does close, into the closed
// bucket's tables, when its time is over.
type live struct {
	start  int64 // unix seconds; 0: none yet
	tables [dimensions]*table
	keep   int // keys a closed bucket keeps by each ranking
}

func newLive(capacity int, seed func() uint64) *live {
	capacity = max(capacity, 8) // a closed bucket's keys, at least 8 as a table's
	l := &live{keep: capacity / 2}
	for d := range dimensions {
		l.tables[d] = newTable(LiveFactor*capacity, l.keep, seed())
	}
	return l
}

func (l *live) reset() {
	for _, tb := range l.tables {
		tb.reset()
	}
}

// close keeps the heaviest keys of each dimension in to (each with room
// for 2*keep) and returns the number of keys left out.
func (l *live) close(to *[dimensions][]entry) (forgotten uint64) {
	for d, tb := range l.tables {
		var n uint64
		to[d], n = tb.copyTop(to[d], l.keep)
		forgotten += n
	}
	return forgotten
}

// count counts one flow.
func (l *live) count(f *flow.Flow) {
	if f.SrcAddr.IsValid() {
		l.tables[Sources].add(addrKey(f.SrcAddr), f.Bytes, f.Packets)
	}
	if f.DstAddr.IsValid() {
		l.tables[Destinations].add(addrKey(f.DstAddr), f.Bytes, f.Packets)
	}
	l.tables[Ports].add(key{lo: uint64(f.Proto)<<16 | uint64(f.DstPort)}, f.Bytes, f.Packets)
	src, dst := f.SrcASN, f.DstASN
	if src == 0 {
		src = f.SrcAS
	}
	if dst == 0 {
		dst = f.DstAS
	}
	if src != 0 {
		l.tables[ASNs].add(key{lo: uint64(src)}, f.Bytes, f.Packets)
	}
	if dst != 0 && dst != src {
		l.tables[ASNs].add(key{lo: uint64(dst)}, f.Bytes, f.Packets)
	}
}
