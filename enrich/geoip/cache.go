package geoip

import (
	"encoding/binary"
	"math/bits"
	"net/netip"

	"github.com/flowguard/flowguard/flow"
)

// Enricher fills the GeoIP fields of flows through a bounded cache in
// front of a DB. The cache is two-way set associative: an address has two
// slots it may live in, the least recently used of the two makes room, and
// a hit costs a hash, two compares and no allocation. Entries are small:
// they point to answers interned by value, which many addresses share
// (same city, same AS). A database reload invalidates every
// entry at once (entries carry the generation of the databases that
// answered).
//
// An Enricher is not safe for concurrent use: the engine owns one. Other
// goroutines use DB.Lookup, or an Enricher of their own.
type Enricher struct {
	db     *DB
	sets   []cacheSet
	shift  uint8
	hits   uint64 // not yet added to db.cacheHits
	intern map[Info]*Info
}

type cacheSet struct {
	e [2]cacheEntry
}

type cacheEntry struct {
	addr netip.Addr
	info *Info
	gen  uint32 // 0: empty
	lru  uint32 // in e[0] only: the way to evict next
}

// hitBatch is how many hits an Enricher counts before it publishes them:
// an atomic add per flow would cost more than the rest of a hit.
const hitBatch = 1024

// NewEnricher returns an Enricher whose cache holds about size addresses
// (rounded up to a power of two, at least 2).
func (db *DB) NewEnricher(size int) *Enricher {
	n := 1 // sets, a power of two
	for n*2 < size {
		n *= 2
	}
	return &Enricher{
		db:     db,
		sets:   make([]cacheSet, n),
		shift:  uint8(64 - bits.TrailingZeros(uint(n))),
		intern: map[Info]*Info{},
	}
}

// Enrich sets src_country, src_city, src_asn, src_as_org and their dst_
// twins. Fields of an address the databases do not know are cleared.
func (e *Enricher) Enrich(f *flow.Flow) {
	st := e.db.state.Load()
	if f.SrcAddr.IsValid() {
		i := e.get(st, f.SrcAddr)
		f.SrcCountry, f.SrcCity, f.SrcASN, f.SrcASOrg = i.Country, i.City, i.ASN, i.ASOrg
	}
	if f.DstAddr.IsValid() {
		i := e.get(st, f.DstAddr)
		f.DstCountry, f.DstCity, f.DstASN, f.DstASOrg = i.Country, i.City, i.ASN, i.ASOrg
	}
}

// Lookup is DB.Lookup through the cache.
func (e *Enricher) Lookup(a netip.Addr) Info {
	if !a.IsValid() {
		return Info{}
	}
	return *e.get(e.db.state.Load(), a)
}

func (e *Enricher) get(st *state, a netip.Addr) *Info {
	s := &e.sets[e.index(a)]
	switch {
	case s.e[0].addr == a && s.e[0].gen == st.gen:
		s.e[0].lru = 1
		e.hit()
		return s.e[0].info
	case s.e[1].addr == a && s.e[1].gen == st.gen:
		s.e[0].lru = 0
		e.hit()
		return s.e[1].info
	}
	e.Flush()
	e.db.cacheMisses.Add(1)
	info := e.internInfo(e.db.lookup(st, a))
	w := s.e[0].lru
	s.e[w] = cacheEntry{addr: a, gen: st.gen, info: info}
	s.e[0].lru = w ^ 1
	return info
}

// index spreads addresses over the sets: a multiplicative hash, whose top
// bits are the best mixed. IPv4 takes the short way: As16 costs several
// times As4.
func (e *Enricher) index(a netip.Addr) uint64 {
	var k uint64
	if a.Is4() {
		b := a.As4()
		k = uint64(binary.BigEndian.Uint32(b[:]))
	} else {
		b := a.As16()
		k = binary.BigEndian.Uint64(b[8:]) ^ bits.RotateLeft64(binary.BigEndian.Uint64(b[:8]), 29)
	}
	return (k * 0x9e3779b97f4a7c15) >> e.shift
}

// internInfo shares one copy of each answer. The table is bounded: past
// four answers a cache entry it starts over (entries keep their copies).
func (e *Enricher) internInfo(i Info) *Info {
	if p, ok := e.intern[i]; ok {
		return p
	}
	if len(e.intern) >= 8*len(e.sets) {
		clear(e.intern)
	}
	p := &i
	e.intern[i] = p
	return p
}

func (e *Enricher) hit() {
	if e.hits++; e.hits == hitBatch {
		e.Flush()
	}
}

// Flush publishes the cache hits counted since the last flush to
// DB.Stats. Hits are published every 1024 and at each miss anyway; call
// Flush for exact counts (tests, a final report).
func (e *Enricher) Flush() {
	if e.hits > 0 {
		e.db.cacheHits.Add(e.hits)
		e.hits = 0
	}
}
