// Package addrtable maps addresses to values through CIDR prefixes, with
// lookups that neither allocate nor chase pointers.
//
// Prefixes are flattened at build time into sorted, disjoint ranges that
// cover the whole address space: a lookup is one binary search over a flat
// array of range starts (uint32 for IPv4, two uint64 for IPv6). Since CIDR
// prefixes are either nested or disjoint, the value of each range is found
// by folding the values of the prefixes that hold it, outermost first, with
// a caller's combine function: "innermost wins" gives longest prefix match,
// "or" gives the set of lists that hold an address.
package addrtable

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"slices"
)

// Combine folds the value of a prefix (inner) into the value of the
// prefixes that contain it (outer; 0 when none does).
type Combine func(outer, inner uint64) uint64

// Innermost is longest prefix match: the most specific prefix's value.
func Innermost(_, inner uint64) uint64 { return inner }

// Or unions bit sets: a range holds every bit of every prefix over it.
func Or(outer, inner uint64) uint64 { return outer | inner }

// Builder collects prefixes for a Table. The zero value is ready to use.
type Builder struct {
	v4 []span[k32]
	v6 []span[k128]
}

// Add maps every address of p to v (combined with the prefixes around it).
// IPv4-mapped IPv6 prefixes (::ffff:a.b.c.d/96+n) count as IPv4.
func (b *Builder) Add(p netip.Prefix, v uint64) {
	p = p.Masked()
	a, bits := p.Addr(), p.Bits()
	if a.Is4In6() && bits >= 96 {
		a, bits = a.Unmap(), bits-96
	}
	if a.Is4() {
		start := binary.BigEndian.Uint32(a.AsSlice())
		end := start
		if bits < 32 {
			end |= uint32(1)<<(32-bits) - 1
		}
		b.v4 = append(b.v4, span[k32]{k32(start), k32(end), v, len(b.v4)})
		return
	}
	start := k128from(a)
	end := start
	switch {
	case bits <= 64:
		end.lo = ^uint64(0)
		if bits < 64 {
			end.hi |= uint64(1)<<(64-bits) - 1
		}
	default:
		if bits < 128 {
			end.lo |= uint64(1)<<(128-bits) - 1
		}
	}
	b.v6 = append(b.v6, span[k128]{start, end, v, len(b.v6)})
}

// Len is the number of prefixes added.
func (b *Builder) Len() int { return len(b.v4) + len(b.v6) }

// Build flattens the prefixes into a Table. Addresses under no prefix map
// to 0. final maps each combined value to what the table stores, once per
// distinct value (e.g. a bit set to the index of a precomputed answer); nil
// keeps the value, which must then fit in 32 bits.
func (b *Builder) Build(combine Combine, final func(uint64) uint32) *Table {
	if final == nil {
		final = func(v uint64) uint32 { return uint32(v) }
	}
	memo := map[uint64]uint32{0: final(0)}
	narrow := func(vs []uint64) []uint32 {
		out := make([]uint32, len(vs))
		for i, v := range vs {
			f, ok := memo[v]
			if !ok {
				f = final(v)
				memo[v] = f
			}
			out[i] = f
		}
		return out
	}
	t := &Table{}
	var v4, v6 []uint64
	t.s4, v4 = flatten(b.v4, combine)
	t.s6, v6 = flatten(b.v6, combine)
	t.v4, t.v6 = narrow(v4), narrow(v6)
	t.index4()
	return t
}

// Table maps addresses to values. It is immutable and safe for concurrent
// use.
type Table struct {
	s4 []k32
	v4 []uint32
	// idx4 narrows IPv4 searches: the ranges starting in bucket b (the top
	// bits of the start, shift4 bits down) are s4[idx4[b]:idx4[b+1]], so
	// a lookup binary-searches a bucket of a few ranges instead of the
	// whole table.
	idx4   []uint32
	shift4 uint8
	s6     []k128
	v6     []uint32
}

