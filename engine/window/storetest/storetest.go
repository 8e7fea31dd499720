// Package storetest is the conformance suite every window.Store must pass:
// the in-memory store runs it, and so must any shared store (Redis).
//
// The suite pins the semantics that rules depend on (the window package
// doc states them): event time drives the windows; a window slides by
// Size/Buckets wide buckets; a Sum or Distinct key's value is over the
// buckets that overlap the window ending at its latest update (for Sum, an
// update out of order is answered for the window ending at
// min(latest, t+Size-1)); only the watermark, never an update, makes
// updates late: those at or before watermark-Size-Lateness are counted and
// ignored, and so are those older than what the key still holds; distinct counts are exact up to DistinctExact items and within
// a few percent past it; Top windows find the heavy hitters of a skewed
// stream; keys are bounded by MaxKeys; claims last ttl in event time.
package storetest

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flowguard/flowguard/engine/window"
)

// base is an event time aligned on a minute, so that the suite's 60s
// windows of 6 buckets start buckets on round seconds.
const base = int64(1_699_999_980) * int64(time.Second)

// at returns the event time s seconds after base.
func at(s float64) int64 { return base + int64(s*float64(time.Second)) }

// Run runs the suite. newStore must return an empty store, and is called
// once per subtest; the suite closes the stores it gets.
func Run(t *testing.T, newStore func(t *testing.T) window.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s window.Store)
	}{
		{"InvalidSpec", testInvalidSpec},
		{"SumSliding", testSumSliding},
		{"SumLate", testSumLate},
		{"SumOutOfOrder", testSumOutOfOrder},
		{"SumLateness", testSumLateness},
		{"NoClockFromUpdates", testNoClockFromUpdates},
		{"DistinctLateness", testDistinctLateness},
		{"TopLateness", testTopLateness},
		{"SumKeysBorrowed", testSumKeysBorrowed},
		{"SumEviction", testSumEviction},
		{"DistinctExact", testDistinctExact},
		{"DistinctSliding", testDistinctSliding},
		{"DistinctHLLAccuracy", testDistinctHLLAccuracy},
		{"DistinctHLLSwitch", testDistinctHLLSwitch},
		{"DistinctHLLSliding", testDistinctHLLSliding},
		{"DistinctEviction", testDistinctEviction},
		{"TopBasics", testTopBasics},
		{"TopSliding", testTopSliding},
		{"TopZipf", testTopZipf},
		{"Expire", testExpire},
		{"Claim", testClaim},
		{"ClaimConcurrent", testClaimConcurrent},
		{"Reopen", testReopen},
		{"ConcurrentStore", testConcurrentStore},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			defer func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			tc.fn(t, s)
		})
	}
}

// open returns the window for spec or fails the test.
func open(t *testing.T, s window.Store, spec window.Spec) KindWindow { return Open(t, s, spec) }

// Open returns the window for spec or fails the test; it must be the
// interface of spec's Kind.
func Open(t testing.TB, s window.Store, spec window.Spec) KindWindow {
	t.Helper()
	w, err := s.Window(spec)
	if err != nil {
		t.Fatalf("Window(%+v): %v", spec, err)
	}
	var ok bool
	switch spec.Kind {
	case window.Sum:
		_, ok = w.(window.SumWindow)
	case window.Distinct:
		_, ok = w.(window.DistinctWindow)
	case window.Top:
		_, ok = w.(window.TopWindow)
	}
	if !ok {
		t.Fatalf("Window(%+v): a %T is not the interface of kind %v", spec, w, spec.Kind)
	}
	return KindWindow{Window: w, t: t}
}

// KindWindow lets a test call the updates of its window's kind; the
// update of another kind fails the test.
type KindWindow struct {
	window.Window
	t testing.TB
}

// Add calls the SumWindow's Add.
func (w KindWindow) Add(key []byte, now int64, v float64) window.Result {
	return as[window.SumWindow](w).Add(key, now, v)
}

// AddDistinct calls the DistinctWindow's AddDistinct.
func (w KindWindow) AddDistinct(key []byte, now int64, item uint64) window.Result {
	return as[window.DistinctWindow](w).AddDistinct(key, now, item)
}

// AddTop calls the TopWindow's AddTop.
func (w KindWindow) AddTop(key []byte, now int64, v float64) window.Result {
	return as[window.TopWindow](w).AddTop(key, now, v)
}

// Rank calls the TopWindow's Rank.
func (w KindWindow) Rank(key []byte) int { return as[window.TopWindow](w).Rank(key) }

