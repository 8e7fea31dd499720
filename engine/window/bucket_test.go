package window

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSpanCache checks locate and advance, which cache a span of event
// times, against floorDiv over runs of nearby times, negative ones and
// the ends of int64.
func TestSpanCache(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	for _, g := range []struct {
		size    int64
		buckets int
	}{{60e9, 12}, {10e9, 12}, {7, 3}, {1000, 7}, {5, 1}, {1, 1}, {1e9, 1024}} {
		c := newClock(g.size, g.buckets)
		var s span
		var tc clock = newClock(g.size, g.buckets)
		times := []int64{math.MinInt64, math.MinInt64 + 1, -1 << 62, math.MaxInt64 - 1, math.MaxInt64}
		for range 20000 {
			base := rng.Int64N(1<<40) - 1<<39
			if rng.IntN(10) == 0 {
				base = rng.Int64()
			}
			for range 20 {
				times = append(times, base+rng.Int64N(3*g.size+3)-g.size)
			}
		}
		for _, tm := range times {
			if tm > math.MaxInt64-g.size || tm < math.MinInt64+g.size {
				continue // liveLo itself overflows there
			}
			seq, lo := c.locate(&s, tm)
			if w := floorDiv(tm, c.width); seq != w || s.slot != c.slot(w) {
				t.Fatalf("size %d: locate(%d) seq %d slot %d, want %d %d", g.size, tm, seq, s.slot, w, c.slot(w))
			}
			if w := c.liveLo(tm); lo != w {
				t.Fatalf("size %d: locate(%d) lo %d, want %d", g.size, tm, lo, w)
			}
			// advance: the clock's range at the latest time.
			late := tc.started && tm <= tc.now-tc.size
			got, ok := tc.advance(tm)
			if ok == late {
				t.Fatalf("size %d: advance(%d) ok %v", g.size, tm, ok)
			}
			if ok && got != floorDiv(tm, c.width) {
				t.Fatalf("size %d: advance(%d) = %d, want %d", g.size, tm, got, floorDiv(tm, c.width))
			}
			if tc.hi != floorDiv(tc.now, c.width) || tc.lo != c.liveLo(tc.now) || tc.hiSlot != c.slot(tc.hi) {
				t.Fatalf("size %d: after advance(%d): now %d hi %d lo %d slot %d", g.size, tm, tc.now, tc.hi, tc.lo, tc.hiSlot)
			}
			if ok && tc.seqSlot(got) != c.slot(got) {
				t.Fatalf("size %d: seqSlot(%d) = %d", g.size, got, tc.seqSlot(got))
			}
		}
	}
}
