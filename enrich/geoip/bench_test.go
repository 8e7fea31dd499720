package geoip

import (
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/flowguard/flowguard/enrich/geoip/geoiptest"
	"github.com/flowguard/flowguard/flow"
)

// BenchmarkEnrichCached is the cache's hit path: 2k addresses, one flow an
// op (two lookups).
func BenchmarkEnrichCached(b *testing.B) {
	city := filepath.Join(b.TempDir(), "city.mmdb")
	if err := geoiptest.Write(city, geoiptest.TypeCity, geoiptest.Demo); err != nil {
		b.Fatal(err)
	}
	db, err := Open([]string{city}, nil)
	if err != nil {
		b.Fatal(err)
	}
	e := db.NewEnricher(DefaultCacheSize)
	addrs := make([]netip.Addr, 2048)
	for i := range addrs {
		if i%2 == 0 {
			addrs[i] = netip.AddrFrom4([4]byte{127, 0, byte(i >> 8), byte(i)})
		} else {
			addrs[i] = netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
		}
		e.Lookup(addrs[i])
	}
	var f flow.Flow
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f.SrcAddr, f.DstAddr = addrs[i&2047], addrs[(i*7+1)&2047]
		e.Enrich(&f)
	}
}

// BenchmarkLookupUncached is a miss: both databases decoded.
func BenchmarkLookupUncached(b *testing.B) {
	city, asn, err := geoiptest.WriteDemo(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	db, err := Open([]string{city, asn}, nil)
	if err != nil {
		b.Fatal(err)
	}
	a := netip.MustParseAddr("192.0.2.1")
	b.ReportAllocs()
	for b.Loop() {
		db.Lookup(a)
	}
}