func as[K window.Window](w KindWindow) K {
	k, ok := w.Window.(K)
	if !ok {
		w.t.Helper()
		w.t.Fatalf("a %T has no %T methods", w.Window, *new(K))
	}
	return k
}

func minute(kind window.Kind, name string) window.Spec {
	return window.Spec{Name: name, Kind: kind, Size: time.Minute, Buckets: 6}
}

func wantValue(t *testing.T, what string, r window.Result, want float64) {
	t.Helper()
	if r.Value != want {
		t.Errorf("%s: Value = %v, want %v", what, r.Value, want)
	}
}

func wantNear(t *testing.T, what string, got, want, rel float64) {
	t.Helper()
	if math.Abs(got-want) > rel*want {
		t.Errorf("%s = %.0f, want %.0f ± %.0f%%", what, got, want, rel*100)
	}
}

func testInvalidSpec(t *testing.T, s window.Store) {
	for _, spec := range []window.Spec{
		{Name: "no-size", Kind: window.Sum},
		{Name: "negative", Kind: window.Sum, Size: -time.Second},
		{Name: "no-kind", Size: time.Minute},
		{Name: "bad-kind", Kind: 99, Size: time.Minute},
	} {
		if _, err := s.Window(spec); err == nil {
			t.Errorf("Window(%+v): no error", spec)
		}
	}
}

func testSumSliding(t *testing.T, s window.Store) {
	w := open(t, s, minute(window.Sum, "sum-sliding"))
	k := []byte("10.0.0.1")
	wantValue(t, "at 0", w.Add(k, at(0), 1), 1)
	wantValue(t, "at 10", w.Add(k, at(10), 2), 3)
	r := w.Add(k, at(59), 4)
	wantValue(t, "at 59", r, 7)
	if r.First != at(0) || r.Last != at(59) {
		t.Errorf("at 59: First, Last = %d, %d; want %d, %d", r.First, r.Last, at(0), at(59))
	}
	// The bucket [0s, 10s) overlaps the window until the clock reaches 70s.
	wantValue(t, "at 69", w.Add(k, at(69), 0), 7)
	r = w.Add(k, at(70), 0)
	wantValue(t, "at 70", r, 6)
	if r.First < at(10) || r.First > at(20) {
		t.Errorf("at 70: First = base%+v, want in [10s, 20s] after the first bucket expired",
			time.Duration(r.First-base))
	}
	if r.Last != at(70) {
		t.Errorf("at 70: Last = %d, want %d", r.Last, at(70))
	}
	wantValue(t, "at 80", w.Add(k, at(80), 0), 4)
	wantValue(t, "at 119", w.Add(k, at(119), 0), 4)
	wantValue(t, "at 120", w.Add(k, at(120), 0), 0)
	r = w.Add(k, at(121), 5)
	wantValue(t, "at 121", r, 5)
	if r.First < at(70) || r.First > at(121) {
		t.Errorf("at 121: First = base%+v, want in [70s, 121s]", time.Duration(r.First-base))
	}
	// A window's clock is its own: another window is not moved by this one.
	w2 := open(t, s, minute(window.Sum, "sum-sliding-2"))
	wantValue(t, "other window at 0", w2.Add(k, at(0), 1), 1)
	if st := w2.Stats(); st.Late != 0 || st.Keys != 1 {
		t.Errorf("other window: Stats = %+v, want 1 key, 0 late", st)
	}
}

func testSumLate(t *testing.T, s window.Store) {
	w := open(t, s, minute(window.Sum, "sum-late"))
	k := []byte("k")
	w.Add(k, at(100), 1)
	w.Advance(at(100))
	r := w.Add(k, at(40), 5) // 40 <= 100-60: late
	wantValue(t, "late update", r, 1)
	if r.Last != at(100) {
		t.Errorf("late update: Last = %d, want %d", r.Last, at(100))
	}
	wantValue(t, "late update of an unknown key", w.Add([]byte("new"), at(10), 5), 0)
	if st := w.Stats(); st.Late != 2 {
		t.Errorf("Stats.Late = %d, want 2", st.Late)
	}
	r = w.Add(k, at(41), 5) // inside the window, out of order
	wantValue(t, "out-of-order update", r, 6)
	if r.First != at(41) || r.Last != at(100) {
		t.Errorf("out-of-order update: First, Last = base%+v, base%+v; want 41s, 100s",
			time.Duration(r.First-base), time.Duration(r.Last-base))
	}
	if st := w.Stats(); st.Late != 2 {
		t.Errorf("Stats.Late = %d after an in-window update, want 2", st.Late)
	}
}

