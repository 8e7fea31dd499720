package addrtable

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

func TestTableSmall(t *testing.T) {
	var b Builder
	for _, e := range []struct {
		p string
		v uint32
	}{
		{"10.0.0.0/8", 1},
		{"10.1.0.0/16", 2},
		{"10.1.2.0/24", 3},
		{"0.0.0.0/0", 4},
		{"255.255.255.255/32", 5},
		{"fc00::/7", 6},
		{"fd00::1/128", 7},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120", 8},
		{"::ffff:192.0.2.0/120", 9},
	} {
		b.Add(netip.MustParsePrefix(e.p), uint64(e.v))
	}
	tab := b.Build(Innermost, nil)
	for addr, want := range map[string]uint32{
		"10.0.0.1":        1,
		"10.1.0.1":        2,
		"10.1.2.3":        3,
		"10.1.3.0":        2,
		"10.2.0.0":        1,
		"11.0.0.0":        4,
		"0.0.0.0":         4,
		"255.255.255.254": 4,
		"255.255.255.255": 5,
		"::ffff:10.1.2.3": 3,
		"192.0.2.7":       9,
		"::":              0,
		"fd00::1":         7,
		"fd00::2":         6,
		"fe00::":          0,
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff": 8,
	} {
		if got := tab.Lookup(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Lookup(%s) = %d, want %d", addr, got, want)
		}
	}
	if got := tab.Lookup(netip.Addr{}); got != 0 {
		t.Errorf("Lookup(invalid) = %d", got)
	}
	var zero Table
	if got := zero.Lookup(netip.MustParseAddr("1.2.3.4")); got != 0 {
		t.Errorf("zero table Lookup = %d", got)
	}
}

// Random nested prefixes against a brute force scan, for both combines.
func TestTableMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	type entry struct {
		p netip.Prefix
		v uint64
	}
	randAddr := func(v6 bool) netip.Addr {
		if v6 {
			var b [16]byte
			b[0] = 0x20
			b[1] = byte(r.IntN(4))
			for i := 2; i < 16; i++ {
				b[i] = byte(r.IntN(4))
			}
			return netip.AddrFrom16(b)
		}
		return netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.IntN(4)), byte(r.IntN(4))})
	}
	for round := 0; round < 50; round++ {
		var entries []entry
		var b Builder
		for i := 0; i < 40; i++ {
			v6 := r.IntN(2) == 0
			a := randAddr(v6)
			bits := 8 + r.IntN(25)
			if v6 {
				bits = 8 + r.IntN(121)
			}
			e := entry{netip.PrefixFrom(a, bits).Masked(), uint64(1) << r.IntN(8)}
			entries = append(entries, e)
			b.Add(e.p, e.v)
		}
		lpm, or := b.Build(Innermost, nil), b.Build(Or, nil)
		for i := 0; i < 2000; i++ {
			a := randAddr(r.IntN(2) == 0)
			var wantOr uint64
			wantLPM, best := uint64(0), -1
			for _, e := range entries {
				if e.p.Contains(a) {
					wantOr |= e.v
					if e.p.Bits() >= best {
						wantLPM, best = e.v, e.p.Bits()
					}
				}
			}
			if got := uint64(or.Lookup(a)); got != wantOr {
				t.Fatalf("round %d: Or Lookup(%s) = %b, want %b", round, a, got, wantOr)
			}
			if got := uint64(lpm.Lookup(a)); got != wantLPM {
				t.Fatalf("round %d: Innermost Lookup(%s) = %d, want %d", round, a, got, wantLPM)
			}
		}
	}
}

func TestLookupAllocs(t *testing.T) {
	var b Builder
	b.Add(netip.MustParsePrefix("10.0.0.0/8"), 1)
	b.Add(netip.MustParsePrefix("2001:db8::/32"), 2)
	tab := b.Build(Innermost, nil)
	a4, a6 := netip.MustParseAddr("10.1.1.1"), netip.MustParseAddr("2001:db8::1")
	if n := testing.AllocsPerRun(100, func() { tab.Lookup(a4); tab.Lookup(a6) }); n != 0 {
		t.Errorf("Lookup allocates %v times", n)
	}
}

func BenchmarkLookup100k(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	var bld Builder
	for i := 0; i < 100000; i++ {
		a := netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), 0})
		bld.Add(netip.PrefixFrom(a, 16+r.IntN(9)).Masked(), 1)
	}
	tab := bld.Build(Or, nil)
	addrs := make([]netip.Addr, 1024)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		tab.Lookup(addrs[i&1023])
	}
}
