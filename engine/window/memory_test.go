package window_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/flowguard/flowguard/engine/window"
	"github.com/flowguard/flowguard/engine/window/storetest"
)

func TestMemoryStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) window.Store { return window.NewMemoryStore() })
}

const t0 = int64(1_699_999_980) * int64(time.Second)

func open(tb testing.TB, s window.Store, spec window.Spec) storetest.KindWindow {
	tb.Helper()
	return storetest.Open(tb, s, spec)
}

func TestMemoryStoreSameWindow(t *testing.T) {
	s := window.NewMemoryStore()
	spec := window.Spec{Name: "r", Kind: window.Top, Size: time.Minute}
	if open(t, s, spec) != open(t, s, spec) {
		t.Error("same spec: different windows")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Window(spec); err == nil {
		t.Error("Window after Close: no error")
	}
}

// A window is the interface of its kind only: no update of another kind
// can reach it.
func TestWindowOfItsKindOnly(t *testing.T) {
	s := window.NewMemoryStore()
	for _, kind := range []window.Kind{window.Sum, window.Distinct, window.Top} {
		w, err := s.Window(window.Spec{Name: kind.String(), Kind: kind, Size: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		_, sum := w.(window.SumWindow)
		_, distinct := w.(window.DistinctWindow)
		_, top := w.(window.TopWindow)
		if got := fmt.Sprint(sum, distinct, top); got != fmt.Sprint(kind == window.Sum, kind == window.Distinct, kind == window.Top) {
			t.Errorf("%v window: SumWindow, DistinctWindow, TopWindow = %s", kind, got)
		}
	}
}

// TestSprayMemory checks that a spray of random keys into a capped window
// keeps the heap bounded.
func TestSprayMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	for _, kind := range []window.Kind{window.Sum, window.Distinct, window.Top} {
		t.Run(kind.String(), func(t *testing.T) {
			s := window.NewMemoryStore()
			w := open(t, s, window.Spec{Name: "spray", Kind: kind, Size: time.Minute, MaxKeys: 10000, TopCapacity: 10000})
			rng := rand.New(rand.NewPCG(1, 1))
			key := make([]byte, 16)
			var ms runtime.MemStats
			var before uint64
			const n = 1_000_000
			for i := range n {
				if i == 100_000 {
					runtime.GC()
					runtime.ReadMemStats(&ms)
					before = ms.HeapAlloc
				}
				binary.LittleEndian.PutUint64(key, rng.Uint64())
				binary.LittleEndian.PutUint64(key[8:], rng.Uint64())
				now := t0 + int64(i)*int64(time.Microsecond)
				switch kind {
				case window.Sum:
					w.Add(key, now, 1)
				case window.Distinct:
					w.AddDistinct(key, now, rng.Uint64())
				case window.Top:
					w.AddTop(key, now, 1)
				}
			}
			runtime.GC()
			runtime.ReadMemStats(&ms)
			st := w.Stats()
			t.Logf("%+v; heap %d KiB after 100k keys, %d KiB after 1M", st, before>>10, ms.HeapAlloc>>10)
			if st.Keys > 10000 {
				t.Errorf("Stats.Keys = %d, want <= 10000", st.Keys)
			}
			if st.Evicted != n-10000 {
				t.Errorf("Stats.Evicted = %d, want %d", st.Evicted, n-10000)
			}
			if ms.HeapAlloc > before+before/4+1<<20 {
				t.Errorf("heap grew from %d KiB to %d KiB", before>>10, ms.HeapAlloc>>10)
			}
			runtime.KeepAlive(w)
		})
	}
}

// TestClaimsBounded checks that claims past their ttl are dropped.
func TestClaimsBounded(t *testing.T) {
	s := window.NewMemoryStore()
	for i := range 1_000_000 {
		s.Claim(fmt.Appendf(nil, "k%d", i), t0+int64(i)*int64(time.Millisecond), time.Second)
	}
	if n := window.ClaimsHeld(s); n > 4096 {
		t.Errorf("%d claims held, want the last second's (1000) and some", n)
	}
}

// TestZeroAllocs checks the hot paths for allocations.
func TestZeroAllocs(t *testing.T) {
	s := window.NewMemoryStore()
	sum := open(t, s, window.Spec{Name: "sum", Kind: window.Sum, Size: time.Minute})
	dist := open(t, s, window.Spec{Name: "dist", Kind: window.Distinct, Size: time.Minute, DistinctExact: 64})
	top := open(t, s, window.Spec{Name: "top", Kind: window.Top, Size: time.Minute, TopCapacity: 16})
	key := []byte("198.51.100.23")
	other := []byte("198.51.100.24")
	now := t0
	item := uint64(0)
	k := 0
	f := func() {
		now += int64(time.Millisecond)
		item++
		k++
		sum.Add(key, now, 1500)
		dist.AddDistinct(key, now, item%1000)
		dist.AddDistinct(other, now, item%32)
		top.AddTop(key, now, 1)
		// Untracked keys replace counters.
		binary.LittleEndian.PutUint32(other[len(other)-4:], uint32(k%64))
		top.AddTop(other, now, 1)
	}
	for range 100_000 { // warm up past the first rotations and map growth
		f()
	}
	if a := testing.AllocsPerRun(100_000, f); a != 0 {
		t.Errorf("%v allocs per run, want 0", a)
	}
}

func BenchmarkAdd(b *testing.B) {
	s := window.NewMemoryStore()
	w := open(b, s, window.Spec{Name: "sum", Kind: window.Sum, Size: time.Minute}).Window.(window.SumWindow)
	key := []byte("198.51.100.23|10.20.30.40")
	w.Add(key, t0, 1)
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now += int64(time.Microsecond)
		w.Add(key, now, 1500)
	}
}

func BenchmarkAddNewKeys(b *testing.B) {
	s := window.NewMemoryStore()
	w := open(b, s, window.Spec{Name: "sum", Kind: window.Sum, Size: time.Minute, MaxKeys: 10000}).Window.(window.SumWindow)
	key := make([]byte, 16)
	now := t0
	var i uint64
	b.ReportAllocs()
	for b.Loop() {
		i++
		binary.LittleEndian.PutUint64(key, i*0x9e3779b97f4a7c15)
		now += int64(time.Microsecond)
		w.Add(key, now, 1500)
	}
}

func BenchmarkAddDistinct(b *testing.B) {
	// Exact: a port scan, ~600 distinct ports live, new and repeated.
	b.Run("exact/new", func(b *testing.B) {
		s := window.NewMemoryStore()
		w := open(b, s, window.Spec{Name: "d", Kind: window.Distinct, Size: time.Minute}).Window.(window.DistinctWindow)
		key := []byte("198.51.100.23|10.20.30.40")
		now := t0
		var item uint64
		b.ReportAllocs()
		for b.Loop() {
			item++
			now += int64(100 * time.Millisecond)
			w.AddDistinct(key, now, item)
		}
	})
	b.Run("exact/repeat", func(b *testing.B) {
		s := window.NewMemoryStore()
		w := open(b, s, window.Spec{Name: "d", Kind: window.Distinct, Size: time.Minute}).Window.(window.DistinctWindow)
		key := []byte("198.51.100.23|10.20.30.40")
		now := t0
		var item uint64
		b.ReportAllocs()
		for b.Loop() {
			item++
			now += int64(time.Microsecond)
			w.AddDistinct(key, now, item%500)
		}
	})
	b.Run("hll/new", func(b *testing.B) {
		s := window.NewMemoryStore()
		w := open(b, s, window.Spec{Name: "d", Kind: window.Distinct, Size: time.Minute}).Window.(window.DistinctWindow)
		key := []byte("198.51.100.23")
		now := t0
		var item uint64
		for range 2000 {
			item++
			w.AddDistinct(key, now, item)
		}
		b.ReportAllocs()
		for b.Loop() {
			item++
			now += int64(time.Microsecond)
			w.AddDistinct(key, now, item)
		}
	})
	b.Run("hll/repeat", func(b *testing.B) {
		s := window.NewMemoryStore()
		w := open(b, s, window.Spec{Name: "d", Kind: window.Distinct, Size: time.Minute}).Window.(window.DistinctWindow)
		key := []byte("198.51.100.23")
		now := t0
		var item uint64
		for range 5000 {
			item++
			w.AddDistinct(key, now, item)
		}
		b.ReportAllocs()
		for b.Loop() {
			item++
			now += int64(time.Microsecond)
			w.AddDistinct(key, now, item%5000)
		}
	})
}

// zipfKeys returns n keys drawn from a Zipf law over distinct keys.
func zipfKeys(n int, distinct uint64) [][]byte {
	rng := rand.New(rand.NewPCG(7, 7))
	z := rand.NewZipf(rng, 1.1, 1, distinct-1)
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "10.%d.%d", z.Uint64(), 7)
	}
	return keys
}