func testSumOutOfOrder(t *testing.T, s window.Store) {
	w := open(t, s, minute(window.Sum, "sum-ooo"))
	k := []byte("k")
	w.Add(k, at(55), 1)
	w.Add(k, at(45), 10) // own bucket [40s, 50s)
	wantValue(t, "at 55", w.Add(k, at(55), 0), 11)
	wantValue(t, "at 109", w.Add(k, at(109), 0), 11)
	wantValue(t, "at 110", w.Add(k, at(110), 0), 1) // [40s, 50s) left, [50s, 60s) stays
	wantValue(t, "at 120", w.Add(k, at(120), 0), 0)
}

// lateness returns a minute window of 6 buckets allowing 30s of lateness.
func lateness(kind window.Kind, name string) window.Spec {
	spec := minute(kind, name)
	spec.Lateness = 30 * time.Second
	return spec
}

func wantLate(t *testing.T, w window.Window, want uint64) {
	t.Helper()
	if st := w.Stats(); st.Late != want {
		t.Errorf("Stats.Late = %d, want %d", st.Late, want)
	}
}

func testSumLateness(t *testing.T, s window.Store) {
	w := open(t, s, lateness(window.Sum, "sum-lateness"))
	a, b, d := []byte("a"), []byte("b"), []byte("d")
	wantValue(t, "a at 100", w.Add(a, at(100), 1), 1)
	w.Advance(at(100)) // late: at or before 100-60-30 = 10s
	wantValue(t, "b at 20, inside the lateness", w.Add(b, at(20), 5), 5)
	wantValue(t, "b at 10, late", w.Add(b, at(10), 5), 5)
	wantLate(t, w, 1)
	// a's ring holds the buckets [40s, 110s): 45s lands in its bucket and
	// counts in the window ending at a's latest update.
	wantValue(t, "a at 45", w.Add(a, at(45), 2), 3)
	// 35s is inside the lateness but older than what a still holds.
	wantValue(t, "a at 35, late for a", w.Add(a, at(35), 4), 3)
	wantLate(t, w, 2)
	// An update out of order is compared over the latest window that
	// contains it: the one ending at min(latest, t+59.999s).
	w.Add(d, at(119), 1)
	r := w.Add(d, at(50), 2) // the window ending at 109.999s: 119s is after it
	wantValue(t, "d at 50", r, 2)
	if r.First != at(50) || r.Last != at(119) {
		t.Errorf("d at 50: First, Last = base%+v, base%+v; want 50s, 119s",
			time.Duration(r.First-base), time.Duration(r.Last-base))
	}
	wantValue(t, "d at 119 again", w.Add(d, at(119), 0), 3)
	wantValue(t, "d at 60", w.Add(d, at(60), 4), 7) // window ending at 119s
	wantLate(t, w, 2)
	// Expiry keeps a key while an update inside the lateness can reach it.
	if n := w.Expire(at(170)); n != 1 { // bound 80s: b (20s) goes
		t.Errorf("Expire(170s) = %d, want 1", n)
	}
	if n := w.Expire(at(200)); n != 1 { // bound 110s: a (100s) goes, d (119s) stays
		t.Errorf("Expire(200s) = %d, want 1", n)
	}
	wantValue(t, "d at 111", w.Add(d, at(111), 1), 8)
}

// testNoClockFromUpdates: an update far ahead, of any key, makes no other
// update late; only the watermark does (Top windows excepted: their
// counters share one clock, see the package doc).
func testNoClockFromUpdates(t *testing.T, s window.Store) {
	for _, kind := range []window.Kind{window.Sum, window.Distinct} {
		w := open(t, s, minute(kind, "no-clock-"+kind.String()))
		add := func(key string, sec float64, v uint64) window.Result {
			if kind == window.Sum {
				return w.Add([]byte(key), at(sec), float64(v))
			}
			return w.AddDistinct([]byte(key), at(sec), v)
		}
		add("ahead", 3600, 1)
		add("k", 0, 1)
		want := 3.0 // 1+2
		if kind == window.Distinct {
			want = 2 // items 1 and 2
		}
		wantValue(t, kind.String()+": k at 10", add("k", 10, 2), want)
		wantLate(t, w, 0)
		w.Advance(at(3600))
		add("k", 20, 3)
		wantLate(t, w, 1)
	}
}

