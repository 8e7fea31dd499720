package talkers

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/gen"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock() *clock               { return &clock{t: time.Unix(1_800_000_000, 0)} }
func addr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}
func mk(src, dst int, port uint16) flow.Flow {
	f := flow.Flow{SrcAddr: addr(src), DstAddr: addr(dst), DstPort: port, Bytes: 1000, Packets: 10, SrcAS: 64500}
	f.SetProto(6)
	return f
}

// Heavy hitters among many small keys are found with their exact counts
// when they never left the sketch, and memory stays the sketch's.
func TestHeavyHittersAmongNoise(t *testing.T) {
	c := newClock()
	tk := New(64, c.now)
	r := rand.New(rand.NewPCG(1, 2))
	batch := make([]flow.Flow, 0, 256)
	for range 200 {
		batch = batch[:0]
		for range 50 { // heavy: 10.0.0.1 and 10.0.0.2
			batch = append(batch, mk(1, 100, 443), mk(2, 100, 22))
		}
		for range 150 { // noise: 100,000 distinct sources, one flow each
			batch = append(batch, mk(1000+r.IntN(100000), 101, uint16(1024+r.IntN(60000))))
		}
		tk.Handle(batch)
	}
	top := tk.Top(time.Minute, ByBytes, 3)
	if len(top.Sources) != 3 || top.Sources[0].Key != "10.0.0.1" && top.Sources[0].Key != "10.0.0.2" {
		t.Fatalf("sources: %+v", top.Sources)
	}
	for _, row := range top.Sources[:2] {
		if row.Flows < 10000 || row.Bytes < 10000*1000 {
			t.Errorf("heavy source %s counted %d flows, want at least 10000", row.Key, row.Flows)
		}
	}
	if top.Destinations[0].Key != "10.0.0.101" || top.Destinations[0].Flows != 30000 {
		t.Errorf("destinations: %+v", top.Destinations)
	}
	if top.Ports[0].Key != "443/tcp" && top.Ports[0].Key != "22/tcp" {
		t.Errorf("ports: %+v", top.Ports)
	}
	if len(top.ASNs) != 1 || top.ASNs[0].Key != "AS64500" || top.ASNs[0].Flows != 50000 {
		t.Errorf("asns: %+v", top.ASNs)
	}
	if s := tk.Stats(); s.Flows != 50000 || s.Pruned == 0 {
		t.Errorf("stats %+v: want 50000 flows and pruned keys", s)
	}
	if got := cap(tk.b[0].keys[Sources]); got != 64 {
		t.Errorf("sketch grew to %d", got)
	}
	if got := len(tk.live.tables[Sources].ents); got != 64*LiveFactor {
		t.Errorf("the current bucket's table grew to %d", got)
	}
}

// Windows count only their buckets; old buckets are reused.
func TestWindows(t *testing.T) {
	c := newClock()
	tk := New(16, c.now)
	tk.Handle([]flow.Flow{mk(1, 2, 80)}) // t0
	c.add(4 * time.Minute)
	tk.Handle([]flow.Flow{mk(3, 2, 80), mk(3, 2, 80)})
	c.add(10 * time.Minute)
	f := mk(4, 2, 53)
	f.Packets = 1000
	f.SetProto(17)
	tk.Handle([]flow.Flow{f})
	want := map[string][]string{"1m": {"10.0.0.4"}, "5m": {"10.0.0.4"}, "15m": {"10.0.0.3", "10.0.0.4", "10.0.0.1"}}
	for w, keys := range want {
		d, ok := ParseWindow(w)
		if !ok {
			t.Fatal(w)
		}
		top := tk.Top(d, ByBytes, 10)
		if len(top.Sources) != len(keys) {
			t.Fatalf("%s: %+v", w, top.Sources)
		}
		for i, k := range keys {
			if top.Sources[i].Key != k {
				t.Errorf("%s: source %d is %s, want %s", w, i, top.Sources[i].Key, k)
			}
		}
	}
	if top := tk.Top(15*time.Minute, ByPackets, 1); top.Sources[0].Key != "10.0.0.4" || top.Ports[0].Key != "53/udp" {
		t.Errorf("by packets: %+v %+v", top.Sources, top.Ports)
	}
	c.add(16 * time.Minute)
	if top := tk.Top(15*time.Minute, ByBytes, 10); len(top.Sources) != 0 {
		t.Errorf("after 16 idle minutes: %+v", top.Sources)
	}
	if _, ok := ParseWindow("2m"); ok {
		t.Error("2m accepted")
	}
}

