package window_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/flowguard/flowguard/engine/window"
)

// BenchmarkLiveKeys updates windows the way the engine does with the
// bundled rules: keys as flow.Field.AppendKey makes them (an IPv4 address
// is 5 bytes, an address pair 10, a pair and a port 18), live keys 1k to
// 100k drawn at random (so the key table is as cold as the working set
// makes it), 99% of updates to keys the window holds and 1% to new ones
// (which evict the stalest at MaxKeys), event time at 1.2M flows/s.
func BenchmarkLiveKeys(b *testing.B) {
	for _, kind := range []window.Kind{window.Sum, window.Distinct, window.Top} {
		for _, klen := range []int{5, 10, 18} {
			for _, live := range []int{1_000, 10_000, 100_000} {
				if kind == window.Top && live > 1_000 {
					continue // a Top window holds TopCapacity keys: the 1k case with its misses covers it
				}
				b.Run(fmt.Sprintf("%v/key=%d/live=%d", kind, klen, live), func(b *testing.B) {
					benchmarkLiveKeys(b, kind, klen, live)
				})
			}
		}
	}
}

func benchmarkLiveKeys(b *testing.B, kind window.Kind, klen, live int) {
	s := window.NewMemoryStore()
	w := open(b, s, window.Spec{Name: "live", Kind: kind, Size: 10 * time.Second, MaxKeys: live, TopCapacity: live})
	const n = 1 << 18
	rng := rand.New(rand.NewPCG(3, uint64(live)))
	keys := make([][]byte, live)
	for i := range keys {
		keys[i] = liveKey(rng, klen)
	}
	order := make([][]byte, n)
	items := make([]uint64, n)
	for i := range order {
		if rng.IntN(100) == 0 {
			k := liveKey(rng, klen)
			keys[rng.IntN(live)] = k // the new key lives on in place of an old one
			order[i] = k
		} else {
			order[i] = keys[rng.IntN(live)]
		}
		items[i] = uint64(rng.IntN(64))
	}
	now := t0
	i := 0
	step := int64(time.Second) / 1_200_000
	run := func() {
		k := order[i&(n-1)]
		now += step
		switch kind {
		case window.Sum:
			w.Add(k, now, 1500)
		case window.Distinct:
			w.AddDistinct(k, now, items[i&(n-1)])
		case window.Top:
			w.AddTop(k, now, 1500)
		}
		i++
		if i&4095 == 0 {
			w.Advance(now)
		}
	}
	for _, k := range keys {
		now += step
		switch kind {
		case window.Sum:
			w.Add(k, now, 1500)
		case window.Distinct:
			w.AddDistinct(k, now, 1)
		case window.Top:
			w.AddTop(k, now, 1500)
		}
	}
	for range n {
		run()
	}
	b.ReportAllocs()
	for b.Loop() {
		run()
	}
}

// liveKey returns a key of klen bytes shaped like the engine's: a 4 (IPv4)
// tag byte then the address, another address, a port.
func liveKey(rng *rand.Rand, klen int) []byte {
	k := make([]byte, 0, klen)
	for len(k) < klen {
		switch {
		case klen-len(k) >= 5:
			k = binary.BigEndian.AppendUint32(append(k, 4), 0x0a000000|uint32(rng.IntN(1<<22)))
		default:
			k = append(k, byte(rng.IntN(256)))
		}
	}
	return k
}
