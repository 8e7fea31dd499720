package window_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/flowguard/flowguard/engine/window"
)

// model is a brute-force window: it keeps every event and computes values
// on demand, straight from the definitions in the package doc.
type model struct {
	kind                        window.Kind
	size, width, ring, lateness int64
	// Sum and Distinct: the watermark's late bound.
	wmSet bool
	bound int64
	// Top: the window's clock.
	clock   int64
	started bool
	events  map[string][]event
	late    uint64
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

func (m *model) seq(t int64) int64 { return floorDiv(t, m.width) }
func (m *model) lo(e int64) int64  { return floorDiv(e-m.size+1, m.width) }

// last is key's latest event time.
func (m *model) last(key string) (int64, bool) {
	evs := m.events[key]
	if len(evs) == 0 {
		return 0, false
	}
	l := evs[0].t
	for _, e := range evs {
		l = max(l, e.t)
	}
	return l, true
}

// add records an update and returns the end of the window its result is
// about, or ok=false when it is late.
func (m *model) add(key string, t int64, v float64, item uint64) (end int64, ok bool) {
	last, held := m.last(key)
	switch {
	case m.kind == window.Top:
		if !m.started || t > m.clock {
			m.started, m.clock = true, t
		} else if t <= m.clock-m.size {
			m.late++
			return m.clock, false
		}
		m.events[key] = append(m.events[key], event{t, v, item})
		return m.clock, true
	case m.wmSet && t <= m.bound,
		held && m.kind == window.Sum && m.seq(t) <= m.seq(last)-m.ring,
		held && m.kind == window.Distinct && m.seq(t) < m.lo(last):
		m.late++
		return last, false
	}
	m.events[key] = append(m.events[key], event{t, v, item})
	if !held || t > last {
		return t, true
	}
	if m.kind == window.Sum {
		return min(last, t+m.size-1), true
	}
	return last, true
}

// in reports whether an event at t falls in a bucket of the window ending at e.
func (m *model) in(t, e int64) bool {
	return m.seq(t) >= m.lo(e) && m.seq(t) <= m.seq(e)
}

func (m *model) sum(key string, e int64) (v float64, first int64, any bool) {
	for _, ev := range m.events[key] {
		if m.in(ev.t, e) {
			v += ev.v
			if !any || ev.t < first {
				first = ev.t
			}
			any = true
		}
	}
	return v, first, any
}

func (m *model) distinct(key string, e int64) int {
	set := map[uint64]bool{}
	for _, ev := range m.events[key] {
		if m.in(ev.t, e) {
			set[ev.item] = true
		}
	}
	return len(set)
}

func (m *model) total() float64 {
	var t float64
	for k := range m.events {
		v, _, _ := m.sum(k, m.clock)
		t += v
	}
	return t
}

// advance moves the watermark as Advance must.
func (m *model) advance(now int64) {
	if m.kind == window.Top {
		if m.started && now-m.lateness > m.clock {
			m.clock = now - m.lateness
		}
		return
	}
	if b := now - m.size - m.lateness; !m.wmSet || b > m.bound {
		m.wmSet, m.bound = true, b
	}
}

// expire drops the keys no update can reach any more, as Expire must.
func (m *model) expire(now int64) int {
	n := 0
	if m.kind == window.Top {
		if !m.started || now-m.lateness > m.clock {
			m.started, m.clock = true, now-m.lateness
		}
		for k := range m.events {
			if _, _, any := m.sum(k, m.clock); !any {
				delete(m.events, k)
				n++
			}
		}
		return n
	}
	m.advance(now)
	for k := range m.events {
		if last, _ := m.last(k); last <= m.bound {
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
	lateness := int64(0)
	if rng.IntN(2) == 0 {
		lateness = rng.Int64N(2 * size)
	}
	s := window.NewMemoryStore()
	w := open(t, s, window.Spec{
		Name: "m", Kind: kind, Size: time.Duration(size), Buckets: buckets,
		DistinctExact: exact, TopCapacity: 1 << 20, Lateness: time.Duration(lateness),
	})
	width := max(size/int64(buckets), 1)
	ring := (size-1+width-1)/width + 1
	m := &model{kind: kind, size: size, width: width, ring: ring, lateness: lateness, events: map[string][]event{}}
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
			at = now - rng.Int64N(size+size/4+lateness+1)
		}
		key := fmt.Sprintf("k%d", rng.IntN(12))
		switch rng.IntN(50) {
		case 0:
			got := w.Expire(at)
			want := m.expire(at)
			if got != want {
				t.Fatalf("op %d: Expire = %d, want %d", op, got, want)
			}
			continue
		case 1:
			w.Advance(now)
			m.advance(now)
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
		e, ok := m.add(key, at, v, item)
		wantV, first, any := m.sum(key, e)
		last, _ := m.last(key)
		if kind == window.Distinct {
			wantV = float64(m.distinct(key, e))
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
			t.Fatalf("op %d: %s at %d (window end %d, late %v): Value = %v, want %v", op, key, at-t0, e-t0, !ok, r.Value, wantV)
		}
		if any {
			if r.Last != last {
				t.Fatalf("op %d: %s: Last = %d, want %d", op, key, r.Last-t0, last-t0)
			}
			lo := max(floorDiv(first, width)*width, e-size+1)
			hi := max(first, e-size+1) // First is clamped to the window
			if kind == window.Distinct {
				// Items seen again move to a later bucket, which may leave
				// the first one looking empty once First has expired.
				lo, hi = e-size+1, max(last, e-size+1)
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
					if v, _, _ := m.sum(k, m.clock); v > wantV {
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