func testDistinctLateness(t *testing.T, s window.Store) {
	w := open(t, s, lateness(window.Distinct, "distinct-lateness"))
	k, e := []byte("k"), []byte("e")
	w.AddDistinct(k, at(100), 1)
	w.Advance(at(100)) // late: at or before 10s
	wantValue(t, "item 2 at 45", w.AddDistinct(k, at(45), 2), 2)
	wantValue(t, "item 1 at 41", w.AddDistinct(k, at(41), 1), 2)
	// 39s is before the window ending at k's latest update: late for k.
	wantValue(t, "item 3 at 39", w.AddDistinct(k, at(39), 3), 2)
	wantLate(t, w, 1)
	wantValue(t, "e at 20", w.AddDistinct(e, at(20), 7), 1)
	wantValue(t, "e at 10", w.AddDistinct(e, at(10), 8), 1)
	wantLate(t, w, 2)
	// Item 2's bucket leaves k's window when k moves on.
	wantValue(t, "item 4 at 105", w.AddDistinct(k, at(105), 4), 3)
	wantValue(t, "item 5 at 110", w.AddDistinct(k, at(110), 5), 3)
}

func testTopLateness(t *testing.T, s window.Store) {
	w := open(t, s, lateness(window.Top, "top-lateness"))
	a, b, c := []byte("a"), []byte("b"), []byte("c")
	w.AddTop(a, at(100), 1)
	w.Advance(at(160)) // the clock: max(latest update 100s, 160s-30s)
	r := w.AddTop(b, at(71), 2)
	if r.Value != 2 || r.Total != 3 {
		t.Errorf("b at 71: Value, Total = %v, %v; want 2, 3", r.Value, r.Total)
	}
	w.AddTop(c, at(70), 4) // at or before 130s-60s: late
	wantLate(t, w, 1)
	if w.Rank(c) != 0 {
		t.Errorf("Rank(c) = %d after a late update, want 0", w.Rank(c))
	}
}

func testSumKeysBorrowed(t *testing.T, s window.Store) {
	w := open(t, s, minute(window.Sum, "sum-keys"))
	buf := []byte("aaaa")
	wantValue(t, "aaaa", w.Add(buf, at(0), 1), 1)
	copy(buf, "bbbb") // the caller reuses its buffer
	wantValue(t, "bbbb", w.Add(buf, at(1), 2), 2)
	wantValue(t, "aaaa again", w.Add([]byte("aaaa"), at(2), 1), 2)
	wantValue(t, "bbbb again", w.Add([]byte("bbbb"), at(3), 1), 3)
	wantValue(t, "empty key", w.Add(nil, at(4), 7), 7)
	if st := w.Stats(); st.Keys != 3 {
		t.Errorf("Stats.Keys = %d, want 3", st.Keys)
	}
}

// spray adds n random keys to w through one reused buffer, and adds 1 to
// hot every 100 keys; it returns how many times it added to hot.
func spray(n int, seed uint64, add func(key []byte, now int64)) int {
	rng := rand.New(rand.NewPCG(seed, 1))
	key := make([]byte, 16)
	hot := 0
	for i := range n {
		binary.LittleEndian.PutUint64(key, rng.Uint64())
		binary.LittleEndian.PutUint64(key[8:], rng.Uint64())
		now := at(0) + int64(i)
		add(key, now)
		if i%100 == 0 {
			add([]byte("hot"), now)
			hot++
		}
	}
	return hot
}

func checkEviction(t *testing.T, st window.Stats, n, maxKeys int) {
	t.Helper()
	if st.Keys > maxKeys || st.Keys < maxKeys*9/10 {
		t.Errorf("Stats.Keys = %d, want about %d and at most that", st.Keys, maxKeys)
	}
	want := uint64(n + 1 - maxKeys) // n random keys and "hot"
	if st.Evicted > want || st.Evicted < want*99/100 {
		t.Errorf("Stats.Evicted = %d, want about %d", st.Evicted, want)
	}
}

func testSumEviction(t *testing.T, s window.Store) {
	const maxKeys = 10000
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	spec := minute(window.Sum, "sum-evict")
	spec.MaxKeys = maxKeys
	w := open(t, s, spec)
	hot := spray(n, 1, func(key []byte, now int64) { w.Add(key, now, 1) })
	checkEviction(t, w.Stats(), n, maxKeys)
	// The key updated all along is never the stalest.
	wantValue(t, "hot key", w.Add([]byte("hot"), at(1), 0), float64(hot))
}