// The table's index stays consistent through many prunes, and a prune
// keeps the heaviest keys.
func TestTableConsistent(t *testing.T) {
	tb := newTable(16, 0, 7)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 20000 {
		k := key{lo: uint64(r.IntN(200))}
		tb.add(k, uint64(1+i%7), 1)
		tb.add(key{lo: 1000}, 100, 1) // heavy by bytes
		tb.add(key{lo: 1001}, 1, 50)  // heavy by packets
		if i%7 == 0 {
			for e := range tb.n {
				j := tb.hash(tb.ents[e].k) & tb.mask
				for tb.slots[j] != int32(e)+1 {
					if tb.slots[j] == 0 {
						t.Fatalf("step %d: key %v at entry %d not indexed", i, tb.ents[e].k, e)
					}
					j = (j + 1) & tb.mask
				}
			}
		}
	}
	var heavy int
	for _, e := range tb.ents[:tb.n] {
		if e.k.lo == 1000 && e.flows == 20000 || e.k.lo == 1001 && e.flows == 20000 {
			heavy++
		}
	}
	if heavy != 2 || tb.pruned == 0 {
		t.Errorf("the heavy keys were forgotten (%d kept whole), %d pruned", heavy, tb.pruned)
	}
}

// A closed bucket keeps the heaviest keys by bytes and by packets with
// their exact counts, through the prunes of the current bucket's table.
func TestCopyTopKeepsHeaviest(t *testing.T) {
	tb := newTable(128, 8, 3)
	var want []key
	for i := range 1000 {
		k := key{lo: uint64(i)}
		var bytes, packets uint64 = 10, 1
		switch i % 100 {
		case 0: // ten keys heavy by bytes
			bytes = 1e6 + uint64(i)
		case 1: // ten heavy by packets
			packets = 1e6 + uint64(i)
		}
		if i%100 < 2 && i >= 200 { // the eight heaviest of each
			want = append(want, k)
		}
		tb.add(k, bytes, packets)
		tb.add(k, bytes, packets)
	}
	if tb.pruned == 0 {
		t.Fatal("no prune")
	}
	dst := make([]entry, 16)
	n := tb.n
	kept, got := tb.copyTop(dst, 8)
	if int(got) != n-16 || len(kept) != 16 {
		t.Fatalf("copyTop kept %d keys and left out %d of %d, want 16 and %d", len(kept), got, n, n-16)
	}
	byKey := map[key]counts{}
	for _, e := range kept {
		byKey[e.k] = e.counts
	}
	for _, k := range want {
		if c, ok := byKey[k]; !ok || c.flows != 2 || c.bytes+c.packets < 2e6 {
			t.Errorf("key %d: kept %v %+v", k.lo, ok, c)
		}
	}
	if tb.n != n {
		t.Errorf("copyTop changed its table: %d keys, were %d", tb.n, n)
	}
	// All equal: the room is filled, no more.
	tb.reset()
	for i := range 100 {
		tb.add(key{lo: uint64(i)}, 1000, 10)
	}
	if kept, got := tb.copyTop(dst, 8); got != 100-16 || len(kept) != 16 {
		t.Errorf("ties: kept %d, left out %d", len(kept), got)
	}
	// What fits is kept whole.
	tb.reset()
	for range 100 {
		tb.add(key{lo: 7}, 1000, 10)
	}
	if kept, got := tb.copyTop(dst, 8); got != 0 || len(kept) != 1 || kept[0].flows != 100 {
		t.Errorf("one key: left out %d, kept %+v", got, kept)
	}
}

