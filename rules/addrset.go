package rules

import (
	"net/netip"
	"sort"
	"strings"
)

// AddrSet is an immutable set of address ranges built from prefixes (a CIDR
// list). Contains is a binary search over merged ranges (a scan of a few
// IPv4 ones) and does not allocate. IPv4-mapped IPv6 addresses match IPv4 prefixes.
type AddrSet struct {
	prefixes []netip.Prefix
	v4       []range4
	v6       []range6
	// top tells by an IPv4 address's first byte whether it is in the set
	// (in4), not (0), or whether the ranges must say (part4).
	top [256]uint8
}

const (
	in4   = 1
	part4 = 2
)

type range4 struct{ lo, hi uint32 }

type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

type range6 struct{ lo, hi u128 }

// NewAddrSet returns the set of addresses covered by any of prefixes.
// Host bits of a prefix are ignored; invalid prefixes are skipped.
func NewAddrSet(prefixes []netip.Prefix) *AddrSet {
	s := &AddrSet{prefixes: append([]netip.Prefix(nil), prefixes...)}
	for _, p := range prefixes {
		if !p.IsValid() {
			continue
		}
		p = p.Masked()
		a := p.Addr()
		if a.Is4() {
			lo := be32(a.As4())
			hi := lo | uint32(uint64(1)<<(32-p.Bits())-1)
			s.v4 = append(s.v4, range4{lo, hi})
			continue
		}
		lo := to128(a)
		hi := lo
		host := 128 - p.Bits()
		switch {
		case host >= 64:
			hi.lo = ^uint64(0)
			hi.hi |= uint64(1)<<(host-64) - 1
			if host == 128 {
				hi.hi = ^uint64(0)
			}
		default:
			hi.lo |= uint64(1)<<host - 1
		}
		s.v6 = append(s.v6, range6{lo, hi})
	}
	sort.Slice(s.v4, func(i, j int) bool { return s.v4[i].lo < s.v4[j].lo })
	sort.Slice(s.v6, func(i, j int) bool { return s.v6[i].lo.less(s.v6[j].lo) })
	s.v4 = merge4(s.v4)
	s.v6 = merge6(s.v6)
	for _, r := range s.v4 {
		for o := r.lo >> 24; ; o++ {
			if r.lo <= o<<24 && r.hi >= o<<24|0xffffff {
				s.top[o] = in4 // merged ranges do not touch: no other covers o
			} else {
				s.top[o] = part4
			}
			if o == r.hi>>24 {
				break
			}
		}
	}
	return s
}

func merge4(rs []range4) []range4 {
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && (r.lo <= out[n-1].hi || out[n-1].hi != ^uint32(0) && r.lo == out[n-1].hi+1) {
			out[n-1].hi = max(out[n-1].hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

func merge6(rs []range6) []range6 {
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && !out[n-1].hi.less(r.lo) {
			if out[n-1].hi.less(r.hi) {
				out[n-1].hi = r.hi
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

func be32(b [4]byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func to128(a netip.Addr) u128 {
	b := a.As16()
	var v u128
	for i := 0; i < 8; i++ {
		v.hi = v.hi<<8 | uint64(b[i])
		v.lo = v.lo<<8 | uint64(b[i+8])
	}
	return v
}

// Up to smallAddrSet IPv4 ranges, Contains tests them all instead of a
// binary search.
const smallAddrSet = 8

// Contains reports whether a lies in the set.
func (s *AddrSet) Contains(a netip.Addr) bool {
	if s == nil || !a.IsValid() {
		return false
	}
	a = a.Unmap()
	if a.Is4() {
		x := be32(a.As4())
		if t := s.top[x>>24]; t != part4 {
			return t == in4
		}
		rs := s.v4
		if len(rs) <= smallAddrSet {
			// x-r.lo <= r.hi-r.lo (wrapping) iff x is in r: the
			// difference of the two, widened, is negative otherwise.
			// No branch on the address: flows hit or miss at random.
			var in uint64
			for _, r := range rs {
				in |= ^(uint64(r.hi-r.lo) - uint64(x-r.lo)) >> 63
			}
			return in != 0
		}
		lo, hi := 0, len(rs)
		for lo < hi { // first range whose hi >= x
			m := int(uint(lo+hi) >> 1)
			if rs[m].hi < x {
				lo = m + 1
			} else {
				hi = m
			}
		}
		return lo < len(rs) && rs[lo].lo <= x
	}
	x := to128(a)
	rs := s.v6
	lo, hi := 0, len(rs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if rs[m].hi.less(x) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo < len(rs) && !x.less(rs[lo].lo)
}

// Prefixes returns the prefixes the set was built from, in list order.
func (s *AddrSet) Prefixes() []netip.Prefix {
	return append([]netip.Prefix(nil), s.prefixes...)
}

// String lists the set's prefixes, as in "[10.0.0.0/8 192.168.0.0/16]".
func (s *AddrSet) String() string {
	parts := make([]string, len(s.prefixes))
	for i, p := range s.prefixes {
		parts[i] = p.String()
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// prefixContains is in_cidr with the prefix already parsed: it unmaps a
// 4-in-6 address as AddrSet.Contains does.
func prefixContains(p netip.Prefix, a netip.Addr) bool {
	return a.IsValid() && p.Contains(a.Unmap())
}

// addrEqual compares addresses as rules do: an IPv4-mapped IPv6 address
// equals its IPv4 form; an unknown (invalid) address equals nothing.
func addrEqual(a, b netip.Addr) bool {
	return a.IsValid() && b.IsValid() && a.Unmap() == b.Unmap()
}

// parseAddrOrPrefix parses "10.0.0.0/8" or "10.1.2.3" (as a /32). It
// rejects prefixes with host bits set, which are nearly always typos.
func parseAddrOrPrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if m := p.Masked(); m != p {
			return netip.Prefix{}, &hostBitsError{s, m}
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

type hostBitsError struct {
	s      string
	masked netip.Prefix
}

func (e *hostBitsError) Error() string {
	return "prefix " + e.s + " has host bits set (did you mean " + e.masked.String() + "?)"
}