func testDistinctExact(t *testing.T, s window.Store) {
	w := open(t, s, minute(window.Distinct, "distinct-exact"))
	k := []byte("10.0.0.1|10.0.0.2")
	var r window.Result
	for i := range 100 {
		r = w.AddDistinct(k, at(0), uint64(i))
	}
	wantValue(t, "100 items", r, 100)
	for i := range 100 {
		r = w.AddDistinct(k, at(5), uint64(i))
	}
	wantValue(t, "the same 100 again", r, 100)
	for i := 50; i < 150; i++ {
		r = w.AddDistinct(k, at(30), uint64(i))
	}
	wantValue(t, "50 more", r, 150)
	if r.First != at(0) || r.Last != at(30) {
		t.Errorf("First, Last = base%+v, base%+v; want 0s, 30s",
			time.Duration(r.First-base), time.Duration(r.Last-base))
	}
	// At 70s the bucket [0s, 10s) has left: items 0-49 were last seen there,
	// 50-149 were seen again at 30s.
	wantValue(t, "at 70", w.AddDistinct(k, at(70), 149), 100)
	wantValue(t, "at 90", w.AddDistinct(k, at(90), 149), 100)
	wantValue(t, "at 100", w.AddDistinct(k, at(100), 149), 1) // [30s, 40s) left
	r = w.AddDistinct(k, at(0), 7)
	wantValue(t, "late item", r, 1)
	if st := w.Stats(); st.Late != 1 || st.Keys != 1 {
		t.Errorf("Stats = %+v, want 1 key, 1 late", st)
	}
	// Item values are arbitrary 64-bit hashes, 0 and max included.
	k2 := []byte("k2")
	for _, it := range []uint64{0, math.MaxUint64, 1 << 63, 0, math.MaxUint64} {
		r = w.AddDistinct(k2, at(100), it)
	}
	wantValue(t, "edge items", r, 3)
}

func testDistinctSliding(t *testing.T, s window.Store) {
	w := open(t, s, minute(window.Distinct, "distinct-sliding"))
	k := []byte("k")
	w.AddDistinct(k, at(30), 1)
	wantValue(t, "out of order, same item", w.AddDistinct(k, at(20), 1), 1)
	wantValue(t, "out of order, new item", w.AddDistinct(k, at(21), 2), 2)
	// At 81s [20s, 30s) still overlaps the window (21s, 81s].
	wantValue(t, "at 81", w.AddDistinct(k, at(81), 3), 3)
	// At 90s it has left, with item 2; item 1's latest is at 30s.
	wantValue(t, "at 90", w.AddDistinct(k, at(90), 3), 2)
	wantValue(t, "at 100", w.AddDistinct(k, at(100), 3), 1)
	// An item seen again after its bucket left counts again.
	wantValue(t, "item 1 back", w.AddDistinct(k, at(101), 1), 2)
	wantValue(t, "item 2 back", w.AddDistinct(k, at(102), 2), 3)
}

// items returns n distinct pseudo-random items.
func items(n int, seed uint64) []uint64 {
	rng := rand.New(rand.NewPCG(seed, 2))
	seen := make(map[uint64]bool, n)
	out := make([]uint64, 0, n)
	for len(out) < n {
		if it := rng.Uint64(); !seen[it] {
			seen[it] = true
			out = append(out, it)
		}
	}
	return out
}

func testDistinctHLLAccuracy(t *testing.T, s window.Store) {
	w := open(t, s, minute(window.Distinct, "distinct-hll"))
	var r window.Result
	for _, n := range []int{5000, 20000, 100_000} {
		k := fmt.Appendf(nil, "k%d", n)
		for _, it := range items(n, uint64(n)) {
			r = w.AddDistinct(k, at(0), it)
		}
		wantNear(t, fmt.Sprintf("%d random items", n), r.Value, float64(n), 0.05)
	}
	// Small sequential items (ports) spread as well as random ones.
	k := []byte("ports")
	for i := range 65536 {
		r = w.AddDistinct(k, at(1), uint64(i))
	}
	wantNear(t, "65536 ports", r.Value, 65536, 0.05)
	// Repeats do not count.
	for i := range 65536 {
		r = w.AddDistinct(k, at(2), uint64(i))
	}
	wantNear(t, "65536 ports again", r.Value, 65536, 0.05)
}

func testDistinctHLLSwitch(t *testing.T, s window.Store) {
	spec := minute(window.Distinct, "distinct-switch")
	spec.DistinctExact = 1000
	w := open(t, s, spec)
	k := []byte("k")
	its := items(2000, 7)
	var r window.Result
	for _, it := range its[:1000] {
		r = w.AddDistinct(k, at(0), it)
	}
	wantValue(t, "1000 items, exact", r, 1000)
	r = w.AddDistinct(k, at(0), its[1000])
	wantNear(t, "1001 items, past exact", r.Value, 1001, 0.05)
	for _, it := range its[1001:] {
		r = w.AddDistinct(k, at(30), it)
	}
	wantNear(t, "2000 items", r.Value, 2000, 0.05)
	// The 1001 items carried over at 0s leave with their bucket.
	r = w.AddDistinct(k, at(70), its[1999])
	wantNear(t, "at 70", r.Value, 999, 0.05)

	// Few items past a small exact limit stay close.
	spec = minute(window.Distinct, "distinct-switch-small")
	spec.DistinctExact = 16
	w = open(t, s, spec)
	for i := range 40 {
		r = w.AddDistinct(k, at(0), uint64(i))
	}
	if math.Abs(r.Value-40) > 2 {
		t.Errorf("40 items past 16 exact: Value = %v, want 40 ± 2", r.Value)
	}
}