// A hostile stream of distinct keys in every dimension, bucket after
// bucket, costs no memory and leaves the heavy talker on top with its
// exact counts.
func TestSprayBounded(t *testing.T) {
	c := newClock()
	tk := New(32, c.now)
	r := rand.New(rand.NewPCG(5, 6))
	batch := make([]flow.Flow, 256)
	spray := func() {
		for i := range batch {
			f := mk(r.IntN(1<<24), r.IntN(1<<24), uint16(444+r.IntN(60000)))
			f.SetProto([]uint8{6, 17, 47}[i%3])
			f.SrcAS, f.DstAS = r.Uint32(), r.Uint32()
			if i%8 == 0 {
				f = mk(1, 2, 443)
				f.SrcAS, f.Bytes = 64500, 5000
			}
			batch[i] = f
		}
		tk.Handle(batch)
	}
	spray()
	if a := testing.AllocsPerRun(100, func() {
		for range 10 {
			spray()
		}
		c.add(Bucket)
	}); a != 0 {
		t.Errorf("Handle allocates %.1f times per bucket", a)
	}
	for i := range tk.b {
		for d, keys := range tk.b[i].keys {
			if cap(keys) != 32 || len(keys) > 32 {
				t.Fatalf("bucket %d %s: %d of %d keys", i, Dimension(d), len(keys), cap(keys))
			}
		}
	}
	for d, tb := range tk.live.tables {
		if len(tb.ents) != 32*LiveFactor || tb.n > len(tb.ents) {
			t.Fatalf("live %s: %d of %d keys", Dimension(d), tb.n, len(tb.ents))
		}
	}
	spray()
	// The current bucket has one batch; the 30 whole buckets before it in
	// the window, ten batches each.
	const perBatch = 256 / 8
	top := tk.Top(15*time.Minute, ByBytes, 1)
	flows := uint64(perBatch * (30*10 + 1))
	for _, rows := range [][]Row{top.Sources, top.Destinations, top.Ports, top.ASNs} {
		if len(rows) != 1 || rows[0].Flows != flows || rows[0].Bytes != flows*5000 {
			t.Errorf("top: %+v, want %d flows", rows, flows)
		}
	}
	if top.Sources[0].Key != "10.0.0.1" || top.Ports[0].Key != "443/tcp" || top.ASNs[0].Key != "AS64500" {
		t.Errorf("top: %+v", top)
	}
	if s := tk.Stats(); s.Pruned == 0 {
		t.Errorf("stats %+v: nothing forgotten", s)
	}
}

// When the clock goes back to a bucket already closed, counting goes on in
// it: nothing is lost or counted twice.
func TestClockBack(t *testing.T) {
	c := newClock()
	tk := New(16, c.now)
	tk.Handle([]flow.Flow{mk(1, 2, 443), mk(3, 4, 53)})
	c.add(Bucket)
	tk.Handle([]flow.Flow{mk(1, 2, 443)})
	c.add(-Bucket)
	tk.Handle([]flow.Flow{mk(1, 2, 443)})
	top := tk.Top(time.Minute, ByBytes, 5)
	if len(top.Ports) != 2 || top.Ports[0].Key != "443/tcp" || top.Ports[0].Flows != 2 || top.Ports[1].Flows != 1 {
		t.Errorf("back: %+v", top.Ports)
	}
	c.add(Bucket)
	tk.Handle([]flow.Flow{mk(1, 2, 443)})
	top = tk.Top(time.Minute, ByBytes, 5)
	if len(top.Sources) != 2 || top.Sources[0].Flows != 4 || top.Ports[0].Flows != 4 || top.Ports[0].Bytes != 4000 {
		t.Errorf("forth: %+v %+v", top.Sources, top.Ports)
	}
	if s := tk.Stats(); s.Flows != 5 || s.Pruned != 0 {
		t.Errorf("stats %+v", s)
	}
}

