package meter

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// The table agrees with a Go map under random inserts and deletes, through
// growth and long probe runs (a tiny key space forces collisions).
func TestTableMatchesMap(t *testing.T) {
	tb := newTable(1)
	var sl slab
	want := map[key]int32{}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		k := makeKey(&Packet{Src: netip.AddrFrom4([4]byte{10, 0, 0, byte(r.IntN(40))}), Dst: a2, DstPort: uint16(r.IntN(50))})
		h := tb.hash(&k)
		pos, found := tb.find(&sl, &k, h)
		i, ok := want[k]
		if found != ok {
			t.Fatalf("find(%v) = %v, map says %v", k, found, ok)
		}
		if found {
			if got := int32(uint32(tb.slots[pos]) - 1); got != i {
				t.Fatalf("find(%v) = index %d, want %d", k, got, i)
			}
			tb.remove(pos)
			delete(want, k)
			continue
		}
		i = sl.alloc()
		sl.at(i).key = k
		tb.insert(pos, h, i)
		want[k] = i
		if tb.n != len(want) {
			t.Fatalf("n = %d, want %d", tb.n, len(want))
		}
	}
}