func testDistinctHLLSliding(t *testing.T, s window.Store) {
	w := open(t, s, minute(window.Distinct, "distinct-hll-sliding"))
	k := []byte("sweeper")
	its := items(100_000, 3)
	var r window.Result
	for i, it := range its[:60_000] {
		r = w.AddDistinct(k, at(0)+int64(i), it)
	}
	wantNear(t, "60k items at 0s", r.Value, 60_000, 0.05)
	for i, it := range its[60_000:] {
		r = w.AddDistinct(k, at(30)+int64(i), it)
	}
	wantNear(t, "100k items at 30s", r.Value, 100_000, 0.05)
	r = w.AddDistinct(k, at(75), its[99_999])
	wantNear(t, "at 75, the first 60k gone", r.Value, 40_000, 0.05)
	r = w.AddDistinct(k, at(100), its[99_999])
	if r.Value < 0.5 || r.Value > 1.5 {
		t.Errorf("at 100: Value = %v, want 1", r.Value)
	}
}

func testDistinctEviction(t *testing.T, s window.Store) {
	const maxKeys = 1000
	n := 50_000
	spec := minute(window.Distinct, "distinct-evict")
	spec.MaxKeys = maxKeys
	w := open(t, s, spec)
	item := uint64(0)
	hot := spray(n, 2, func(key []byte, now int64) {
		item++
		w.AddDistinct(key, now, item)
	})
	checkEviction(t, w.Stats(), n, maxKeys)
	wantValue(t, "hot key", w.AddDistinct([]byte("hot"), at(1), 0), float64(hot+1))
}

func testTopBasics(t *testing.T, s window.Store) {
	spec := minute(window.Top, "top-basics")
	spec.TopCapacity = 2
	w := open(t, s, spec)
	a, b, c := []byte("a"), []byte("b"), []byte("c")
	w.AddTop(a, at(0), 10)
	r := w.AddTop(b, at(1), 1)
	wantValue(t, "b", r, 1)
	if r.Total != 11 {
		t.Errorf("b: Total = %v, want 11", r.Total)
	}
	if got := w.Rank(a); got != 1 {
		t.Errorf("Rank(a) = %d, want 1", got)
	}
	if got := w.Rank(b); got != 2 {
		t.Errorf("Rank(b) = %d, want 2", got)
	}
	// The sketch is full: c takes b's counter and its count.
	r = w.AddTop(c, at(2), 1)
	wantValue(t, "c replacing b", r, 2)
	if r.Total != 12 {
		t.Errorf("c: Total = %v, want 12", r.Total)
	}
	if r.First != at(2) || r.Last != at(2) {
		t.Errorf("c: First, Last = base%+v, base%+v; want 2s, 2s",
			time.Duration(r.First-base), time.Duration(r.Last-base))
	}
	if got := w.Rank(b); got != 0 {
		t.Errorf("Rank(b) = %d after eviction, want 0", got)
	}
	if got := w.Rank(c); got != 2 {
		t.Errorf("Rank(c) = %d, want 2", got)
	}
	if got := w.Rank([]byte("never")); got != 0 {
		t.Errorf("Rank(never) = %d, want 0", got)
	}
	if st := w.Stats(); st.Keys != 2 || st.Evicted != 1 {
		t.Errorf("Stats = %+v, want 2 keys, 1 evicted", st)
	}
	// Equal values share a rank.
	r = w.AddTop(c, at(3), 8)
	wantValue(t, "c", r, 10)
	if ra, rc := w.Rank(a), w.Rank(c); ra != 1 || rc != 1 {
		t.Errorf("Rank(a), Rank(c) = %d, %d with equal values, want 1, 1", ra, rc)
	}
	r = w.AddTop(a, at(-100), 5)
	wantValue(t, "late", r, 10)
	if st := w.Stats(); st.Late != 1 {
		t.Errorf("Stats.Late = %d, want 1", st.Late)
	}
}