// Structured keys (consecutive ports and addresses, IPv6 addresses that
// differ only in their first half) spread over a half-full index as random
// ones would: short probes, none long.
func TestHashSpreads(t *testing.T) {
	shapes := map[string]func(i int) key{
		"ports":       func(i int) key { return key{lo: 6<<16 | uint64(i)} },
		"ipv4":        func(i int) key { return key{lo: 0xffff<<32 | 0x0a000000 | uint64(i)} },
		"ipv4 /16s":   func(i int) key { return key{lo: 0xffff<<32 | uint64(i)<<16} },
		"ipv6 prefix": func(i int) key { return key{hi: 0x20010db8<<32 | uint64(i)<<16, lo: 1} },
	}
	for name, shape := range shapes {
		tb := newTable(4096, 0, rand.Uint64())
		steps, worst := 0, 0
		for i := range len(tb.ents) {
			j, n := tb.hash(shape(i))&tb.mask, 0
			for ; tb.slots[j] != 0; n++ {
				j = (j + 1) & tb.mask
			}
			tb.slots[j] = 1
			steps += n
			worst = max(worst, n)
		}
		if mean := float64(steps) / float64(len(tb.ents)); mean > 1 || worst > 100 {
			t.Errorf("%s: %.2f steps per key, %d at worst", name, mean, worst)
		}
	}
}

func TestHandleAllocatesNothing(t *testing.T) {
	tk := New(0, nil)
	batch := make([]flow.Flow, 256)
	for i := range batch {
		batch[i] = mk(i*7919, i, uint16(i))
	}
	tk.Handle(batch)
	n := 0
	if a := testing.AllocsPerRun(100, func() {
		for i := range batch {
			batch[i].SrcAddr = addr(n)
			n++
		}
		tk.Handle(batch)
	}); a != 0 {
		t.Errorf("Handle allocates %.1f times per batch", a)
	}
}

// BenchmarkHandle counts 256-flow batches of mostly distinct keys (the
// sketches keep replacing); ns/op is per flow.
func BenchmarkHandle(b *testing.B) {
	tk := New(0, nil)
	batch := make([]flow.Flow, 256)
	for i := range batch {
		batch[i] = mk(i, i%31, uint16(i%1000))
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		f := &batch[n%256]
		f.SrcAddr = addr(n)
		f.SrcAS = uint32(n % 5000)
		n++
		if n%256 == 0 {
			tk.Handle(batch)
		}
	}
}

// BenchmarkHandleBackground counts gen's background mix (internal clients
// and outside servers) in 256-flow batches; ns/op is per flow.
func BenchmarkHandleBackground(b *testing.B) {
	handleBatches(b, gen.BackgroundFlows(1, 1<<16))
}

// handleBatches counts flows in 256-flow batches, a batch every 256th
// iteration, so that ns/op is per flow, all in one bucket of time.
func handleBatches(b *testing.B, flows []flow.Flow) {
	tk := New(0, newClock().now) // one bucket: the same work in every run

	runtime.GC() // not the setup's garbage during the loop
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		n++
		if n%256 == 0 {
			i := (n - 256) % len(flows)
			tk.Handle(flows[i : i+256])
		}
	}
}

// BenchmarkHandleStream counts the flows `make bench-e2e` sends (gen's
// stream mix) in 256-flow batches, as the daemon hands them over; ns/op
// is per flow.
func BenchmarkHandleStream(b *testing.B) {
	handleBatches(b, gen.StreamMix(1, 50000, 1<<16, 1.2e6, time.Now()))
}

// BenchmarkTop answers a 15-minute Top after the stream mix filled the
// current bucket (the ports table with its ephemeral ports):
// the time Handle waits for the lock while the console asks.
func BenchmarkTop(b *testing.B) {
	tk := New(0, nil)
	flows := gen.StreamMix(1, 50000, 1<<16, 1.2e6, time.Now())
	for i := 0; i+256 <= len(flows); i += 256 {
		tk.Handle(flows[i : i+256])
	}
	b.ReportAllocs()
	for b.Loop() {
		tk.Top(15*time.Minute, ByBytes, 100)
	}
}