// Lookup returns the value of the range holding a (0 for an invalid
// address). IPv4-mapped IPv6 addresses are looked up as IPv4.
func (t *Table) Lookup(a netip.Addr) uint32 {
	if a.Is4In6() {
		a = a.Unmap()
	}
	if a.Is4() {
		b := a.As4()
		x := k32(binary.BigEndian.Uint32(b[:]))
		if len(t.idx4) == 0 {
			return 0
		}
		bk := uint32(x) >> t.shift4
		lo, hi := int(t.idx4[bk]), int(t.idx4[bk+1])
		// The range holding x starts in x's bucket or is the last one
		// before it; s[0] is 0, so lo never goes below 0 for bucket 0.
		if lo > 0 {
			lo--
		}
		s := t.s4[:hi]
		for hi-lo > 1 { // s[lo] <= x < s[hi]
			mid := int(uint(lo+hi) >> 1)
			if s[mid] <= x {
				lo = mid
			} else {
				hi = mid
			}
		}
		return t.v4[lo]
	}
	if !a.Is6() {
		return 0
	}
	x := k128from(a)
	s := t.s6
	if len(s) == 0 {
		return 0
	}
	lo, hi := 0, len(s)
	for hi-lo > 1 {
		mid := int(uint(lo+hi) >> 1)
		if m := s[mid]; m.hi < x.hi || m.hi == x.hi && m.lo <= x.lo {
			lo = mid
		} else {
			hi = mid
		}
	}
	return t.v6[lo]
}

// index4 builds idx4 with about one bucket per two ranges (at most 2^16).
func (t *Table) index4() {
	nb := 1
	for nb < 1<<16 && nb*2 < len(t.s4) {
		nb *= 2
	}
	shift := uint8(32 - bits.TrailingZeros(uint(nb)))
	t.idx4, t.shift4 = make([]uint32, nb+1), shift
	i := 0
	for bk := range nb + 1 {
		for i < len(t.s4) && uint64(t.s4[i])>>shift < uint64(bk) {
			i++
		}
		t.idx4[bk] = uint32(i)
	}
}

// Ranges is the number of flat ranges (IPv4 and IPv6), a measure of size.
func (t *Table) Ranges() int { return len(t.s4) + len(t.s6) }

type key[K any] interface {
	comparable
	less(K) bool
	isMax() bool
	next() K
}

type k32 uint32

func (a k32) less(b k32) bool { return a < b }
func (a k32) isMax() bool     { return a == ^k32(0) }
func (a k32) next() k32       { return a + 1 }

type k128 struct{ hi, lo uint64 }

func k128from(a netip.Addr) k128 {
	b := a.As16()
	return k128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func (a k128) less(b k128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }
func (a k128) isMax() bool      { return a.hi == ^uint64(0) && a.lo == ^uint64(0) }
func (a k128) next() k128 {
	if a.lo == ^uint64(0) {
		return k128{a.hi + 1, 0}
	}
	return k128{a.hi, a.lo + 1}
}

// span is one prefix as an inclusive range; seq keeps insertion order for
// identical prefixes.
type span[K key[K]] struct {
	start, end K
	val        uint64
	seq        int
}

func flatten[K key[K]](spans []span[K], combine Combine) ([]K, []uint64) {
	spans = slices.Clone(spans)
	// Outer before inner: by start, then the wider (later end) first.
	slices.SortFunc(spans, func(a, b span[K]) int {
		switch {
		case a.start.less(b.start):
			return -1
		case b.start.less(a.start):
			return 1
		case b.end.less(a.end):
			return -1
		case a.end.less(b.end):
			return 1
		}
		return a.seq - b.seq
	})
	var zero K
	starts, vals := []K{zero}, []uint64{0}
	// emit says that v holds from at onwards.
	emit := func(at K, v uint64) {
		n := len(starts)
		if starts[n-1] == at {
			vals[n-1] = v
			if n > 1 && vals[n-2] == v {
				starts, vals = starts[:n-1], vals[:n-1]
			}
			return
		}
		if vals[n-1] != v {
			starts, vals = append(starts, at), append(vals, v)
		}
	}
	type open struct {
		end K
		acc uint64
	}
	var stack []open
	top := func() uint64 {
		if len(stack) == 0 {
			return 0
		}
		return stack[len(stack)-1].acc
	}
	closeBefore := func(at K, all bool) {
		for len(stack) > 0 && (all || stack[len(stack)-1].end.less(at)) {
			o := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if !o.end.isMax() {
				emit(o.end.next(), top())
			}
		}
	}
	for _, s := range spans {
		closeBefore(s.start, false)
		acc := combine(top(), s.val)
		emit(s.start, acc)
		stack = append(stack, open{s.end, acc})
	}
	closeBefore(zero, true)
	return slices.Clip(starts), slices.Clip(vals)
}