func testTopSliding(t *testing.T, s window.Store) {
	w := open(t, s, minute(window.Top, "top-sliding"))
	a, b, c := []byte("a"), []byte("b"), []byte("c")
	w.AddTop(a, at(0), 5)
	r := w.AddTop(b, at(30), 3)
	if r.Total != 8 {
		t.Errorf("at 30: Total = %v, want 8", r.Total)
	}
	if w.Rank(a) != 1 || w.Rank(b) != 2 {
		t.Errorf("at 30: Rank(a), Rank(b) = %d, %d; want 1, 2", w.Rank(a), w.Rank(b))
	}
	// At 75s a's bucket has left.
	r = w.AddTop(c, at(75), 1)
	if r.Total != 4 {
		t.Errorf("at 75: Total = %v, want 4", r.Total)
	}
	if w.Rank(b) != 1 || w.Rank(c) != 2 {
		t.Errorf("at 75: Rank(b), Rank(c) = %d, %d; want 1, 2", w.Rank(b), w.Rank(c))
	}
	wantValue(t, "b at 75", w.AddTop(b, at(75), 0), 3)
	if n := w.Expire(at(75)); n != 1 {
		t.Errorf("Expire at 75 = %d, want 1 (a)", n)
	}
	if got := w.Rank(a); got != 0 {
		t.Errorf("Rank(a) = %d after it expired, want 0", got)
	}
	wantValue(t, "a back", w.AddTop(a, at(76), 2), 2)
}

func testTopZipf(t *testing.T, s window.Store) {
	const (
		capacity = 100
		n        = 200_000
	)
	spec := minute(window.Top, "top-zipf")
	spec.TopCapacity = capacity
	w := open(t, s, spec)
	rng := rand.New(rand.NewPCG(42, 3))
	zipf := rand.NewZipf(rng, 1.1, 1, 99_999)
	truth := make(map[string]float64)
	var total float64
	var r window.Result
	for i := range n {
		key := fmt.Sprintf("10.0.%d", zipf.Uint64())
		v := float64(1 + rng.IntN(1500)) // bytes
		truth[key] += v
		total += v
		r = w.AddTop([]byte(key), at(0)+int64(i)*int64(time.Millisecond/10), v)
	}
	if r.Total != total {
		t.Errorf("Total = %v, want %v", r.Total, total)
	}
	keys := make([]string, 0, len(truth))
	for k := range truth {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		switch {
		case truth[a] > truth[b]:
			return -1
		case truth[a] < truth[b]:
			return 1
		}
		return 0
	})
	t.Logf("%d keys; top: %v %v %v", len(keys), truth[keys[0]], truth[keys[9]], truth[keys[capacity]])
	for i, k := range keys[:10] {
		rank := w.Rank([]byte(k))
		if rank < 1 || rank > 10 {
			t.Errorf("true #%d %s (%v): Rank = %d, want in 1..10", i+1, k, truth[k], rank)
			continue
		}
		// Space-Saving overestimates by at most Total/capacity.
		got := w.AddTop([]byte(k), at(20), 0).Value
		if got < truth[k] || got > truth[k]+total/capacity {
			t.Errorf("true #%d %s: Value = %v, want in [%v, %v]", i+1, k, got, truth[k], truth[k]+total/capacity)
		}
	}
	if got := w.Rank([]byte(keys[0])); got != 1 {
		t.Errorf("Rank(heaviest) = %d, want 1", got)
	}
	st := w.Stats()
	if st.Keys != capacity || st.Evicted == 0 {
		t.Errorf("Stats = %+v, want %d keys and evictions", st, capacity)
	}
}

func testExpire(t *testing.T, s window.Store) {
	for _, kind := range []window.Kind{window.Sum, window.Distinct, window.Top} {
		t.Run(kind.String(), func(t *testing.T) {
			w := open(t, s, minute(kind, "expire-"+kind.String()))
			add := func(key string, sec float64) {
				switch kind {
				case window.Sum:
					w.Add([]byte(key), at(sec), 1)
				case window.Distinct:
					w.AddDistinct([]byte(key), at(sec), 1)
				case window.Top:
					w.AddTop([]byte(key), at(sec), 1)
				}
			}
			add("a", 0)
			add("b", 30)
			add("c", 31)
			if n := w.Expire(at(50)); n != 0 {
				t.Errorf("Expire(50s) = %d, want 0", n)
			}
			if n := w.Expire(at(75)); n != 1 {
				t.Errorf("Expire(75s) = %d, want 1", n)
			}
			if st := w.Stats(); st.Keys != 2 {
				t.Errorf("Stats.Keys = %d after Expire(75s), want 2", st.Keys)
			}
			if n := w.Expire(at(75)); n != 0 {
				t.Errorf("Expire(75s) again = %d, want 0", n)
			}
			if n := w.Expire(at(200)); n != 2 {
				t.Errorf("Expire(200s) = %d, want 2", n)
			}
			if st := w.Stats(); st.Keys != 0 {
				t.Errorf("Stats.Keys = %d after Expire(200s), want 0", st.Keys)
			}
			// Expire moved the clock.
			add("late", 100)
			if st := w.Stats(); st.Late != 1 {
				t.Errorf("Stats.Late = %d, want 1 after Expire moved the clock", st.Late)
			}
		})
	}
}

