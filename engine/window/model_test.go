package window_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/flowguard/flowguard/engine/window"
)

// model is a brute-force window: it keeps every event and sums the live
// ones on demand, straight from the definition.
type model struct {
	size, width int64
	clock       int64
	started     bool
	events      map[string][]event
	late        uint64
}

type event struct {
	t    int64
	v    float64
	item uint64
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// add returns false when t is late.
func (m *model) add(key string, t int64, v float64, item uint64) bool {
	if !m.started || t > m.clock {
		m.started, m.clock = true, t
	} else if t <= m.clock-m.size {
		m.late++
		return false
	}
	m.events[key] = append(m.events[key], event{t, v, item})
	return true
}

func (m *model) live(t int64) bool {
	return floorDiv(t, m.width) >= floorDiv(m.clock-m.size+1, m.width)
}

func (m *model) sum(key string) (v float64, first, last int64, any bool) {
	for _, e := range m.events[key] {
		last = max(last, e.t)
		if m.live(e.t) {
			v += e.v
			if !any || e.t < first {
				first = e.t
			}
			any = true
		}
	}
	return v, first, last, any
}

func (m *model) distinct(key string) int {
	set := map[uint64]bool{}
	for _, e := range m.events[key] {
		if m.live(e.t) {
			set[e.item] = true
		}
	}
	return len(set)
}

func (m *model) total() float64 {
	var t float64
	for k := range m.events {
		v, _, _, _ := m.sum(k)
		t += v
	}
	return t
}

// expire drops keys with no live event, as Expire must.
func (m *model) expire(now int64) int {
	if !m.started || now > m.clock {
		m.started, m.clock = true, now
	}
	n := 0
	for k := range m.events {
		if _, _, _, any := m.sum(k); !any {
			delete(m.events, k)
			n++
		}
	}
	return n
}

// TestAgainstModel drives random, out-of-order updates into every kind of
// window and compares each result with the brute-force model.
func TestAgainstModel(t *testing.T) {
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 99))
		size := int64(1 + rng.IntN(5000))
		buckets := 1 + rng.IntN(20)
		if seed%4 == 0 {
			size, buckets = int64(time.Minute), 6
		}
		for _, kind := range []window.Kind{window.Sum, window.Distinct, window.Top} {
			t.Run(fmt.Sprintf("seed%d/%v/size%d/buckets%d", seed, kind, size, buckets), func(t *testing.T) {
				checkModel(t, rng, kind, size, buckets, 1<<20)
			})
		}
		// Distinct keys going past a small exact limit into HyperLogLog
		// and back once they expire.
		t.Run(fmt.Sprintf("seed%d/hll/size%d/buckets%d", seed, size, buckets), func(t *testing.T) {
			checkModel(t, rng, window.Distinct, size, buckets, 6)
		})
	}
}

func checkModel(t *testing.T, rng *rand.Rand, kind window.Kind, size int64, buckets, exact int) {
	s := window.NewMemoryStore()
	w := open(t, s, window.Spec{
		Name: "m", Kind: kind, Size: time.Duration(size), Buckets: buckets,
		DistinctExact: exact, TopCapacity: 1 << 20,
	})
	width := max(size/int64(buckets), 1)
	m := &model{size: size, width: width, events: map[string][]event{}}
	now := t0 + rng.Int64N(size)
	for op := range 3000 {
		// Mostly forward in small steps, sometimes back (late or not),
		// sometimes a long jump.
		switch r := rng.IntN(100); {
		case r < 70:
			now += rng.Int64N(size/8 + 1)
		case r < 95:
			// now stays; the update below may be out of order
		default:
			now += rng.Int64N(3 * size)
		}
		at := now
		if rng.IntN(4) == 0 {
			at = now - rng.Int64N(size+size/4+1)
		}
		key := fmt.Sprintf("k%d", rng.IntN(12))
		if rng.IntN(50) == 0 {
			got := w.Expire(at)
			want := m.expire(at)
			if got != want {
				t.Fatalf("op %d: Expire = %d, want %d", op, got, want)
			}
			continue
		}
		v := float64(1 + rng.IntN(9)) // not 0: an empty bucket and a bucket of zeros look alike
		item := uint64(rng.IntN(30))
		var r window.Result
		switch kind {
		case window.Sum:
			r = w.Add([]byte(key), at, v)
		case window.Distinct:
			r = w.AddDistinct([]byte(key), at, item)
		case window.Top:
			r = w.AddTop([]byte(key), at, v)
		}
		ok := m.add(key, at, v, item)
		wantV, first, last, any := m.sum(key)
		if kind == window.Distinct {
			wantV = float64(m.distinct(key))
		}
		if !any && !ok {
			// A late update of a key with nothing live: the store may
			// or may not still hold it; its value is 0 either way.
			wantV = 0
		}
		if kind == window.Distinct && exact < 1<<20 {
			// HyperLogLog with few items: linear counting, off by a
			// collision now and then.
			if d := r.Value - wantV; d < -1.5 || d > 0.5 {
				t.Fatalf("op %d: %s: Value = %v, want %v (sketch)", op, key, r.Value, wantV)
			}
		} else if r.Value != wantV {
			t.Fatalf("op %d: %s at %d (clock %d, late %v): Value = %v, want %v", op, key, at-t0, m.clock-t0, !ok, r.Value, wantV)
		}
		if any {
			if r.Last != last {
				t.Fatalf("op %d: %s: Last = %d, want %d", op, key, r.Last-t0, last-t0)
			}
			lo := max(floorDiv(first, width)*width, m.clock-size+1)
			hi := max(first, m.clock-size+1) // First is clamped to the window
			if kind == window.Distinct {
				// Items seen again move to a later bucket, which may leave
				// the first one looking empty once First has expired.
				lo, hi = m.clock-size+1, max(last, m.clock-size+1)
			}
			if r.First < lo || r.First > hi {
				t.Fatalf("op %d: %s: First = %d, want in [%d, %d]", op, key, r.First-t0, lo-t0, hi-t0)
			}
		}
		if kind == window.Top {
			if tot := m.total(); r.Total != tot {
				t.Fatalf("op %d: Total = %v, want %v", op, r.Total, tot)
			}
			if any {
				rank := 1
				for k := range m.events {
					if v, _, _, _ := m.sum(k); v > wantV {
						rank++
					}
				}
				if got := w.Rank([]byte(key)); got != rank {
					t.Fatalf("op %d: Rank(%s) = %d, want %d", op, key, got, rank)
				}
			}
		}
		if st := w.Stats(); st.Late != m.late {
			t.Fatalf("op %d: Late = %d, want %d", op, st.Late, m.late)
		}
	}
}
