package window

import (
	"math/rand/v2"
	"testing"
)

// TestKeyTableAgainstMap checks the key table against a map with keys of
// every length from 0 to past keyInline over a two-letter alphabet (keys
// that differ in one byte, or only in length, or by trailing zeros), ids
// reused by keys of other lengths, and the LRU order.
func TestKeyTableAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	tab := newKeyTable[int]()
	held := map[string]int32{}
	var lru []string // most recent first
	randKey := func() []byte {
		k := make([]byte, rng.IntN(keyInline+8))
		for i := range k {
			k[i] = "\x00a"[rng.IntN(2)]
		}
		return k
	}
	moveFront := func(k string) {
		for i, o := range lru {
			if o == k {
				lru = append(lru[:i], lru[i+1:]...)
				break
			}
		}
		lru = append([]string{k}, lru...)
	}
	for step := range 100_000 {
		k := randKey()
		id, h := tab.lookup(k)
		if h != tab.hash(k) {
			t.Fatalf("step %d: lookup's hash of %q differs from hash's", step, k)
		}
		if f := tab.find(k, h); f != id {
			t.Fatalf("step %d: find(%q) = %d, lookup %d", step, k, f, id)
		}
		want, ok := held[string(k)]
		if !ok {
			want = -1
		}
		if id != want {
			t.Fatalf("step %d: lookup(%q) = %d, want %d", step, k, id, want)
		}
		switch {
		case id < 0 && len(held) < 300:
			id, _ = tab.insert(k, h)
			*tab.val(id) = step
			held[string(k)] = id
			moveFront(string(k))
		case id < 0: // full: drop the stalest
			old := lru[len(lru)-1]
			if got := string(tab.key(tab.tail)); got != old {
				t.Fatalf("step %d: stalest %q, want %q", step, got, old)
			}
			tab.remove(tab.tail)
			delete(held, old)
			lru = lru[:len(lru)-1]
		case rng.IntN(4) == 0:
			tab.remove(id)
			delete(held, string(k))
			for i, o := range lru {
				if o == string(k) {
					lru = append(lru[:i], lru[i+1:]...)
					break
				}
			}
		default:
			tab.touch(id)
			moveFront(string(k))
			if string(tab.key(id)) != string(k) {
				t.Fatalf("step %d: key(%d) = %q, want %q", step, id, tab.key(id), k)
			}
		}
		if tab.n != len(held) {
			t.Fatalf("step %d: %d keys, want %d", step, tab.n, len(held))
		}
	}
	i := 0
	for id := tab.head; id >= 0; id = tab.next(id) {
		if string(tab.key(id)) != lru[i] {
			t.Fatalf("LRU order: %d-th is %q, want %q", i, tab.key(id), lru[i])
		}
		i++
	}
}