func BenchmarkAddTop(b *testing.B) {
	s := window.NewMemoryStore()
	w := open(b, s, window.Spec{Name: "t", Kind: window.Top, Size: time.Minute}).Window.(window.TopWindow)
	keys := zipfKeys(1<<16, 100_000)
	now := t0
	for i := range keys { // fill the sketch
		w.AddTop(keys[i], now, 1500)
	}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		now += int64(time.Microsecond)
		w.AddTop(keys[i&(len(keys)-1)], now, 1500)
	}
}

// BenchmarkMixed runs what a flow costs a rule set: an exfiltration sum per
// source, a port scan (distinct ports per source and destination), a host
// sweep (distinct destinations per source and port) and heavy hitters per
// source. Traffic: Zipf-distributed sources, each talking to a few
// destinations on a few service ports, and 3% of flows from scanners
// probing random addresses and ports.
func BenchmarkMixed(b *testing.B) {
	benchmarkMixed(b, false)
}

// BenchmarkMixedChurn is BenchmarkMixed where every flow comes from a
// random pair of 10M, so that the distinct windows insert and evict a key
// on nearly every flow, with cold caches: the worst case.
func BenchmarkMixedChurn(b *testing.B) {
	benchmarkMixed(b, true)
}

func benchmarkMixed(b *testing.B, churn bool) {
	s := window.NewMemoryStore()
	sum := open(b, s, window.Spec{Name: "exfil", Kind: window.Sum, Size: 5 * time.Minute}).Window.(window.SumWindow)
	scan := open(b, s, window.Spec{Name: "scan", Kind: window.Distinct, Size: time.Minute}).Window.(window.DistinctWindow)
	sweep := open(b, s, window.Spec{Name: "sweep", Kind: window.Distinct, Size: time.Minute}).Window.(window.DistinctWindow)
	top := open(b, s, window.Spec{Name: "top", Kind: window.Top, Size: time.Minute}).Window.(window.TopWindow)
	const n = 1 << 16
	rng := rand.New(rand.NewPCG(9, 9))
	srcs := rand.NewZipf(rng, 1.1, 1, 19_999)
	peers := rand.NewZipf(rng, 1.5, 1, 19)
	ports := []uint16{443, 443, 443, 80, 80, 53, 53, 123, 22, 25, 993, 8080}
	type flow struct {
		src, dst uint32
		dport    uint16
		bytes    float64
	}
	flows := make([]flow, n)
	for i := range flows {
		f := &flows[i]
		f.src = uint32(srcs.Uint64())
		f.dst = (f.src*7919 + uint32(peers.Uint64())) % 50_000
		f.dport = ports[rng.IntN(len(ports))]
		f.bytes = float64(40 + rng.IntN(1500))
	}
	key := make([]byte, 0, 16)
	now := t0
	x := uint64(1)
	i := 0
	run := func() {
		f := flows[i&(n-1)]
		i++
		now += int64(10 * time.Microsecond)
		x ^= x << 13 // xorshift: scanners' fresh targets
		x ^= x >> 7
		x ^= x << 17
		switch {
		case churn:
			f.src, f.dst, f.dport = uint32(x%5000), uint32(x>>32%2000), uint16(x>>16%1024)
		case x%100 < 3:
			f.src, f.dst, f.dport = 1_000_000+uint32(x>>8%5), uint32(x>>16), uint16(x>>48)
		}
		key = binary.BigEndian.AppendUint32(key[:0], f.src)
		sum.Add(key, now, f.bytes)
		top.AddTop(key, now, f.bytes)
		key = binary.BigEndian.AppendUint16(key, f.dport)
		sweep.AddDistinct(key, now, uint64(f.dst))
		key = binary.BigEndian.AppendUint32(key[:4], f.dst)
		scan.AddDistinct(key, now, uint64(f.dport))
	}
	for range 20 * n {
		run()
	}
	b.ReportAllocs()
	for b.Loop() {
		run()
	}
}
