package talkers

import "github.com/flowguard/flowguard/flow"

// LiveFactor is how many times more keys the current bucket's tables hold
// than a closed bucket's: the current bucket takes every flow, so its
// tables are made large enough that ordinary traffic rarely fills them.
const LiveFactor = 8

// portCounters: TCP and UDP destination ports are counted in place, one
// counter per port and protocol, with no hashing and no pruning.
const portCounters = 2 << 16

// live is the current bucket. It counts into tables of LiveFactor times
// the capacity and, for the ports of TCP and UDP, into plain counters;
// when its time is over, compact keeps its heaviest keys in the closed
// bucket's small tables.
type live struct {
	start  int64 // unix seconds; 0: none yet
	tables [dimensions]*table
	// ports counts TCP (the first 65536) and UDP destination ports; the
	// other protocols go to tables[Ports].
	ports []counts
	// byBytes and byPackets are compact's scratch.
	byBytes, byPackets minHeap
}

func newLive(capacity int, seed func() uint64) *live {
	l := &live{ports: make([]counts, portCounters)}
	for d := range dimensions {
		l.tables[d] = newTable(LiveFactor*capacity, seed())
	}
	half := max(capacity, 8) / 2 // of a closed bucket's table (see newTable)
	l.byBytes, l.byPackets = make(minHeap, 0, half), make(minHeap, 0, half)
	return l
}

// portIndex is where proto's port p is counted in ports, or -1.
func portIndex(proto uint8, p uint16) int {
	switch proto {
	case 6:
		return int(p)
	case 17:
		return 1<<16 | int(p)
	}
	return -1
}

// portKey is the Ports key of ports[i].
func portKey(i int) key {
	proto := uint64(6)
	if i >= 1<<16 {
		proto = 17
	}
	return key{lo: proto<<16 | uint64(i&0xffff)}
}

func (l *live) reset() {
	for _, tb := range l.tables {
		tb.reset()
	}
	clear(l.ports)
}

// count counts one flow.
func (l *live) count(f *flow.Flow) {
	if f.SrcAddr.IsValid() {
		l.tables[Sources].add(addrKey(f.SrcAddr), f.Bytes, f.Packets)
	}
	if f.DstAddr.IsValid() {
		l.tables[Destinations].add(addrKey(f.DstAddr), f.Bytes, f.Packets)
	}
	if i := portIndex(f.Proto, f.DstPort); i >= 0 {
		c := &l.ports[i]
		c.bytes += f.Bytes
		c.packets += f.Packets
		c.flows++
	} else {
		l.tables[Ports].add(key{lo: uint64(f.Proto)<<16 | uint64(f.DstPort)}, f.Bytes, f.Packets)
	}
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

// merge adds c to key k of dimension d.
func (l *live) merge(d Dimension, k key, c counts) {
	if d == Ports && k.hi == 0 && k.lo>>24 == 0 {
		if i := portIndex(uint8(k.lo>>16), uint16(k.lo)); i >= 0 {
			p := &l.ports[i]
			p.bytes += c.bytes
			p.packets += c.packets
			p.flows += c.flows
			return
		}
	}
	l.tables[d].merge(k, c)
}

// each calls fn with every key of dimension d and its counts.
func (l *live) each(d Dimension, fn func(key, *counts)) {
	tb := l.tables[d]
	for i := range tb.ents[:tb.n] {
		fn(tb.ents[i].k, &tb.ents[i].counts)
	}
	if d != Ports {
		return
	}
	for i := range l.ports {
		if l.ports[i].flows != 0 {
			fn(portKey(i), &l.ports[i])
		}
	}
}

// compact resets dst and fills it with dimension d's heaviest keys: all of
// them if they fit, else the half of dst's capacity with the most bytes and
// the half with the most packets (ties broken by order). It returns the
// number of keys left out.
func (l *live) compact(d Dimension, dst *table) (forgotten uint64) {
	dst.reset()
	l.byBytes, l.byPackets = l.byBytes[:0], l.byPackets[:0]
	n := 0
	l.each(d, func(_ key, c *counts) {
		n++
		l.byBytes.offer(c.bytes)
		l.byPackets.offer(c.packets)
	})
	// When they do not fit, the heaps hold the heaviest weights (they are
	// full: n > len(dst.ents) >= 2*cap); thr is the lightest of them, and
	// ties take what room is left after the keys above it.
	fits := n <= len(dst.ents)
	var thrB, thrP uint64
	var tieB, tieP int
	if !fits {
		thrB, thrP = l.byBytes[0], l.byPackets[0]
		tieB, tieP = cap(l.byBytes)-l.byBytes.above(thrB), cap(l.byPackets)-l.byPackets.above(thrP)
	}
	l.each(d, func(k key, c *counts) {
		switch {
		case fits, c.bytes > thrB, c.packets > thrP:
		case c.bytes == thrB && tieB > 0:
			tieB--
		case c.packets == thrP && tieP > 0:
			tieP--
		default:
			return
		}
		dst.merge(k, *c)
	})
	return uint64(n - dst.n)
}

// minHeap holds the cap largest values offered, the least first.
type minHeap []uint64

func (h *minHeap) offer(v uint64) {
	s := *h
	if len(s) < cap(s) {
		s = append(s, v)
		for i := len(s) - 1; i > 0; {
			p := (i - 1) / 2
			if s[p] <= s[i] {
				break
			}
			s[p], s[i] = s[i], s[p]
			i = p
		}
		*h = s
		return
	}
	if len(s) == 0 || v <= s[0] {
		return
	}
	s[0] = v
	for i := 0; ; {
		c := 2*i + 1
		if c >= len(s) {
			break
		}
		if c+1 < len(s) && s[c+1] < s[c] {
			c++
		}
		if s[i] <= s[c] {
			break
		}
		s[i], s[c] = s[c], s[i]
		i = c
	}
}

// above is how many values held exceed v.
func (h minHeap) above(v uint64) int {
	n := 0
	for _, x := range h {
		if x > v {
			n++
		}
	}
	return n
}