func testClaim(t *testing.T, s window.Store) {
	k := []byte("port-scan|198.51.100.23")
	steps := []struct {
		sec  float64
		want bool
	}{
		{0, true},
		{30, false},
		{59.9, false},
		{60, true}, // a minute after the first claim: claims again
		{100, false},
		{50, false}, // out of order, within ttl of the claim at 60s
		{120, true},
	}
	for _, st := range steps {
		if got := s.Claim(k, at(st.sec), time.Minute); got != st.want {
			t.Errorf("Claim at %vs = %v, want %v", st.sec, got, st.want)
		}
	}
	buf := []byte("port-scan|198.51.100.24")
	if !s.Claim(buf, at(120), time.Minute) {
		t.Error("Claim of another key: false, want true")
	}
	copy(buf, "port-scan|198.51.100.25")
	if !s.Claim(buf, at(120), time.Minute) {
		t.Error("Claim of a third key through a reused buffer: false, want true")
	}
	if s.Claim([]byte("port-scan|198.51.100.24"), at(121), time.Minute) {
		t.Error("Claim of the second key again: true, want false")
	}
	// Many claims, each for a short while, do not break later ones.
	for i := range 10000 {
		s.Claim(fmt.Appendf(nil, "flood|%d", i), at(200)+int64(i), time.Second)
	}
	if s.Claim([]byte("flood|9999"), at(200)+9999, time.Second) {
		t.Error("Claim of flood|9999 again: true, want false")
	}
	if !s.Claim([]byte("flood|0"), at(300), time.Second) {
		t.Error("Claim of flood|0 after its ttl: false, want true")
	}
}

func testClaimConcurrent(t *testing.T, s window.Store) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range 16 {
		wg.Go(func() {
			if s.Claim([]byte("race"), at(0), time.Minute) {
				mu.Lock()
				won++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if won != 1 {
		t.Errorf("%d of 16 concurrent claims won, want 1", won)
	}
}

func testReopen(t *testing.T, s window.Store) {
	spec := window.Spec{Name: "exfil", Kind: window.Sum, Size: time.Minute}
	k := []byte("k")
	wantValue(t, "first window", open(t, s, spec).Add(k, at(0), 1), 1)
	// A rule reload asks again: the window and its state survive.
	wantValue(t, "same spec", open(t, s, spec).Add(k, at(1), 1), 2)
	withDefaults := spec.WithDefaults()
	wantValue(t, "same spec with defaults spelt out", open(t, s, withDefaults).Add(k, at(2), 1), 3)
	// A new size is a new window.
	spec.Size = 2 * time.Minute
	wantValue(t, "new size", open(t, s, spec).Add(k, at(3), 1), 1)
	wantValue(t, "new size again", open(t, s, spec).Add(k, at(4), 1), 2)
	// So is a new kind.
	spec.Kind = window.Distinct
	wantValue(t, "new kind", open(t, s, spec).AddDistinct(k, at(5), 1), 1)
	// Other names are other windows.
	other := window.Spec{Name: "other", Kind: window.Sum, Size: 2 * time.Minute}
	wantValue(t, "other name", open(t, s, other).Add(k, at(6), 1), 1)
}

func testConcurrentStore(t *testing.T, s window.Store) {
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			// Every goroutine asks for a shared window, and uses its own.
			if _, err := s.Window(minute(window.Sum, "shared")); err != nil {
				t.Errorf("Window(shared): %v", err)
			}
			ww, err := s.Window(minute(window.Sum, fmt.Sprintf("own-%d", g)))
			if err != nil {
				t.Errorf("Window(own-%d): %v", g, err)
				return
			}
			w, ok := ww.(window.SumWindow)
			if !ok {
				t.Errorf("Window(own-%d): a %T is no SumWindow", g, ww)
				return
			}
			var r window.Result
			for i := range 1000 {
				r = w.Add([]byte("k"), at(0)+int64(i), 1)
				s.Claim(fmt.Appendf(nil, "%d|%d", g, i%10), at(0)+int64(i), time.Minute)
			}
			if r.Value != 1000 {
				t.Errorf("goroutine %d: Value = %v, want 1000", g, r.Value)
			}
		})
	}
	wg.Wait()
}
